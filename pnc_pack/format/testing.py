"""Torch-free builders of CloneDelta objects for tests, vectors and benchmarks.

Tensors are made from Python floats with ``struct`` (BF16 = the upper half of the F32 bit pattern, rounded to
nearest even), references from fixed fake digests. Everything is a pure function of its arguments.
"""

from __future__ import annotations

import hashlib
import random
import struct
from typing import Iterable, Sequence

from pnc_pack.format.delta import DTYPE_SIZES, CloneDelta, ClonedModule, LabelEntry, Mask, RawTensor
from pnc_pack.refs import FileDigest, ModelRef

_FMT = {"F64": "d", "F32": "f", "F16": "e", "I64": "q", "I32": "i", "I16": "h", "I8": "b", "U8": "B", "BOOL": "?"}


def _bf16(x: float) -> bytes:
    (bits,) = struct.unpack("<I", struct.pack("<f", x))
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
    return struct.pack("<H", bits & 0xFFFF)


def tensor_from_values(dtype: str, shape: Sequence[int], values: Iterable) -> RawTensor:
    values = list(values)
    if dtype == "BF16":
        data = b"".join(_bf16(float(v)) for v in values)
    else:
        data = struct.pack(f"<{len(values)}{_FMT[dtype]}", *values)
    return RawTensor(dtype, tuple(shape), data)


def random_tensor(dtype: str, shape: Sequence[int], seed: int = 0, scale: float = 0.05) -> RawTensor:
    """Gaussian values (floats) or small integers, from ``random.Random(seed)``."""
    rng = random.Random(seed)
    n = 1
    for d in shape:
        n *= d
    if dtype in ("F64", "F32", "F16", "BF16"):
        vals = [rng.gauss(0.0, scale) for _ in range(n)]
    elif dtype == "BOOL":
        vals = [rng.random() < 0.5 for _ in range(n)]
    else:
        bits = DTYPE_SIZES[dtype] * 8
        lo, hi = (0, 255) if dtype == "U8" else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        vals = [rng.randint(max(lo, -1000), min(hi, 1000)) for _ in range(n)]
    return tensor_from_values(dtype, shape, vals)


def _fake_sha(*parts) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def hub_ref(repo_id: str = "pnc-test/lenet5-mnist-0-4", arch: str = "lenet5", seed: int = 0,
            arch_args: dict | None = None) -> ModelRef:
    files = {n: FileDigest(_fake_sha(repo_id, n, seed), 1000 + 17 * i + seed)
             for i, n in enumerate(("config.json", "model.safetensors"))}
    return ModelRef(arch, arch_args if arch_args is not None else {"num_classes": 5}, files, repo_id=repo_id,
                    commit=_fake_sha("commit", repo_id, seed)[:40])


def local_ref(path: str = "models/source-a", arch: str = "lenet5", seed: int = 0) -> ModelRef:
    files = {n: FileDigest(_fake_sha(path, n, seed), 2000 + i)
             for i, n in enumerate(("config.json", "model.safetensors"))}
    return ModelRef(arch, {"num_classes": 5}, files, path=path)


def make_module(i: int = 0, *, source: ModelRef | None = None, dtype: str = "F32", classes=(0, 1),
                filters=(6, 16), width: int = 8, target_position: int = 2, source_blocks: int = 4,
                source_position: int = 2, seed: int = 0) -> ClonedModule:
    rng = random.Random(seed * 1000 + i)
    masks = tuple(Mask.from_bools(f"blocks.{j + source_position}.act", [rng.random() < 0.6 for _ in range(n)])
                  for j, n in enumerate(filters))
    adapter = {
        "proj.weight": random_tensor(dtype, (width, filters[-1]), seed=seed * 100 + i * 10 + 1),
        "proj.bias": random_tensor(dtype, (width,), seed=seed * 100 + i * 10 + 2),
    }
    return ClonedModule(
        source=source or hub_ref(f"pnc-test/source-{i}", seed=seed + i), source_blocks=source_blocks,
        target_position=target_position, source_position=source_position, clone_classes=tuple(classes),
        masks=masks, adapter_kind="conv1x1", adapter_args={"in_channels": filters[-1], "out_channels": width},
        adapter=adapter,
    )


def make_delta(n_modules: int = 1, *, dtype: str = "F32", classifier_dtype: str | None = None,
               local: bool = False, target_classes: int = 5, classes_per_module: int = 2, width: int = 8,
               features: int = 16, seed: int = 0, provenance: dict | None = None, metrics: dict | None = None
               ) -> CloneDelta:
    """A small, valid CloneDelta: target + ``n_modules`` cloned modules + a linear classifier over all labels."""
    target = local_ref("models/target") if local else hub_ref("pnc-test/target", seed=seed)
    modules = tuple(
        make_module(i, dtype=dtype, classes=tuple(range(classes_per_module)), width=width, seed=seed,
                    source=local_ref(f"models/source-{i}", seed=seed) if local and i == 0 else None)
        for i in range(n_modules))
    labels = [LabelEntry("target", c, f"digit {c}") for c in range(target_classes)]
    for i, m in enumerate(modules):
        labels += [LabelEntry(f"source:{i}", c, f"source {i} class {c}") for c in m.clone_classes]
    cdt = classifier_dtype or dtype
    n_out = len(labels)
    in_features = features + width * n_modules
    classifier = {"weight": random_tensor(cdt, (n_out, in_features), seed=seed * 7 + 3),
                  "bias": random_tensor(cdt, (n_out,), seed=seed * 7 + 4)}
    return CloneDelta(
        target=target, target_blocks=4, modules=modules, classifier_kind="linear",
        classifier_args={"in_features": in_features, "num_outputs": n_out}, classifier=classifier,
        labels=tuple(labels),
        provenance=provenance if provenance is not None else {"builder": "pnc_pack.format.testing", "seed": seed},
        metrics=metrics if metrics is not None else {"accuracy": {"ori": 0.9375, "tar": 0.875}},
    )
