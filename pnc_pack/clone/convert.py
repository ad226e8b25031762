"""torch tensors <-> RawTensor (the format's torch-free tensors)."""

from __future__ import annotations

import torch

from pnc_pack.format.delta import RawTensor

_TO_NAME = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
            torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
            torch.bool: "BOOL"}
_FROM_NAME = {v: k for k, v in _TO_NAME.items()}


def to_raw(t: torch.Tensor) -> RawTensor:
    t = t.detach().to("cpu").contiguous()
    if t.dtype not in _TO_NAME:
        raise TypeError(f"unsupported dtype {t.dtype}")
    data = t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return RawTensor(_TO_NAME[t.dtype], tuple(int(d) for d in t.shape), data)


def from_raw(raw: RawTensor) -> torch.Tensor:
    dtype = _FROM_NAME[raw.dtype]
    if not raw.data:
        return torch.empty(raw.shape, dtype=dtype)
    return torch.frombuffer(bytearray(raw.data), dtype=torch.uint8).view(dtype).reshape(raw.shape).clone()


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over a module's state_dict: every name, dtype, shape and byte, in sorted order."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        raw = to_raw(t)
        h.update(f"{name}|{raw.dtype}|{raw.shape}|".encode())
        h.update(raw.data)
    return h.hexdigest()
