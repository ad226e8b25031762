"""Data-free negatives: pseudo old-class images made from D_t alone (an addition to the paper, PAPER.md §8).

PNC sees no image of the target's own classes, yet the clone must keep new-class logits below the target's on
them. Generic transforms of the D_t images (rotations, flips, transposes, left/right and top/bottom halves of two
anchors, quadrant swaps) give stroke images with the statistics of real inputs; those the *frozen target*
classifies confidently as one of its classes, and the source does not call a cloned class, are kept and labelled
with the target's class. Nothing here depends on the dataset: only the two frozen models decide.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


@torch.no_grad()
def make_negatives(x: torch.Tensor, target, source, clone_idx: list[int], *, target_conf: float, source_max: float,
                   gen: torch.Generator, limit: int, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, target class index) of the kept negatives, at most ``limit`` of them."""
    cand = candidates(x, gen)
    keep_x, keep_y = [], []
    for i in range(0, len(cand), chunk):
        c = cand[i:i + chunk]
        pt = F.softmax(target(c), 1)
        ps = F.softmax(source(c), 1)[:, clone_idx].sum(1)
        conf, cls = pt.max(1)
        ok = (conf >= target_conf) & (ps <= source_max)
        keep_x.append(c[ok])
        keep_y.append(cls[ok])
    xs, ys = torch.cat(keep_x), torch.cat(keep_y)
    if len(xs) > limit:
        idx = torch.randperm(len(xs), generator=gen)[:limit].sort().values
        xs, ys = xs[idx], ys[idx]
    return xs, ys
