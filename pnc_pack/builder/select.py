"""Choosing a source (SUPP Eqs. 6-8): the candidate whose local model set on D_t is most like the target's.

    ρ* = argmax_ρ Sim(M_s^ρ|D_t, M_t|D_t) = argmax_ρ cos(Θ_s^ρ, Θ_t)

Θ_m is the local model set of model m around D_t (SUPP Eqs. 1-4, :mod:`pnc_pack.builder.surrogate`): for every
anchor x_i of D_t and the *same* random patch masks B for every model, g_i(b) = [b, 1]·θ_i is fitted by weighted
ridge least squares to m's outputs on b·x_i. θ_i has one column per output of m.

Source and target have different outputs, so the columns are aligned first, as ZEST does (``lime_align``): each
column is its weights stacked over all anchors; of the model with fewer columns, every column is matched to the
other model's column at the smallest cosine distance, greedily (the globally closest pair first, both removed,
repeat); the cosine is then taken between the matched, flattened weights.

[INFERRED] choices, made here and measured with ``python -m tools.bench multi`` (several candidates per
functionality, every one built to find the best clone; the counts, commands and results files are in
docs/builder-notes.md):
- the local models regress log-probabilities (``output="logprob"``): of the similarity's variants (raw logits, as
  ZEST; probabilities, as LIME) it chose the best clone most often, with either builder measured;
- the intercept row of θ_i (the output level with every patch shown) is left out: it is set by each model's
  offsets;
- N: at most ``max_anchors`` anchors (the paper: N < |D_t|), drawn from the builder's share of the to-be-cloned
  training samples (``data_fraction``), with the builder's grid, masking rate, kernel width and ridge, and 100
  masks per anchor (with fewer, the scores of close candidates swap between draws);
- images are fitted to each model's input shape (heterogeneous candidates); the masks live on the patch grid, so
  every model sees the same perturbations.

The similarity does not see how well a candidate does the task: a source trained on 1% of the data scores as
similar as a good one, and its clones are far worse. So two more rules (``rule``, ``--select-by``), not the
paper's, use D_t's labels, which the builder uses anyway: ``accuracy`` (the candidate's own accuracy on D_t) and
``competent`` (the most similar among the candidates within 2 points of the best accuracy on D_t). They do better
on MNIST, the paper's rule on Fashion-MNIST, so the default stays the paper's ``similarity``; every rule reports
both numbers per candidate.

Costs one forward pass of each model over N·|B| perturbed images and over D_t, no training: less than one build
takes (SUPP §1.2: choose, then build once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from pnc_pack.errors import UsageError


@dataclass
class Selection:
    """The scores of every candidate, in the order given, and the index of the best."""

    candidates: list[str]
    scores: list[float]
    best: int
    details: list[dict] = field(default_factory=list)
    anchors: int = 0
    output: str = "logprob"
    rule: str = "similarity"

    def to_dict(self) -> dict:
        return {"candidates": list(self.candidates), "scores": [round(s, 6) for s in self.scores],
                "best": self.best, "chosen": self.candidates[self.best], "anchors": self.anchors, "output": self.output,
                "rule": self.rule,
                "details": self.details, "method": "local-model-set cosine similarity, ZEST column alignment "
                                                   "(SUPP Eqs. 6-8)"}


OUTPUTS = ("logprob", "logits", "prob")


def local_weights(model, x: torch.Tensor, b: torch.Tensor, grid: int, width: float, ridge: float,
                  output: str = "logprob") -> tuple[torch.Tensor, float]:
    """Θ of ``model`` around anchors ``x`` (already in its input shape) with masks ``b``: (n, grid²+1, C), and R²;
    the local models regress the model's log-probabilities, logits or probabilities (``output``)."""
    from pnc_pack.builder.surrogate import source_logits

    return fit_on(source_logits(model, x, b, grid), b, width, ridge, output)


def fit_on(logits: torch.Tensor, b: torch.Tensor, width: float, ridge: float, output: str):
    """The local models of a model whose logits on the perturbed anchors are ``logits`` (n, |B|, C)."""
    from pnc_pack.builder.surrogate import fit_local_models

    if output == "logprob":
        y = F.log_softmax(logits, -1)
    elif output == "prob":
        y = F.softmax(logits, -1)
    elif output == "logits":
        y = logits
    else:
        raise UsageError(f"unknown output {output!r} for the local models (one of {', '.join(OUTPUTS)})")
    return fit_local_models(b, y, width, ridge)


def _columns(theta: torch.Tensor, intercept: bool) -> torch.Tensor:
    """(n·d, C): each output's weights stacked over all anchors."""
    w = theta if intercept else theta[:, :-1]
    return w.reshape(-1, w.shape[-1]).double()


def align(wa: torch.Tensor, wb: torch.Tensor) -> list[tuple[int, int]]:
    """ZEST's greedy column matching: pairs (column of wa, column of wb), as many as the narrower has columns."""
    dist = 1 - F.normalize(wa, dim=0).T @ F.normalize(wb, dim=0)  # cosine distance, (Ca, Cb)
    pairs = []
    for _ in range(min(dist.shape)):
        k = int(torch.argmin(dist))
        i, j = divmod(k, dist.shape[1])
        pairs.append((i, j))
        dist[i, :] = float("inf")
        dist[:, j] = float("inf")
    return sorted(pairs)


