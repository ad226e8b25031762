"""The local model set G (SUPP §1.1, Eqs. 1-4): a LIME-style linear surrogate of the source around each anchor.

For anchor x_i and binary patch masks b (H×H grid), the perturbed image b·x_i keeps patch h when b^h = 1 and fills
it with its own mean colour otherwise. g_i(b) = [b, 1]·θ_i is fitted by weighted ridge least squares to the
source's logits M_s(b·x_i), weights Π_b = sqrt(exp(-d(b,1)²/σ²)) with d the cosine distance to the all-ones mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_masks(n: int, per: int, grid: int, rate: float, gen: torch.Generator) -> torch.Tensor:
    """(n, per, grid²) 0/1 masks; the first mask of every anchor keeps everything."""
    b = (torch.rand(n, per, grid * grid, generator=gen) >= rate).float()
    b[:, 0] = 1.0
    return b


def perturb(x: torch.Tensor, b: torch.Tensor, grid: int) -> torch.Tensor:
    """Images x (N,C,H,W) with masks b (N, grid²): hidden patches take their own mean colour (SUPP Eq. 2)."""
    n, c, h, w = x.shape
    means = F.adaptive_avg_pool2d(x, grid)  # (N, C, grid, grid): every patch's mean
    m = b.view(n, 1, grid, grid)
    if h % grid or w % grid:  # uneven patches: nearest upsampling decides which pixel belongs to which patch
        up = lambda t: F.interpolate(t, size=(h, w), mode="nearest")  # noqa: E731
        return x * up(m) + up(means * (1 - m))
    # Even patches: the grid broadcast over each patch's pixels, not upsampled first; the same products and sums,
    # so the same floats, about 4x faster on one CPU thread (no full-size copies of m and the fill).
    patch = lambda t: t[:, :, :, None, :, None]  # noqa: E731
    x6 = x.reshape(n, c, grid, h // grid, grid, w // grid)
    return (x6 * patch(m) + patch(means * (1 - m))).reshape(n, c, h, w)


def kernel_weights(b: torch.Tensor, width: float) -> torch.Tensor:
    """Π_b = sqrt(exp(-d²/σ²)), d = 1 - cos(b, 1) (LIME's image kernel)."""
    cos = b.sum(-1).clamp(min=0).sqrt() / (b.shape[-1] ** 0.5)
    d = 1.0 - cos
    return torch.exp(-(d ** 2) / width ** 2).sqrt()


CHUNK = {"cpu": 512}  # images per frozen forward pass, by device type; any other: 4096


def chunk_for(device: torch.device) -> int:
    """Images per frozen forward pass on ``device``: 512 on the CPU, where a LeNet-sized pass over 4096 images
    spills its activations out of the caches and runs about twice as slow per image; 4096 elsewhere. Outputs do
    not depend on it (each image's forward pass is computed alone), only the time does (docs/devices.md)."""
    return CHUNK.get(torch.device(device).type, 4096)


@torch.inference_mode()
def source_logits(source, x: torch.Tensor, b: torch.Tensor, grid: int, chunk: int | None = None) -> torch.Tensor:
    """M_s(b·x_i) for every anchor and mask: (n, per, C)."""
    n, per, _ = b.shape
    chunk = chunk or chunk_for(x.device)
    out = []
    xs = x.repeat_interleave(per, 0)
    bs = b.reshape(n * per, -1)
    for i in range(0, n * per, chunk):
        out.append(source(perturb(xs[i:i + chunk], bs[i:i + chunk], grid)).float())
    return torch.cat(out).view(n, per, -1)


def fit_local_models(b: torch.Tensor, y: torch.Tensor, width: float, ridge: float) -> tuple[torch.Tensor, float]:
    """θ (n, grid²+1, C) by weighted ridge least squares; returns θ and the weighted R² of the fit."""
    n, per, d = b.shape
    z = torch.cat([b, torch.ones(n, per, 1, device=b.device)], -1).double()  # intercept
    w = kernel_weights(b, width).double().unsqueeze(-1)  # (n, per, 1)
    zw = z * w
    a = zw.transpose(1, 2) @ z + ridge * torch.eye(d + 1, dtype=torch.float64, device=b.device)
    rhs = zw.transpose(1, 2) @ y.double()
    theta = torch.linalg.solve(a, rhs)
    pred = z @ theta
    yd = y.double()
    mean = (w * yd).sum(1, keepdim=True) / w.sum(1, keepdim=True)
    ss_res = (w * (yd - pred) ** 2).sum()
    ss_tot = (w * (yd - mean) ** 2).sum().clamp(min=1e-12)
    return theta.float(), float(1 - ss_res / ss_tot)


def surrogate_outputs(b: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """G(B): g_i(b) for every anchor's masks, (n, per, C)."""
    z = torch.cat([b, torch.ones(*b.shape[:2], 1, device=b.device)], -1)
    return z @ theta
