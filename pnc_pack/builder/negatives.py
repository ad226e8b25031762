"""Data-free negatives: pseudo old-class images made from D_t alone (an addition to the paper, PAPER.md §8).

PNC sees no image of the target's own classes, yet the clone must keep new-class logits below the target's on
them. Two generators, both filtered the same way: a candidate is kept when the *frozen target* classifies it
confidently as one of its classes and the source does not call it a cloned class; it is labelled with the
target's class. Nothing here depends on the dataset: only the two frozen models decide.

- ``transforms``: generic transforms of the D_t images (rotations, flips, transposes, halves and quadrants of two
  anchors) give stroke images with the statistics of real inputs.
- ``typical`` (the default): a larger pool (those transforms; the four mirror-symmetrised halves of the D_t images;
  of a random subset of the transforms four times |D_t| large: their symmetrised halves, their shifts by a ninth of
  the image, and a second round of transforms), filtered the same way; of what passes, each target class keeps
  the ``limit / n_old`` candidates with the largest target logsumexp: the ones most typical of that class for the
  target. The plain ``transforms`` negatives sit far from real old-class images in the target's eyes (a rotated
  or mirrored 5 is nothing like a real 3); the typical ones, class-balanced, sit closer, and routed better.
- novelty (``neg_novelty``, on by default, any kind): the source's call is a poor judge of "this is a cloned-class
  image": it calls a large share of real old-class images a cloned class, exactly the look-alikes routing must
  learn. So a candidate the source calls cloned is still kept when it lies far from every D_t anchor in the
  source's feature space (:class:`Novelty`: beyond the ``neg_novelty`` quantile of the held-out anchors'
  distances), a distance that does tell old-class from cloned-class images.
- patch masks (``neg_masks``, any kind, off by default): the kept negatives also come in copies under random
  patch masks, drawn and filled exactly as D_t's perturbed samples (:func:`patch_masked`), so that occlusion,
  which nearly every positive of L_ce has, is no cue for "cloned class". Measured mixed (it keeps one seed's Ori
  in the band at a higher recall and pushes another model's out) and slower, so an option.
- ``inversion``: each D_t image is pushed by a few Adam steps on its pixels towards a random target class
  (cross-entropy through the frozen target, a total-variation prior, clamped to the images' value range): images
  just across the target's boundary from the cloned classes, which is where routing errors happen. It helped M on
  one seed and did not hold over three, so it is an option.

The measurements behind each choice (commands, results files, the data split): docs/builder-notes.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pnc_pack.builder.surrogate import chunk_for, perturb, random_masks
from pnc_pack.zoo.optim import make_adam


def candidates(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = len(x)
    perm = torch.randperm(n, generator=gen)
    a, b = x, x[perm]
    h, w = x.shape[-2:]
    out = [torch.rot90(x, r, (2, 3)) for r in (1, 2, 3)] if h == w else [torch.rot90(x, 2, (2, 3))]
    out += [x.flip(3), x.flip(2)]
    if h == w:
        out.append(x.transpose(2, 3))
    out.append(torch.cat([a[..., : w // 2], b[..., w // 2:]], 3))
    out.append(torch.cat([a[..., : h // 2, :], b[..., h // 2:, :]], 2))
    out.append(torch.roll(x, shifts=(h // 2, w // 2), dims=(2, 3)))
    out.append(torch.maximum(a, b.flip(3)))
    return torch.cat(out)


def symmetrized(x: torch.Tensor) -> torch.Tensor:
    """Each half mirrored onto the other: top, bottom, left and right (a bowl becomes a closed shape, etc.)."""
    h, w = x.shape[-2:]
    top, bottom = x[..., : h // 2, :], x[..., h - h // 2:, :]
    left, right = x[..., : w // 2], x[..., w - w // 2:]
    out = [torch.cat([bottom.flip(2), bottom], 2), torch.cat([left, left.flip(3)], 3),
           torch.cat([right.flip(3), right], 3)]
    if h % 2 == 0:
        out.insert(0, torch.cat([top, top.flip(2)], 2))
    return torch.cat(out)


def shifted(x: torch.Tensor) -> torch.Tensor:
    """Rolled by a ninth of the image up, down, left and right."""
    h, w = x.shape[-2:]
    dy, dx = max(1, h // 9), max(1, w // 9)
    return torch.cat([torch.roll(x, d, dims) for d, dims in ((dx, 3), (-dx, 3), (dy, 2), (-dy, 2))])


def typical_pool(x: torch.Tensor, gen: torch.Generator):
    """The ``typical`` kind's candidates, in chunks (see the module's docs)."""
    first = candidates(x, gen)
    yield first
    yield symmetrized(x)
    for make in (symmetrized, shifted, lambda c: candidates(c, gen)):
        yield make(first[torch.randperm(len(first), generator=gen)[: 4 * len(x)]])


def settings(cfg) -> dict:
    """The make_negatives keywords a BuildConfig sets (thresholds, kind, inversion schedule)."""
    return dict(target_conf=cfg.neg_target_conf, source_max=cfg.neg_source_max, kind=cfg.negatives,
                inversion_steps=cfg.inversion_steps, inversion_copies=cfg.inversion_copies)


def make_negatives(x: torch.Tensor, target, source, clone_idx: list[int], *, target_conf: float, source_max: float,
                   gen: torch.Generator, limit: int, kind: str = "transforms", n_old: int | None = None,
                   inversion_steps: int = 30, inversion_lr: float = 0.05, inversion_tv: float = 0.02,
                   inversion_copies: int = 1, novelty: Novelty | None = None,
                   chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, target class index) of the kept negatives, at most ``limit`` of them. ``kind``: typical,
    transforms, inversion or both. ``novelty``: also keep candidates the source calls a cloned class when they
    are far from the D_t anchors (see :class:`Novelty`)."""
    n_old = n_old or target.num_classes
    chunk = chunk or chunk_for(x.device)
    if kind == "typical":
        return _keep_typical(typical_pool(x, gen), target, source, clone_idx, target_conf, source_max, limit, n_old,
                             chunk, novelty)
    parts = []
    if kind in ("transforms", "both"):
        parts.append(candidates(x, gen))
    if kind in ("inversion", "both"):
        with torch.enable_grad():
            parts.append(inversion_candidates(x, target, n_old, steps=inversion_steps,
                                              lr=inversion_lr, tv=inversion_tv, copies=inversion_copies,
                                              gen=gen))
    if not parts:
        raise ValueError(f"unknown negatives kind {kind!r}")
    return _keep(torch.cat(parts), target, source, clone_idx, target_conf, source_max, gen, limit, chunk, novelty)