def similarity(theta_a: torch.Tensor, theta_b: torch.Tensor, intercept: bool = False) -> tuple[float, list]:
    """cos(Θ_a, Θ_b) after aligning columns; returns the score and the matched column pairs."""
    wa, wb = _columns(theta_a, intercept), _columns(theta_b, intercept)
    pairs = align(wa, wb)
    a = torch.stack([wa[:, i] for i, _ in pairs], 1).flatten()
    b = torch.stack([wb[:, j] for _, j in pairs], 1).flatten()
    return float(F.cosine_similarity(a, b, dim=0)), pairs


def d_t(dataset, clone_classes, *, data_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """D_t: the builder's share of the to-be-cloned training images, and their dataset labels."""
    from pnc_pack.data import select_classes, take_fraction

    X, y = select_classes(*dataset.train, list(clone_classes))
    X, y = take_fraction(X, y, data_fraction, seed)
    if len(y) == 0:
        raise UsageError(f"{dataset.name}: no training samples of classes {list(clone_classes)}")
    return X, y


def anchors(X: torch.Tensor, max_anchors: int, seed: int) -> torch.Tensor:
    """At most ``max_anchors`` of the images ``X``, drawn with ``seed`` (kept in order)."""
    if len(X) <= max_anchors:
        return X
    return X[torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:max_anchors].sort().values]


@torch.no_grad()
def accuracy_on(model, labels: list[int], X: torch.Tensor, y: torch.Tensor) -> float:
    """The model's accuracy on (X, y), dataset labels, within its own label space."""
    X = model.prepare_images(X)
    dev = next(model.parameters()).device
    pred = torch.cat([model(X[i:i + 2048].to(dev)).argmax(1) for i in range(0, len(X), 2048)]).cpu()
    return float((torch.tensor(labels)[pred] == y.cpu()).float().mean())


def choose(scores: list[float], accuracy: list[float], rule: str, margin: float = 0.02) -> int:
    """The index the rule picks: ``similarity`` (the paper), ``accuracy`` (on D_t; similarity breaks ties) or
    ``competent`` (the most similar among the candidates within ``margin`` of the best D_t accuracy)."""
    idx = range(len(scores))
    if rule == "similarity":
        return max(idx, key=lambda i: (scores[i], -i))
    if rule == "accuracy":
        return max(idx, key=lambda i: (accuracy[i], scores[i], -i))
    if rule == "competent":
        top = max(accuracy)
        return max((i for i in idx if accuracy[i] >= top - margin), key=lambda i: (scores[i], -i))
    raise UsageError(f"unknown selection rule {rule!r} (one of {', '.join(RULES)})")


RULES = ("similarity", "accuracy", "competent")


def _load(target, candidates, clone_classes):
    from pnc_pack.builder.api import resolve
    from pnc_pack.zoo.pretrained import load_pretrained

    if len(candidates) < 1:
        raise UsageError("source selection needs at least one candidate source")
    tgt_dir, tgt_ref = resolve(target)
    tgt = load_pretrained(tgt_dir, tgt_ref)
    if any(c in tgt[1].labels for c in clone_classes):
        raise UsageError(f"classes {[c for c in clone_classes if c in tgt[1].labels]} are already target classes")
    models = []
    for cand in candidates:
        folder, ref = resolve(cand)
        model, mcfg = load_pretrained(folder, ref)
        missing = [c for c in clone_classes if c not in mcfg.labels]
        if missing:
            raise UsageError(f"candidate {cand}: classes {missing} are not among its classes {mcfg.labels}")
        models.append((model, mcfg))
    return tgt, models


@dataclass
class Shared:
    """What every candidate is scored against: the anchors X, D_t (X_all, y_all), the masks b, the settings, the
    variants, the target's labels and its local model set (theta, R²) per variant."""

    X: torch.Tensor
    X_all: torch.Tensor
    y_all: torch.Tensor
    b: torch.Tensor
    cfg: object
    variants: dict
    target_labels: list
    targets: dict


def score_candidate(sh: Shared, spec: str, model, mcfg) -> tuple[float, dict]:
    """One candidate (``mcfg``: its arch and labels): its accuracy on D_t, and per variant (score, details)."""
    from pnc_pack.builder.surrogate import source_logits
    cfg = sh.cfg
    y = source_logits(model, model.prepare_images(sh.X), sh.b, cfg.grid)
    a = accuracy_on(model, mcfg.labels, sh.X_all, sh.y_all)
    out = {}
    for name, v in sh.variants.items():
        theta_t, r2_t = sh.targets[name]
        theta_s, r2_s = fit_on(y, sh.b, cfg.kernel_width, cfg.ridge, v.get("output", "logprob"))
        score, pairs = similarity(theta_s, theta_t, bool(v.get("intercept", False)))
        out[name] = (score, {"source": spec, "arch": mcfg.arch, "score": round(score, 6), "dt_accuracy": round(a, 4),
                             "surrogate_r2": round(r2_s, 4), "target_surrogate_r2": round(r2_t, 4),
                             "matched": [[mcfg.labels[i], sh.target_labels[j]] for i, j in pairs]})
    return a, out


