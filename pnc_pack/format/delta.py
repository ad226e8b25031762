"""The in-memory clone delta: plain data, torch-free.

``CloneDelta`` is what the builder returns, what ``save``/``load`` turn into bytes and back (``pnc_pack.format``),
and what the loader turns into a cloned network (``pnc_pack.clone``). Tensors are ``RawTensor``: dtype name,
shape and little-endian C-order bytes, exactly as safetensors stores them, so this module needs no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from pnc_pack.errors import FormatError
from pnc_pack.refs import ModelRef

# safetensors dtype names used by the format, and their sizes in bytes.
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class RawTensor:
    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def __post_init__(self):
        if self.dtype not in DTYPE_SIZES:
            raise FormatError(f"unsupported tensor dtype {self.dtype!r}")
        if not isinstance(self.shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in self.shape
        ):
            raise FormatError(f"bad tensor shape {self.shape!r}")
        want = math.prod(self.shape) * DTYPE_SIZES[self.dtype]
        if len(self.data) != want:
            raise FormatError(f"tensor of shape {self.shape} and dtype {self.dtype} needs {want} bytes, has {len(self.data)}")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Mask:
    """A binary filter mask over one maskable layer of a source network, bit-packed.

    Filter ``i`` is kept when bit ``i % 8`` (least significant bit first) of byte ``i // 8`` is 1. Padding bits in
    the last byte are 0.
    """

    layer: str
    filters: int
    bits: bytes

    def __post_init__(self):
        if not isinstance(self.filters, int) or self.filters <= 0:
            raise FormatError(f"mask {self.layer!r}: filter count must be positive")
        if len(self.bits) != (self.filters + 7) // 8:
            raise FormatError(
                f"mask {self.layer!r}: {self.filters} filters need {(self.filters + 7) // 8} bytes, has {len(self.bits)}"
            )
        pad = self.filters % 8
        if pad and self.bits[-1] >> pad:
            raise FormatError(f"mask {self.layer!r}: padding bits past filter {self.filters} must be 0")

    @classmethod
    def from_bools(cls, layer: str, keep) -> "Mask":
        keep = [bool(k) for k in keep]
        out = bytearray((len(keep) + 7) // 8)
        for i, k in enumerate(keep):
            if k:
                out[i // 8] |= 1 << (i % 8)
        return cls(layer, len(keep), bytes(out))

    def to_bools(self) -> list[bool]:
        return [bool(self.bits[i // 8] >> (i % 8) & 1) for i in range(self.filters)]

    @property
    def kept(self) -> int:
        return sum(bin(b).count("1") for b in self.bits)

    @property
    def density(self) -> float:
        return self.kept / self.filters


@dataclass(frozen=True)
class ClonedModule:
    """One transferable module: the masked tail [source_position:source_blocks] of one source, and its adapter."""

    source: ModelRef
    source_blocks: int  # L_s: the source's number of blocks
    target_position: int  # R: where in the target the module branches off (0 <= R < L_t)
    source_position: int  # R_s: the first source block cloned (0 <= R_s < L_s)
    clone_classes: tuple[int, ...]  # indices into the source's outputs that this module clones
    masks: tuple[Mask, ...]
    adapter_kind: str  # a registered adapter kind (pnc_pack.clone), never code
    adapter_args: Mapping[str, Any]
    adapter: Mapping[str, RawTensor]


@dataclass(frozen=True)
class LabelEntry:
    """Output index -> where that class comes from. ``model`` is "target" or "source:<module index>"."""

    model: str
    class_index: int
    name: str


@dataclass(frozen=True)
class Signature:
    """An Ed25519 signature over the delta's digest. ``public_key`` is the 32-byte raw key."""

    public_key: bytes
    signature: bytes


@dataclass(frozen=True)
class CloneDelta:
    target: ModelRef
    target_blocks: int  # L_t
    modules: tuple[ClonedModule, ...]
    classifier_kind: str  # a registered classifier kind (pnc_pack.clone), never code
    classifier_args: Mapping[str, Any]
    classifier: Mapping[str, RawTensor]
    labels: tuple[LabelEntry, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict)  # builder config, seed, library versions
    metrics: Mapping[str, Any] = field(default_factory=dict)  # measured metrics (accuracy, loss per R, ...)
    signatures: tuple[Signature, ...] = ()

    @property
    def refs(self) -> list[ModelRef]:
        return [self.target] + [m.source for m in self.modules]

    @property
    def has_local_refs(self) -> bool:
        return any(r.is_local for r in self.refs)

    def tensors(self) -> dict[str, RawTensor]:
        """Every tensor under its payload name (spec: "Tensor naming")."""
        out = {f"classifier.{k}": v for k, v in self.classifier.items()}
        for i, m in enumerate(self.modules):
            out.update({f"modules.{i}.adapter.{k}": v for k, v in m.adapter.items()})
        return out
