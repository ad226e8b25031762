"""Damage a clone delta on purpose, the way a lossy transfer or a cheaper runtime could: for testing and measuring
repair (:mod:`pnc_pack.clone.repair`), never used on the apply path.

Only the delta's own tensors (every adapter and the classifier) are touched; references, masks, positions and the
label map stay as they are, and any signature is dropped (the bytes it signed are gone).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from pnc_pack.clone.convert import from_raw, to_raw
from pnc_pack.format.delta import CloneDelta, RawTensor


def _map_tensors(delta: CloneDelta, fn: Callable[[torch.Tensor], torch.Tensor]) -> CloneDelta:
    def raw(r: RawTensor) -> RawTensor:
        t = from_raw(r)
        return to_raw(fn(t).to(t.dtype)) if t.is_floating_point() else r

    modules = tuple(replace(m, adapter={k: raw(v) for k, v in sorted(m.adapter.items())}) for m in delta.modules)
    classifier = {k: raw(v) for k, v in sorted(delta.classifier.items())}
    return replace(delta, modules=modules, classifier=classifier, signatures=())


def quantize(delta: CloneDelta, bits: int = 4) -> CloneDelta:
    """Every adapter and classifier tensor rounded to ``bits`` bits: symmetric, one scale per tensor
    (``max|t| / (2**(bits-1) - 1)``), values clamped to the signed range, then stored back as floats."""
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in [2, 16], got {bits}")
    top = 2 ** (bits - 1) - 1

    def q(t: torch.Tensor) -> torch.Tensor:
        scale = float(t.abs().max()) / top if t.numel() else 0.0
        if scale == 0.0:
            return t.clone()
        return torch.clamp(torch.round(t / scale), -top - 1, top) * scale

    return _map_tensors(delta, q)


def perturb(delta: CloneDelta, scale: float = 0.5, seed: int = 0) -> CloneDelta:
    """Every adapter and classifier tensor plus Gaussian noise of ``scale`` times its own RMS (unit RMS for an
    all-zero tensor), from a seeded generator: the same inputs give the same damaged delta."""
    g = torch.Generator().manual_seed(seed)

    def noisy(t: torch.Tensor) -> torch.Tensor:
        rms = float(t.pow(2).mean().sqrt()) if t.numel() else 0.0
        return t + scale * (rms or 1.0) * torch.randn(t.shape, generator=g)

    return _map_tensors(delta, noisy)
