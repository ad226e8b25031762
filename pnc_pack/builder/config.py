"""BuildConfig: every setting of the PNC builder, with its default and where it comes from.

Paper settings (SUPP Tab. 1): 100 masks per anchor ("Aug Num"), masking rate 0.3, kernel width 0.25, the data
fraction (0.1 on MNIST), the search R = L-1 down to 0 with fresh adapter / classifier / mask at each step.

[INFERRED] choices (PAPER.md §3), made here:
- grid H = 4 (7x7-pixel patches on MNIST), each patch hidden with probability ``mask_rate``; the first mask of
  every anchor is all-ones (LIME/ZEST); hidden patches take their own mean colour (SUPP Eq. 2).
- kernel Π_b = sqrt(exp(-d²/σ²)), d = cosine distance of b to the all-ones vector (LIME); weighted ridge
  least squares with an intercept, λ = ``ridge`` (LIME's Ridge), on the source's raw logits (ZEST).
- the mask is a real score per filter of every mask point in the source's blocks [R_s:L_s], mask = sigmoid(score),
  initialised at ``mask_init`` (sigmoid 0.95: keep everything), binarised at 0.5 after the search, with an L1
  pressure ``sparsity`` (an addition: without it nothing is pruned, PAPER.md §8).
- L_kd is Hinton KD (temperature ``temperature``) over the cloned classes' logits against G; the second KD term
  of L_ins (old-class logits vs M_t) is identically zero here because those logits *are* M_t's (the classifier
  keeps the target head), so it is not computed.
- additions that make routing work without old-class data (PAPER.md §8: distillation alone reproduces Direct
  Ensemble): cross-entropy on the perturbed D_t samples over the whole label set (``ce_weight``), and data-free
  negatives (``neg_weight``): transforms of D_t images (rotations, flips, transposes, half and quadrant mixes
  between anchors, mirror-symmetrised halves, shifts) that the frozen target classifies confidently as one of its
  classes while the source does not call them a cloned class, class-balanced and the most typical for the target
  first (``negatives="typical"``); on those the clone must predict the target's class.
- R* = argmin of the held-out loss (a stratified ``holdout`` share of the anchors, never trained on). The same
  held-out anchors set the routing calibration below. 0.2 measured against 0.1 and 0.3 (session 6, `python -m
  tools.bench paper --data idx:data/mnist --seeds 0,1,2 --methods pnc --pnc-set holdout=H`): AvgS 98.01 / 98.10 /
  98.05, AvgM 97.12 / 97.28 / 97.32 for H = 0.1 / 0.2 / 0.3, with M's Ori out of the band on two seeds at 0.1 and
  on seed 2 (2.04) at 0.3: flat, 0.2 stays.
- after binarising, adapter and classifier are re-tuned for ``retune_steps`` with the binary masks.
- routing calibration (an addition): the new classes' biases are shifted by one common amount so that a share
  ``route_recall`` of the held-out D_t anchors (unperturbed) has its largest new logit above the largest target
  logit. Training alone leaves the operating point wherever the negatives' weight puts it; this sets it from data
  the builder has, and it is what keeps Ori near the target's. The share is ``route_recall`` (0.95) for one cloned
  class and ``route_recall_multi`` (0.97) for several (measurements below).
- Measured on full MNIST (LeNet-5 target 0-4 at 99.67%, source 5-9; 10% of D_t; seed 0; Ori/Tar/Avg on the test
  set; `python -m tools.bench mnist_pnc --data idx:data/mnist`, variants with overrides):

  ==============================  =====================  =====================
  variant                         S (clone 5)            M (clone 5,6,7)
  ==============================  =====================  =====================
  neg_weight 1, 300 steps         95.9 / 98.9 / 96.4     94.9 / 98.2 / 96.1
  neg_weight 3, 300 steps         96.8 / 97.8 / 97.0     96.4 / 96.9 / 96.6
  + calibration 0.95              98.0 / 95.3 / 97.6     97.6 / 95.3 / 96.8
  + 200 steps                     98.2 / 95.1 / 97.7     97.7 / 95.4 / 96.9
  + typical negatives             98.5 / 96.9 / 98.2     98.4 / 94.3 / 96.9
  + novelty                       98.4 / 97.2 / 98.2     98.9 / 95.0 / 97.4
  + M at recall 0.97 (default)    98.4 / 97.2 / 98.2     98.3 / 96.6 / 97.7
  paper, PNC (full)               96.4 / 99.7 / 97.0     96.2 / 97.8 / 96.8
  ==============================  =====================  =====================

  Calibrating the same clones for other recalls (held-out share routed new -> test Ori/Tar/Avg), S: 0.95 ->
  98.0/95.3/97.6, 0.97 -> 95.8/98.7/96.3, 0.98 -> 94.4/99.2/95.2; M: 0.95 -> 97.7/95.3/96.8, 0.97 ->
  97.0/96.3/96.8, 0.98 -> 95.6/97.4/96.3. The same calibration applied to Direct Ensemble (no training) gives
  S 98.4/95.7/97.9 and M 96.9/95.4/96.3 at 0.95: on these models a linear routing rule over the two networks'
  outputs and features reaches about 98 (S) and 96.5-97 (M), and the issue's goal (AvgS >= 98, AvgM >= 97.5 with
  Ori >= 98.2) lies just beyond it.
- ``negatives="typical"`` (the default since session 3): the routing errors are mostly real 3s taken as 5s and 5s
  as 3s (S: 72 and 37 of the test set; M adds 7 -> 2); the plain transforms labelled "3" are rotated and mirrored
  5s, nothing like a real 3. A larger pool with mirror-symmetrised halves (a 5's lower bowl mirrored up is a 3)
  and shifts, reduced per target class to the candidates the target finds most typical (largest logsumexp),
  class-balanced. First measured in isolation (positions and masks of a default build fixed, adapter and
  classifier trained afresh on each negative set, calibrated at 0.95, paper bench zoo models, seeds 0/1/2, a
  pool with symmetrised halves and shifts of *all* transforms): S 97.75/97.74/97.76 -> 98.39/98.34/98.53,
  M 96.78/96.78/96.74 -> 97.16/97.16/97.31; the same pool drawn at random instead of by typicality:
  S 98.01/97.64/98.17, M 96.73/96.80/96.74; typical but not class-balanced (it crowds into classes 3 and 4):
  S 98.12/98.32/98.42, M 97.00/96.73/97.18; adding thickened/thinned strokes and small rotations and scalings:
  +0.05 (not kept). The whole builder (the pool from a 4|D_t| subset of the transforms, masks learned with the
  new negatives), `python -m tools.bench paper --data idx:data/mnist --seeds 0,1,2 --methods
  pnc,pnc_no_local,pnc_no_insert --tag=-pnc`: AvgS 98.03 ± 0.46 (Ori 98.61 ± 0.48, every seed within 1.5 of its
  target) against 97.60 ± 0.34 with ``transforms``; AvgM 96.47 ± 0.49 (Ori 98.29 ± 0.60, Tar 93.42 ± 0.65)
  against 96.71 ± 0.47: M does not gain as a whole build, S does. Fashion-MNIST (``--methods pnc``): AvgS
  91.19 vs 91.06, AvgM 64.07 vs 63.95. Cost: prepare of M +9 s CPU (the target sees ~90 candidates per D_t
  image, the source only the confident ones, most typical first, until each class has enough).
- Measured and not kept: searching R and the masks with ``transforms`` negatives, then training a fresh adapter
  and classifier on the binary masks for 300 steps with ``typical`` ones (what the isolated measurement above
  did, where it gave M +0.44): as whole builds over the same three seeds MNIST AvgS 97.97, AvgM 96.53; Fashion
  91.14 / 64.21: the same as ``typical`` throughout, and M 11 s slower. The isolated gain for M most likely came
  from that one set of masks. Neither does leaving L_neg's gradient out of the masks help (M seeds 1/2: +0.34 /
  +0.10), nor a fresh 300-step re-tune (+0.2 / -0.0), nor symmetrising and shifting all transforms instead of a
  subset.
- ``neg_weight`` with typical negatives, whole builds over the three seeds (`python -m tools.bench paper --data
  idx:data/mnist --seeds 0,1,2 --methods pnc --pnc-set neg_weight=W --tag=-nwW`): W = 1 -> AvgS 98.04,
  AvgM 96.41; 3 (default) -> 98.03 / 96.47; 6 -> 98.05 / 96.54: flat, not a lever.
- ``neg_novelty`` (default 0.99, since session 4): the filter's source check threw away the negatives that matter.
  Of 3,000 real old-class training images (never used by the builder; measured for these docs, M, paper bench zoo
  models, seeds 0/1/2) the source calls 35-52% a cloned class (83% of the 0s on seed 0), and trained on only the
  real images that pass our filter, the same clones' best Avg with Ori in the band falls from 97.98/97.80/97.27
  (all 3,000) to 97.61/96.92/96.34. Dropping the source check altogether is far worse (M 96.69/94.65/92.1: shifted
  and symmetrised cloned-class images come back as negatives). What does tell them apart is the distance to the
  D_t anchors in the source's feature space (mean distance to the 5 nearest, cosine-normalised): AUROC 0.98 for
  old-class vs cloned-class test images. So a candidate the source calls cloned is kept when it lies beyond the
  0.99 quantile of the held-out anchors' distances. Isolated (masks fixed, adapter and classifier trained afresh,
  calibrated at 0.95): M 96.97/96.44/96.12 -> 97.17/96.60/96.64, S 98.56/97.79/97.75 -> 98.60/97.80/97.81; the
  quantile 0.995 and a filter on the distance alone (no source check) measured the same; lower quantiles admit
  more (0.95: 97.22/96.66/96.62, 0.9: 97.26/96.70/96.31, against 97.25/96.56/96.57 for 0.99 in the same run) and
  only cost Ori on seed 2, so 0.99 stays. Whole builds, `python -m
  tools.bench paper --data idx:data/mnist --seeds 0,1,2 --methods pnc --tag=-novelty`: AvgS 98.09 ± 0.51 (was
  98.03), **AvgM 96.80 ± 0.35** (was 96.47; Ori 98.55 ± 0.55, Tar 93.90 ± 0.94); Fashion-MNIST 90.99 / 64.08 (was
  91.19 / 64.07). Seed 2's M Ori is 97.94, 1.55 below its target.
- ``route_recall_multi`` (0.97 since session 5; ``route_recall`` stays 0.95 for one cloned class): Avg weighs a
  missed cloned image k/(n_old + k), 1/6 for S and 3/8 for M, so M buys more with recall than S, and a lone
  cloned 5 competes with the target's 3 alone. Whole builds, M, Avg per seed (Ori gap to the unmodified target):

  =========================  ==============================================  =======================
  calibration                paper bench zoo, seeds 0 / 1 / 2 (mean)           mnist_pnc zoo, seed 0
  =========================  ==============================================  =======================
  0.95 (session 4)           97.19 / 96.51 / 96.70 (96.80; seed 2 gap 1.55)   97.4 (gap 0.8)
  0.97 (default)             97.73 / 97.29 / 96.82 (97.28; seed 2 gap 1.91)   97.7 (gap 1.37)
  =========================  ==============================================  =======================

  (`python -m tools.bench paper --data idx:data/mnist --seeds 0,1,2 --methods pnc --pnc-set neg_masks=0
  --tag=-nomask97` and `python -m tools.bench mnist_pnc --data idx:data/mnist`.) The same recalls applied to one set
  of clones (calibration only, nothing retrained): 0.96 / 0.98 give 97.55 / 97.66 on seed 0 with Ori out of the band
  at 0.98. S must stay at 0.95: at 0.96 seed 0's Ori leaves the band (99.01 -> 98.19). Where routing is poor, recall
  costs more Ori than it gains Tar: Fashion-MNIST M (AvgM 64.08 ± 0.66 at 0.95 -> 61.39 ± 0.56 at 0.97, 62.60 with
  ``neg_masks=2``; Ori 40-52 against the target's ~90 either way; `python -m tools.bench paper --data
  idx:data/fashion-mnist --seeds 0,1,2 --methods pnc --tag=-recall97`); AvgS stays 90.99. A builder has no old-class
  data to see that coming: the share of held-out negatives routed new rises with the Ori loss on MNIST (M seed 0: 4.4%
  -> 9.3% of them from 0.95 to 0.97 while Ori falls 0.8) but stays under 1.1% on Fashion-MNIST while Ori falls 10
  points, so it is no guard. Why Fashion-MNIST M is poor (session 6, `python -m tools.bench routing --data
  idx:data/fashion-mnist`): nearly all of it is one cloned class, shirt (6), which takes 89-95% of the pullovers,
  92% of the T-shirts, 55-70% of the coats and a third of the dresses on every seed; Ori is 50-53% even at recall
  0.93. A transformed shirt the target calls a pullover is, to a builder without old-class images, the same as a
  real pullover (the novelty filter rightly rejects it as a negative), so this clone cannot learn that boundary.
- ``neg_masks`` (default 0, i.e. off; measured in session 5): the positives of L_ce are the perturbed samples b·x
  (93% of the pool has patches hidden at their mean colour) while the negatives are clean, so "occluded or not"
  separates the two in training. ``neg_masks = c`` adds c copies of every negative under random patch masks
  drawn and filled as D_t's. Isolated (M, paper bench zoo, masks and R of a default build fixed, adapter and
  classifier trained afresh for 300 steps; Avg at held-out recall 0.95 / 0.97, "!" = Ori out of the band): clean
  97.25/97.68, 96.56/97.31, 96.57!/96.89!; 2 masked copies 97.32/97.75, 96.46/97.34, 96.68/97.12; 6 copies
  97.30/97.70, 96.46/97.35, 96.49/97.09; masked only 97.20/97.63!, 96.41/97.36, 96.49/97.05. Whole builds with 2
  copies: paper zoo 97.25/96.42/96.55 at 0.95 and 97.71/97.33/96.96 (mean 97.33, seed 0's Ori 0.02 out of the
  band) at 0.97, AvgS 98.15 (`--tag=-occ`, `--tag=-occ95`); mnist_pnc zoo M 97.3 at 0.97 with Ori 1.97 below the
  target (against 97.7 and 1.37 without). It moves seed 2 into the band and the mnist_pnc clone out of it, and
  it costs build time (M 79 -> 91 s: three times the negatives), so it is an option, not the default. Also
  measured (isolated, clean negatives): leaving out one part of the ``typical`` pool (the shifts, the second
  round of transforms, the symmetrised halves or the first transforms) moves M by at most ±0.2; none matters
  alone. And routing by the distance to the D_t anchors instead of, or added to, the logit margin: the margin
  already separates old-class from cloned-class test images with AUROC 0.996-0.998, the distance (k-NN or
  k-means prototypes, in the source's or the clone's features) only 0.96-0.985. Added to the margin in
  units of the held-out anchors' spread (weight 1), Avg moves -0.64 to +0.37 depending on seed and recall
  (one-off analysis, per-seed numbers in the builder issue's session-5 note); weights 3 and 10 lower it everywhere. Not
  kept: no consistent gain, and the delta would have to carry D_t features or prototypes.
- Where M's errors are (session 6, the default builds' deltas of the paper bench zoo, seeds 0/1/2; `python -m
  tools.bench routing --data idx:data/mnist`, which also recalibrates them to other recalls): 65 / 75 / 101 of the 5,139
  old-class test images are routed to a cloned class, of them 27 / 32 / 48 real 3s called 5, 13 / 6 / 21 0s called 6 and
  7 / 16 / 17 2s called 7; the other way, 31 / 48 / 47 real 5s go to the target's 3. They are ordinary, clearly written
  digits: the 3-5 boundary, which neither frozen model has ever seen from both sides, is what M loses. A logistic
  regression trained on *real* old- and cloned-class images (12,000 training images, protocol-breaking, seed 2) over the
  same [f_t, f_s] routes 0.86% of old-class test images new at 97% cloned-class recall (0.39% with both models' fc1
  features added); the clone routes 2.0%. Nothing tried below closes that gap from D_t alone. Measured and not kept (M,
  masks and R of a default build fixed, adapter and classifier trained afresh for 300 steps, Avg at held-out recall 0.95
  / 0.97 per seed, "!" = Ori out of the band; analysis scripts, not in the repo): the other insertion positions, each
  trained, re-tuned and calibrated in full (R = 0 / 1 / 2 at 0.97: 97.73 / 97.64 / 95.82 on seed 0, 97.29 / 97.32 /
  96.86 on seed 1; logits of the R = 0 and 1 clones averaged: 97.70, 97.42): R* is not the lever. More positives: random
  affine copies of the training anchors (rotation 12°, scale 10%, shift 2 px, shear 0.15) as 30% or 60% of the pool, or
  clean anchors repeated: seeds 0/1 within +0.08. A wider classifier (both models' 120 fc1 features added to its input):
  97.31 -> 97.52 on seed 1, 96.89! -> 96.92! on seed 2, not worth a new classifier kind. Hard negatives (a 4x larger
  ``typical`` pool, 25% or 50% of the negatives replaced by the ones the trained clone routes highest, optionally
  skipping the top 2%): seed 1 97.31 -> 97.33..97.47, seed 2 96.89! -> 96.78!..96.95!. L_ce on lightly perturbed samples
  only (the occluded 5 that lost its top stroke *is* a 3, yet L_ce calls it 5): the share of the anchor's within-patch
  detail a sample keeps >= 0.75 or 0.9, clean only, or at most 2 hidden patches: isolated, seed 2's Ori at 0.95 moves
  into the band (97.84 -> 98.3-98.4) and Avg by -0.05..+0.15; as whole builds (`python -m tools.bench paper --data
  idx:data/mnist --seeds 0,1,2 --methods pnc` with the option, since removed) share 0.75: AvgS 98.06, AvgM 97.31 (97.73
  / 97.25 / 96.96, seed 2's Ori gap 1.81); 0.9: AvgS 97.99, AvgM 97.29 (seed 0's gap 1.54, seed 2's 2.06), against 98.09
  / 97.28 now: flat, so removed. Erased strokes as negatives (D_t images with random patches set to the background, grid
  4 at rate 0.2 or grid 7 at 0.25, 8 copies each, filtered as ``typical``, added to the pool): seed 1 97.31 ->
  97.24..97.31, seed 2 96.89! -> 96.67!..96.92!; what passes the filter is mostly fragments, and an erased 5 that the
  target calls 3 often still looks like a 5.
- Measured in session 4 and not kept, M, isolated as above, three seeds: averaging the logits of 2-4 heads trained
  from different seeds on the same masks (-0.05 to +0.03: the heads agree; the spread between seeds comes from
  the models, not from training noise); more capacity: a 3x3 or 5x5 convolutional adapter (at R = 0 the 1x1
  adapter is only an affine map of the pixels) or a residual MLP classifier (-0.2 to +0.3, no pattern); picking
  the bias shift that maximises Avg estimated on held-out anchors and held-out negatives (worse than 0.95 recall
  on 4 of 6 clones).
- Session 3, before novelty negatives (the reason ``route_recall_multi`` above was tried again): what limits M is the
  operating point: with typical negatives, 95% held-out recall lands at Tar 93.4 on the test set. Calibrating the same
  three M clones at 0.97 gives Avg 97.60/97.04/96.36, at 0.978 (the recall that spends a fixed 1/120 of Avg on missed
  cloned images, 1 - (n_old + k)/(120 k)) 97.72/97.08/96.45 (mean 97.08), but Ori falls to 97.68/96.79/96.98, out of
  the issue's 1.5-point band; per-class bias shifts are worse (-0.1 to -0.7). 0.95 stayed then; with novelty negatives
  0.97 keeps two of three seeds in the band and is now M's default.
- The ceiling of this classifier, for the record: trained with 3,000 *real* old-class training images as
  negatives (which the protocol forbids), the mnist_pnc bench's clones reach S 98.94 and M 97.87 at the best bias
  shift on the test set (seed 0); the paper bench's M clones (seeds 0/1/2, session 4) 97.47/96.90/96.91 at 0.95
  recall and 97.79/97.43/97.30 at 0.97 (Ori in the band). So AvgM >= 97.5 with Ori in the band needs negatives
  about as good as real images *and* a higher recall.
- ``negatives`` (same bench, positions fixed at the R* above, calibrated; before ``typical``): ``transforms`` S
  98.2/95.1/97.7, M 97.7/95.4/96.9; ``inversion`` with 3 copies S 97.7/98.3/97.8, M 98.5/95.3/97.3 (6 copies: 97.8 /
  97.2, the same); ``both`` S 97.8, M 96.9. Inversion negatives lie where routing errors happen and help M by 0.4
  points; on one seed. Over the paper benchmark's three seeds they do not hold (`python -m tools.bench paper --data
  idx:data/mnist --seeds 0,1,2 --methods pnc --pnc-set negatives=inversion --tag=-inversion`): MNIST AvgS 96.03 ± 2.76
  (seed 2 drops to 92.9: Ori 92.5) vs 97.60 ± 0.34 with transforms, AvgM 96.61 ± 0.53 vs 96.71 ± 0.47; Fashion-MNIST
  AvgS 91.36 ± 1.06 vs 91.06 ± 0.81, AvgM 64.62 ± 2.70 vs 63.95 ± 0.66. So ``inversion`` is an option, not the
  default. Measured and not adopted: a Mahalanobis novelty term over [f_t, f_s] fitted
  on D_t (rank 8-32) added to the calibrated margin: M +0.4 to +0.6 Avg, S -0.2 to -1.5 (numbers in the builder
  issue's note). The target's own confidence (max softmax, logsumexp) is no signal here: the target is as
  confident on the cloned classes' images as on its own (at 95% held-out recall it keeps only 22-45% of Ori).
- optimiser Adam, ``lr`` for adapter/classifier, ``mask_lr`` for mask scores; ``steps`` per position with
  batches of ``batch_size`` perturbed samples (and as many negatives): a fixed budget rather than "epochs", so
  build time does not grow with |D_t| (the paper's 10 epochs of 100 masks per anchor take minutes on a CPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from pnc_pack.errors import UsageError

NEGATIVES = ("typical", "transforms", "inversion", "both")


@dataclass(frozen=True)
class BuildConfig:
    data_fraction: float = 0.1
    grid: int = 4
    masks_per_anchor: int = 100
    mask_rate: float = 0.3
    kernel_width: float = 0.25
    ridge: float = 1e-2
    holdout: float = 0.2
    steps: int = 200
    pool_size: int = 20000  # perturbed samples kept (their frozen activations are computed once per position)
    retune_steps: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    mask_lr: float = 5e-2
    mask_init: float = 3.0
    sparsity: float = 0.05
    temperature: float = 4.0
    loc_weight: float = 1.0
    kd_weight: float = 1.0
    ce_weight: float = 1.0
    neg_weight: float = 3.0
    neg_target_conf: float = 0.9
    neg_source_max: float = 0.5
    neg_novelty: float | None = 0.99  # also keep negatives the source calls cloned when farther from D_t than this
    # quantile of the held-out anchors' distances in the source's feature space (None: the source's call alone)
    neg_masks: int = 0  # copies of every negative under random patch masks, as D_t's samples get (0: clean only)
    negatives: str = "typical"  # typical | transforms | inversion | both (pnc_pack.build.negatives)
    inversion_copies: int = 3  # inverted images per D_t image
    inversion_steps: int = 30
    route_recall: float | None = 0.95  # held-out D_t share routed to the cloned classes after calibration (None: off)
    route_recall_multi: float | None = 0.97  # the same when cloning two or more classes
    search: bool = True  # False: no position search, R = 0 (the "PNC w/o Insert" ablation)
    localize: bool = True  # False: no mask and no L_loc (the "PNC w/o Local" ablation)
    positions: tuple[int, ...] | None = None  # restrict the search to these target positions

    def __post_init__(self):
        if not 0 < self.data_fraction <= 1:
            raise UsageError(f"data_fraction must be in (0, 1], got {self.data_fraction}")
        if self.grid < 1 or self.masks_per_anchor < 1 or self.steps < 1 or self.batch_size < 1:
            raise UsageError("grid, masks_per_anchor, steps and batch_size must be positive")
        if self.negatives not in NEGATIVES:
            raise UsageError(f"negatives must be one of {', '.join(NEGATIVES)}, got {self.negatives!r}")
        if self.inversion_copies < 1 or self.inversion_steps < 0:
            raise UsageError("inversion_copies must be positive and inversion_steps not negative")
        for name in ("neg_novelty", "route_recall", "route_recall_multi"):  # shares: (0, 1], or None for off
            v = getattr(self, name)
            if v is not None and not 0 < v <= 1:
                raise UsageError(f"{name} must be in (0, 1] or None, got {v}")
        if self.neg_masks < 0:
            raise UsageError(f"neg_masks must be 0 or more, got {self.neg_masks}")
        if not 0 <= self.mask_rate < 1 or not 0 < self.holdout < 1:
            raise UsageError("mask_rate must be in [0, 1) and holdout in (0, 1)")

    def recall(self, k: int) -> float | None:
        """The routing recall the calibration aims at when cloning ``k`` classes."""
        return self.route_recall if k == 1 else self.route_recall_multi

    def to_dict(self) -> dict:
        d = asdict(self)
        d["positions"] = None if self.positions is None else list(self.positions)
        return d

    @classmethod
    def with_overrides(cls, **kw) -> "BuildConfig":
        names = {f.name for f in fields(cls)}
        bad = sorted(set(kw) - names)
        if bad:
            raise UsageError(f"unknown build setting(s) {bad}; known: {sorted(names)}")
        return cls(**kw)