def _target_view(c, target, target_conf):
    """Of candidates ``c``: whether the target is confident enough, its class, its logsumexp (typicality)."""
    logits = target(c)
    conf, cls = F.softmax(logits, 1).max(1)
    return conf >= target_conf, cls, torch.logsumexp(logits, 1)


class Novelty:
    """How far images lie from the D_t anchors in the source's feature space: the mean cosine-normalised distance
    to the ``k`` nearest anchors. ``far`` is True beyond the ``quantile`` of the held-out anchors' own distances,
    i.e. where at most a share 1 - quantile of real cloned-class images lie."""

    def __init__(self, features, anchors: torch.Tensor, held_out: torch.Tensor, quantile: float, k: int = 5):
        self.features, self.k = features, k
        self.ref = self._embed(anchors)
        self.threshold = float(torch.quantile(self.distance(held_out), quantile)) if len(held_out) else float("inf")

    @torch.no_grad()
    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(x).flatten(1), dim=1)

    def distance(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """``features``: ``self.features(x)`` when the caller has them already (one source pass, not two)."""
        e = self._embed(x) if features is None else F.normalize(features.flatten(1), dim=1)
        d = torch.cdist(e, self.ref)
        return d.topk(min(self.k, self.ref.shape[0]), 1, largest=False).values.mean(1)

    def far(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return self.distance(x, features) > self.threshold


def _source_allows(c, source, clone_idx, source_max, novelty: Novelty | None = None):
    """Of candidates ``c``: whether the source does not call them a cloned class, or (with ``novelty``, which
    judges only the ones the source refused) they lie far from every D_t anchor in the source's feature space."""
    feats = source.features(c)  # source(c) is head(features): the same pass serves the novelty's embedding
    allowed = F.softmax(source.head(feats), 1)[:, clone_idx].sum(1) <= source_max
    refused = ~allowed
    if novelty is not None and refused.any():
        same = novelty.features == source.features  # bound methods: equal when the same model's
        allowed[refused] = novelty.far(c[refused], feats[refused] if same else None)
    return allowed


@torch.no_grad()
def _passing(c, target, source, clone_idx, target_conf, source_max, novelty=None):
    """Of candidates ``c``: which pass the filter, the target's class and the target's logsumexp."""
    ok, cls, energy = _target_view(c, target, target_conf)
    return ok & _source_allows(c, source, clone_idx, source_max, novelty), cls, energy


@torch.no_grad()
def _keep_typical(parts, target, source, clone_idx, target_conf, source_max, limit, n_old, chunk, novelty=None):
    """Per target class, the ``limit // n_old`` candidates of largest target logsumexp that pass the filter. The
    target sees every candidate; the source only the confident ones, in that order, until each class has enough."""
    xs, ys, es = [], [], []
    for part in parts:
        xs.append(part[:0])  # an empty pool still has the images' shape
        ys.append(torch.empty(0, dtype=torch.long, device=part.device))
        es.append(torch.empty(0, device=part.device))
        for i in range(0, len(part), chunk):
            c = part[i:i + chunk]
            ok, cls, energy = _target_view(c, target, target_conf)
            xs.append(c[ok])
            ys.append(cls[ok])
            es.append(energy[ok])
    xs, ys, es = torch.cat(xs), torch.cat(ys), torch.cat(es)
    want, keep = max(1, limit // n_old), []
    for c in range(n_old):
        order = (ys == c).nonzero().flatten()
        order = order[torch.argsort(es[order], descending=True, stable=True)]
        got = 0
        for i in range(0, len(order), 2 * want):
            part = order[i:i + 2 * want]
            part = part[_source_allows(xs[part], source, clone_idx, source_max, novelty)][: want - got]
            keep.append(part)
            got += len(part)
            if got >= want:
                break
    idx = torch.cat(keep).sort().values if keep else torch.empty(0, dtype=torch.long, device=xs.device)
    return xs[idx], ys[idx]


@torch.no_grad()
def _keep(cand, target, source, clone_idx, target_conf, source_max, gen, limit, chunk, novelty=None):
    keep_x, keep_y = [], []
    for i in range(0, len(cand), chunk):
        c = cand[i:i + chunk]
        ok, cls, _ = _passing(c, target, source, clone_idx, target_conf, source_max, novelty)
        keep_x.append(c[ok])
        keep_y.append(cls[ok])
    xs, ys = torch.cat(keep_x), torch.cat(keep_y)
    if len(xs) > limit:
        idx = torch.randperm(len(xs), generator=gen)[:limit].sort().values
        xs, ys = xs[idx], ys[idx]
    return xs, ys


def patch_masked(x: torch.Tensor, y: torch.Tensor, *, copies: int, grid: int, rate: float, gen: torch.Generator):
    """The negatives and ``copies`` more of each under random patch masks, drawn and applied exactly as the D_t
    samples' (:func:`pnc_pack.builder.surrogate.random_masks`, ``perturb``), labels repeated."""
    if copies == 0 or len(x) == 0:
        return x, y
    b = random_masks(len(x), copies + 1, grid, rate, gen).to(x.device)  # mask 0 keeps everything: the clean one
    masked = torch.cat([perturb(x, b[:, m], grid) for m in range(copies + 1)])
    return masked, y.repeat(copies + 1)


def inversion_candidates(x: torch.Tensor, target, n_old: int, *, steps: int, lr: float, tv: float, copies: int,
                         gen: torch.Generator, chunk: int = 1024) -> torch.Tensor:
    """``copies`` inverted images per D_t image; gradients go to the pixels only (never into the target)."""
    lo, hi = float(x.min()), float(x.max())
    x = x.repeat(copies, *([1] * (x.dim() - 1)))
    out = []
    for i in range(0, len(x), chunk):
        z = x[i:i + chunk].clone().requires_grad_(True)
        want = torch.randint(0, n_old, (len(z),), generator=gen).to(z.device)
        opt = make_adam([{"params": [z], "lr": lr * (hi - lo)}], z.device)
        for _ in range(steps):
            xx = z.clamp(lo, hi)
            prior = (xx[..., 1:, :] - xx[..., :-1, :]).abs().mean() + (xx[..., :, 1:] - xx[..., :, :-1]).abs().mean()
            loss = F.cross_entropy(target(xx), want) + tv * prior / (hi - lo)
            (z.grad,) = torch.autograd.grad(loss, [z])
            opt.step()
        out.append(z.detach().clamp(lo, hi))
    return torch.cat(out)
