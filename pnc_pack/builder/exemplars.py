"""Exemplars (issue 19 item 6, beyond the paper, opt-in): a few real *training* images of the target's own classes,
used as negatives beside the data-free ones.

With D_t alone the builder cannot see a boundary such as Fashion-MNIST's shirt against pullover and T-shirt
(docs/builder-notes.md, "why Fashion-MNIST M is poor"). ``build_clone(..., exemplars=SPEC,
exemplars_per_class=N)`` (``pnc-pack build --exemplars SPEC --exemplars-per-class N``) draws N images of every
target class from SPEC's *training* split (never its test split), labelled with their true target class, and adds
them to the negatives L_neg trains on. Data-free stays the default: without exemplars nothing here runs and the
delta's bytes are those of before.

[INFERRED] choices (measured on the validation split: docs/builder-notes.md):
- the images are drawn per class with their own generator (seeded by the build's seed), so the data-free draws are
  the same with and without exemplars;
- the exemplars are repeated, as random patch-masked copies (the first clean, as D_t's samples are perturbed), to
  as many as there are data-free training negatives: N real images would otherwise be a few in thousands;
- they join the training negatives only; the held-out negatives that pick R* stay data-free.
The provenance records the spec's name, the split, N, the indices drawn per class and a sha256 of the images.
"""

from __future__ import annotations

import hashlib

import torch

from pnc_pack.errors import DataError, UsageError


def check(exemplars, per_class: int, cfg):
    """Up front, before any model is loaded: the exemplar Dataset (a spec is read here), or None without. Refuses
    a count without data, data without a count (N >= 1), and a build that trains on no negatives."""
    if exemplars is None:
        if per_class:
            raise UsageError("exemplars_per_class is set but no exemplar data was given (--exemplars SPEC)")
        return None
    if per_class < 1:
        raise UsageError(f"exemplars: the number per class must be at least 1, got {per_class} "
                         "(--exemplars-per-class N)")
    if cfg.neg_weight == 0 or not cfg.uses("neg"):
        raise UsageError("exemplars are negatives: they need neg_weight > 0 and an objective with negatives")
    if isinstance(exemplars, str):
        from pnc_pack.data import load_dataset

        exemplars = load_dataset(exemplars)
    return exemplars


def draw(dataset, labels: list[int], per_class: int, seed: int, input_shape):
    """N training images of every target class (``labels``: dataset labels, in output order): (images fitted to
    ``input_shape``, target output index of each, provenance record). DataError naming a class with too few."""
    from pnc_pack.data import fit_to_shape

    X, y = dataset.train
    gen = torch.Generator().manual_seed(int(seed) * 104729 + 17)
    picks, short = {}, []
    for lab in labels:
        idx = (y == int(lab)).nonzero().flatten()
        if len(idx) < per_class:
            short.append(f"{lab} ({len(idx)})")
            continue
        picks[int(lab)] = idx[torch.randperm(len(idx), generator=gen)[:per_class]].sort().values
    if short:
        raise DataError(f"{dataset.name}: too few training images for {per_class} exemplars per class of the "
                        f"target's classes {', '.join(short)}")
    order = torch.cat([picks[int(lab)] for lab in labels])
    images = X[order].float().contiguous()
    digest = hashlib.sha256(images.numpy().tobytes() + order.numpy().astype("<i8").tobytes()).hexdigest()
    target_y = torch.cat([torch.full((per_class,), i, dtype=torch.long) for i in range(len(labels))])
    record = {"data": dataset.name, "split": "train", "per_class": int(per_class),
              "indices": {str(lab): picks[int(lab)].tolist() for lab in labels}, "sha256": digest}
    return fit_to_shape(images, input_shape), target_y, record


def as_negatives(x: torch.Tensor, y: torch.Tensor, n_free: int, cfg, seed: int):
    """The exemplars repeated as patch-masked copies to about ``n_free`` (the data-free negatives' count)."""
    from pnc_pack.builder.negatives import patch_masked

    copies = max(0, round(n_free / max(1, len(x))) - 1)
    gen = torch.Generator().manual_seed(int(seed) * 104729 + 29)
    return patch_masked(x, y, copies=copies, grid=cfg.grid, rate=cfg.mask_rate, gen=gen)


def split(x: torch.Tensor, y: torch.Tensor, share: float):
    """Per class, a ``share`` of the exemplars (at least one, when a class has two or more) held out from training
    for the calibration: (x_train, y_train, x_held_out, y_held_out)."""
    tr, ho = [], []
    for c in sorted(set(y.tolist())):
        idx = (y == c).nonzero().flatten()  # drawn at random already: the last ones are held out
        n_ho = max(1, int(round(share * len(idx)))) if len(idx) > 1 else 0
        tr.append(idx[:len(idx) - n_ho])
        ho.append(idx[len(idx) - n_ho:])
    tr, ho = torch.cat(tr), torch.cat(ho)
    return x[tr], y[tr], x[ho], y[ho]


@torch.no_grad()
def calibrate(p, br, x_ho: torch.Tensor) -> dict:
    """With held-out exemplars: the bias shift of the cloned classes that maximises the routing accuracy weighted as
    Avg is, (n_old · share of exemplars kept by the target + k · share of held-out D_t anchors routed to a cloned
    class) / (n_old + k); the middle of the best plateau. Replaces the fixed-recall calibration."""
    from pnc_pack.builder import search as S
    from pnc_pack.devices import compute

    def margins(x):
        fz = S.freeze(p, br.R, br.R_s, x, False)
        with compute(fz.tap.device, p.precision):
            return S.routing_margin(S.clone_logits(p, br, fz).float(), p.n_old).cpu()

    new, old = margins(p.anchors_ho), margins(x_ho.to(p.anchors_ho.device))
    cut = torch.cat([new, old]).sort().values
    cand = torch.cat([cut[:1] - 1, (cut[1:] + cut[:-1]) / 2, cut[-1:] + 1])
    n_old, k = p.n_old, p.k
    acc = (k * (new[None, :] > cand[:, None]).float().mean(1)
           + n_old * (old[None, :] <= cand[:, None]).float().mean(1)) / (n_old + k)
    best = (acc == acc.max()).nonzero().flatten()
    shift = float(cand[best[len(best) // 2]])
    br.head.bias -= shift
    return {"bias_shift": round(shift, 6), "rule": "exemplars", "held_out_exemplars": int(len(old)),
            "held_out_recall_after": round(float((new > shift).float().mean()), 4),
            "held_out_exemplars_kept_after": round(float((old <= shift).float().mean()), 4)}