def score_variants(target, candidates, dataset, clone_classes, variants: dict, *, seed: int = 0, config=None,
                   max_anchors: int = 200, masks_per_anchor: int = 100, device=None) -> dict[str, Selection]:
    """One Selection per variant (name -> {"output": ..., "intercept": ...}), every model run once on the same
    perturbed anchors. ``config``: a BuildConfig whose grid, masking rate, kernel width, ridge and data fraction
    are used (the builder's defaults otherwise); ``masks_per_anchor`` is the selection's own (the paper's 100:
    selection is cheap, and with few masks the scores of close candidates swap from one draw of B to the next).
    ``device``: where the models run (:func:`pnc_pack.devices.resolve_device`); the masks are drawn on the CPU."""
    from pnc_pack.builder.config import BuildConfig
    from pnc_pack.builder.distributed import active
    from pnc_pack.builder.surrogate import random_masks, source_logits
    from pnc_pack.data import load_dataset

    names = [str(c) for c in candidates]
    cfg = config or BuildConfig()
    dataset = load_dataset(dataset) if isinstance(dataset, str) else dataset
    clone_classes = [int(c) for c in clone_classes]
    from pnc_pack.devices import resolve_device

    dev = resolve_device(device)
    (tgt, tgt_cfg), models = _load(target, list(candidates), clone_classes)
    for m in [tgt] + [m for m, _ in models]:
        m.to(dev)
    X_all, y_all = d_t(dataset, clone_classes, data_fraction=cfg.data_fraction, seed=seed)
    X = anchors(X_all, max_anchors, seed)
    b = random_masks(len(X), int(masks_per_anchor), cfg.grid, cfg.mask_rate, torch.Generator().manual_seed(seed))
    X, b = X.to(dev), b.to(dev)
    logits_t = source_logits(tgt, tgt.prepare_images(X), b, cfg.grid)
    shared = Shared(X, X_all, y_all, b, cfg, dict(variants), list(tgt_cfg.labels),
                    {n: fit_on(logits_t, b, cfg.kernel_width, cfg.ridge, v.get("output", "logprob"))
                     for n, v in variants.items()})
    runner = active()  # the ranks of a torch.distributed build (builder/distributed.py), or None: here, in order
    per = runner.candidates(shared, names, models) if runner is not None else [
        score_candidate(shared, spec, m, mcfg) for spec, (m, mcfg) in zip(names, models)]
    acc = [a for a, _ in per]
    out = {}
    for name, v in variants.items():
        scores, details = [r[name][0] for _, r in per], [r[name][1] for _, r in per]
        rule = v.get("rule", "similarity")
        out[name] = Selection(names, scores, choose(scores, acc, rule), details, anchors=len(X),
                              output=v.get("output", "logprob"), rule=rule)
    return out


def select_source(target, candidates, dataset, clone_classes, *, seed: int = 0, config=None, max_anchors: int = 200,
                  masks_per_anchor: int = 100, intercept: bool = False, output: str = "logprob",
                  rule: str = "similarity", device=None) -> Selection:
    """Score every candidate source (a folder or ResolvedModel) against ``target`` on D_t and pick one by ``rule``
    (:func:`choose`; settings: :func:`score_variants`)."""
    v = {"output": output, "intercept": intercept, "rule": rule}
    return score_variants(target, candidates, dataset, clone_classes, {"": v}, seed=seed, config=config,
                          max_anchors=max_anchors, masks_per_anchor=masks_per_anchor, device=device)[""]


def build_selected(target, candidates, dataset, clone_classes, *, seed: int = 0, eval_data=None, config=None,
                   progress=None, max_anchors: int = 200, select_masks: int = 100, output: str = "logprob",
                   rule: str = "similarity", device=None, precision: str = "fp32", deterministic: bool = False,
                   **overrides):
    """Select the source (:func:`select_source`), build from it alone; the scores go into ``metrics["selection"]``.
    Returns (delta, selection). ``device``, ``precision``, ``deterministic``: as :func:`build_clone`'s."""
    from dataclasses import replace

    from pnc_pack.builder.api import build_clone
    from pnc_pack.builder.config import BuildConfig

    cfg = config or BuildConfig()
    if overrides:
        BuildConfig.with_overrides(**overrides)  # names every unknown setting
        cfg = replace(cfg, **overrides)
    candidates = list(candidates)
    sel = select_source(target, candidates, dataset, clone_classes, seed=seed, config=cfg, max_anchors=max_anchors,
                        masks_per_anchor=select_masks, output=output, rule=rule, device=device)
    delta = build_clone(target, candidates[sel.best], dataset, clone_classes, seed=seed, eval_data=eval_data,
                        config=cfg, progress=progress, device=device, precision=precision, deterministic=deterministic)
    return replace(delta, metrics={**dict(delta.metrics), "selection": sel.to_dict()}), sel
