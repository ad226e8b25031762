"""The resize step of a transformers image processor, as its Pillow backend runs it, for a batch of images.

``processor_resize(X, size, resample)``: images ``[N, C, H, W]`` (uint8, or float32 in [0, 1], which is rounded to
uint8 first as the processor's own conversion to a PIL image does), grayscale made RGB (the channel repeated, as
PIL's ``convert("RGB")`` does), each image resized by Pillow to ``size`` x ``size`` with the processor's filter
(``resample``, a PIL filter number; ``reducing_gap`` None), and returned as float32 in [0, 1] on the uint8 grid.
The centre crop, rescale and normalisation that follow are the model's first block (``pnc_pack.zoo.hf``). Images
of the size already are not resampled. Non-square images are resized to a square (a ``shortest_edge`` processor
keeps the aspect ratio and crops: equal for square images, which is what the datasets here hold).
Float images of that size with three channels are taken as prepared already and returned as they are, so
preparing twice changes nothing. ``tests/test_zoo_hf_processor.py`` compares the whole pipeline with transformers' own processors on MNIST.
"""

from __future__ import annotations

import numpy as np
import torch

from pnc_pack.errors import ArchitectureError


def _uint8(X: torch.Tensor) -> torch.Tensor:
    if X.dtype == torch.uint8:
        return X
    return X.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def processor_resize(X: torch.Tensor, size: int, resample: int, chunk: int = 4096) -> torch.Tensor:
    """See the module docstring; runs on the CPU (Pillow), returns the images on ``X``'s device."""
    if X.dim() != 4 or X.shape[1] not in (1, 3):
        raise ArchitectureError(f"expected images [N, 1 or 3, H, W], got shape {list(X.shape)}")
    n, c, h, w = X.shape
    if X.dtype != torch.uint8 and (c, h, w) == (3, size, size):
        return X if X.dtype == torch.float32 else X.float()
    out = torch.empty((n, 3, size, size), dtype=torch.float32)
    for s in range(0, n, chunk):
        x = _uint8(X[s:s + chunk].cpu())
        if c == 1:
            x = x.expand(-1, 3, -1, -1)
        if (h, w) != (size, size):
            from PIL import Image

            arr = x.permute(0, 2, 3, 1).contiguous().numpy()
            res = np.empty((len(arr), size, size, 3), dtype=np.uint8)
            for i, a in enumerate(arr):
                res[i] = np.asarray(Image.fromarray(a, "RGB").resize((size, size), resample=resample,
                                                                      reducing_gap=None))
            x = torch.from_numpy(res).permute(0, 3, 1, 2)
        out[s:s + chunk] = x.to(torch.float32).div_(255.0)
    return out.to(X.device)
