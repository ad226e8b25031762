"""Choosing a source (SUPP Eqs. 6-8): the candidate whose local model set on D_t is most like the target's.

    ρ* = argmax_ρ Sim(M_s^ρ|D_t, M_t|D_t) = argmax_ρ cos(Θ_s^ρ, Θ_t)

Θ_m is the local model set of model m around D_t (SUPP Eqs. 1-4, :mod:`pnc_pack.build.surrogate`): for every
anchor x_i of D_t and the *same* random patch masks B for every model, g_i(b) = [b, 1]·θ_i is fitted by weighted
ridge least squares to m's logits on b·x_i. θ_i has one column per output of m.

Source and target have different outputs, so the columns are aligned first, as ZEST does (``lime_align``): each
column is its weights stacked over all anchors; of the model with fewer columns, every column is matched to the
other model's column at the smallest cosine distance, greedily (the globally closest pair first, both removed,
repeat); the cosine is then taken between the matched, flattened weights.

[INFERRED] choices, made here:
- the intercept row of θ_i (the logit level with every patch shown) is left out by default: its scale is set by
  each model's logit offsets, and it would dominate the patch weights the paper compares (``intercept=True``
  keeps it);
- N: at most ``max_anchors`` anchors (the paper: N < |D_t|), drawn from the same share of the to-be-cloned
  training samples as the builder uses (``data_fraction``), with the builder's grid, masking rate, kernel width,
  ridge and masks per anchor;
- images are fitted to each model's input shape (heterogeneous candidates); the masks live on the patch grid, so
  every model sees the same perturbations.

Costs one forward pass of each model over N·|B| perturbed images: no training, so choosing among P candidates and
building once costs about 1/P of building from every candidate (SUPP §1.2).
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

    def to_dict(self) -> dict:
        return {"candidates": list(self.candidates), "scores": [round(s, 6) for s in self.scores],
                "best": self.best, "chosen": self.candidates[self.best], "anchors": self.anchors,
                "details": self.details, "method": "local-model-set cosine similarity, ZEST column alignment "
                                                   "(SUPP Eqs. 6-8)"}


def local_weights(model, x: torch.Tensor, b: torch.Tensor, grid: int, width: float, ridge: float) -> tuple[torch.Tensor, float]:
    """Θ of ``model`` around anchors ``x`` (already in its input shape) with masks ``b``: (n, grid²+1, C), and R²."""
    from pnc_pack.build.surrogate import fit_local_models, source_logits

    y = source_logits(model, x, b, grid)
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


def anchors(dataset, clone_classes, *, data_fraction: float, max_anchors: int, seed: int) -> torch.Tensor:
    """D_t's anchors: the builder's share of the to-be-cloned training images, at most ``max_anchors``."""
    from pnc_pack.data import select_classes, take_fraction

    X, y = select_classes(*dataset.train, list(clone_classes))
    X, y = take_fraction(X, y, data_fraction, seed)
    if len(y) == 0:
        raise UsageError(f"{dataset.name}: no training samples of classes {list(clone_classes)}")
    if len(y) > max_anchors:
        idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:max_anchors].sort().values
        X = X[idx]
    return X


def select_source(candidates, target, dataset, clone_classes, *, seed: int = 0, config=None, max_anchors: int = 200,
                  masks_per_anchor: int | None = None, intercept: bool = False) -> Selection:
    """Score every candidate source (folder or ``hf://`` spec) against ``target`` on D_t; the best is the highest.

    ``config``: a BuildConfig whose grid, masking rate, kernel width, ridge, masks per anchor and data fraction
    are used (the builder's defaults otherwise)."""
    from pnc_pack.build.api import resolve
    from pnc_pack.build.config import BuildConfig
    from pnc_pack.build.surrogate import random_masks
    from pnc_pack.data import fit_to_shape, load_dataset
    from pnc_pack.zoo.pretrained import load_pretrained

    candidates = [str(c) for c in candidates]
    if len(candidates) < 1:
        raise UsageError("source selection needs at least one candidate source")
    cfg = config or BuildConfig()
    per = masks_per_anchor or cfg.masks_per_anchor
    if isinstance(dataset, str):
        dataset = load_dataset(dataset)
    clone_classes = [int(c) for c in clone_classes]
    tgt_dir, tgt_ref = resolve(target)
    tgt, tgt_cfg = load_pretrained(tgt_dir, tgt_ref)
    if any(c in tgt_cfg.labels for c in clone_classes):
        raise UsageError(f"classes {[c for c in clone_classes if c in tgt_cfg.labels]} are already target classes")
    models = []
    for spec in candidates:
        folder, ref = resolve(spec)
        model, mcfg = load_pretrained(folder, ref)
        missing = [c for c in clone_classes if c not in mcfg.labels]
        if missing:
            raise UsageError(f"candidate {spec}: classes {missing} are not among its classes {mcfg.labels}")
        models.append((model, mcfg))
    X = anchors(dataset, clone_classes, data_fraction=cfg.data_fraction, max_anchors=max_anchors, seed=seed)
    b = random_masks(len(X), per, cfg.grid, cfg.mask_rate, torch.Generator().manual_seed(seed))
    fit = lambda m: local_weights(m, fit_to_shape(X, m.input_shape), b, cfg.grid, cfg.kernel_width, cfg.ridge)  # noqa: E731
    theta_t, r2_t = fit(tgt)
    scores, details = [], []
    for spec, (model, mcfg) in zip(candidates, models):
        theta_s, r2_s = fit(model)
        score, pairs = similarity(theta_s, theta_t, intercept)
        scores.append(score)
        details.append({"source": spec, "arch": mcfg.arch, "score": round(score, 6), "surrogate_r2": round(r2_s, 4),
                        "target_surrogate_r2": round(r2_t, 4),
                        "matched": [[mcfg.labels[i], tgt_cfg.labels[j]] for i, j in pairs]})
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return Selection(candidates, scores, best, details, anchors=len(X))


def build_selected(candidates, target, dataset, clone_classes, *, seed: int = 0, eval_data=None, config=None,
                   progress=None, max_anchors: int = 200, **overrides):
    """Select the source (:func:`select_source`), build from it alone; the scores go into ``metrics["selection"]``.
    Returns (delta, selection)."""
    from dataclasses import replace

    from pnc_pack.build.api import build_clone
    from pnc_pack.build.config import BuildConfig

    cfg = config or BuildConfig()
    if overrides:
        BuildConfig.with_overrides(**overrides)  # names every unknown setting
        cfg = replace(cfg, **overrides)
    sel = select_source(candidates, target, dataset, clone_classes, seed=seed, config=cfg, max_anchors=max_anchors)
    delta = build_clone(sel.candidates[sel.best], target, dataset, clone_classes, seed=seed, eval_data=eval_data,
                        config=cfg, progress=progress)
    return replace(delta, metrics={**dict(delta.metrics), "selection": sel.to_dict()}), sel
