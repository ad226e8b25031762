"""Pretrained-model folders: ``model.safetensors`` + ``config.json``, saved and loaded without pickle.

``save_pretrained`` writes the model's parameters and persistent buffers (its ``state_dict``: BatchNorm running
statistics and ``num_batches_tracked`` included) as contiguous CPU tensors with ``safetensors.torch.save``, whose
bytes depend only on the tensors (names sorted within each dtype), and the config via its deterministic
``to_json``. Both files are written atomically (weights first, so a config never points at missing weights).

``load_pretrained`` trusts nothing in the folder: with a pinned ``ref`` it checks every pinned file's size first and
the sha256 of the exact bytes it then parses before parsing them (one read, one hash; a file swapped between
checks cannot slip through). The architecture comes only from the registry, the
tensors only from safetensors (no ``torch.load``); any missing, unexpected, mis-shaped or mis-typed tensor is an
:class:`ArchitectureError` naming it. The model is returned in eval mode with ``requires_grad`` off everywhere.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from pnc_pack.errors import ArchitectureError, FormatError, ModelMismatchError, ModelNotFoundError
from pnc_pack.fsutil import atomic_write
from pnc_pack.refs import ModelRef
from pnc_pack.zoo.base import ZooModel
from pnc_pack.zoo.config import CONFIG_FILE, WEIGHTS_FILE, ModelConfig, read_config
from pnc_pack.zoo.registry import build_model

MAX_WEIGHTS_BYTES = 4 << 30  # 4 GiB: far above any zoo model; refuses absurd files before reading them


def state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters + persistent buffers as independent, contiguous CPU tensors (what model.safetensors holds)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def weights_bytes(model: torch.nn.Module) -> bytes:
    return st_save(state_tensors(model), metadata={"format": "pt"})


def save_pretrained(model: ZooModel, config: ModelConfig, folder: str | os.PathLike) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/config.json`` atomically; returns the folder."""
    if not isinstance(model, ZooModel):
        raise ArchitectureError(f"save_pretrained: expected a ZooModel, got {type(model).__name__}")
    if config.arch != model.arch or dict(config.arch_args) != dict(model.arch_args):
        raise ArchitectureError(
            f"save_pretrained: config says {config.arch} {config.arch_args}, model is {model.arch} {model.arch_args}"
        )
    if list(config.input_shape) != list(model.input_shape):
        raise ArchitectureError(f"save_pretrained: config input_shape {config.input_shape} != model {model.input_shape}")
    config.validate()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / WEIGHTS_FILE, weights_bytes(model))
    atomic_write(folder / CONFIG_FILE, config.to_json())
    return folder


def _read_pinned(path: Path, ref: ModelRef | None, name: str, limit: int) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelNotFoundError(f"model folder {path.parent}: {name} not found") from None
    if size > limit:
        raise FormatError(f"{path}: {size} bytes, more than the limit of {limit}")
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if ref is not None and name in ref.files:
        want = ref.files[name]
        got = hashlib.sha256(data).hexdigest()
        if len(data) != want.size or got != want.sha256:
            raise ModelMismatchError(
                f"{ref.short()}: file {name!r} changed while it was being loaded (sha256 {got}, pinned {want.sha256})",
                file=str(path), expected=want.sha256, actual=got,
            )
    return data


def load_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Strictly load ``tensors`` into ``model``: same names, shapes and dtypes, or ArchitectureError naming one."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        raise ArchitectureError(f"{where}: tensor {missing[0]!r} missing ({len(missing)} missing in all)")
    if unexpected:
        raise ArchitectureError(f"{where}: unexpected tensor {unexpected[0]!r} ({len(unexpected)} unexpected in all)")
    for name in sorted(expected):
        want, got = expected[name], tensors[name]
        if tuple(got.shape) != tuple(want.shape):
            raise ArchitectureError(
                f"{where}: tensor {name!r} has shape {list(got.shape)}, the architecture needs {list(want.shape)}"
            )
        if got.dtype != want.dtype:
            raise ArchitectureError(f"{where}: tensor {name!r} has dtype {got.dtype}, the architecture needs {want.dtype}")
    model.load_state_dict(tensors, strict=True)


def load_pretrained(folder: str | os.PathLike, ref: ModelRef | None = None,
                    device: str | torch.device | None = None) -> tuple[ZooModel, ModelConfig]:
    """Load a model folder; with ``ref``, check its pins first. Returns ``(model, config)``, model frozen in eval."""
    folder = Path(folder)
    if ref is not None:
        ref.check_sizes(folder)  # the sha256 is checked below, over exactly the bytes that are parsed
    if not folder.is_dir():
        raise ModelNotFoundError(f"model folder {folder} not found")
    cfg_bytes = _read_pinned(folder / CONFIG_FILE, ref, CONFIG_FILE, 1 << 20)
    # every pinned file is read and hashed before anything is parsed from any of them
    data = _read_pinned(folder / WEIGHTS_FILE, ref, WEIGHTS_FILE, MAX_WEIGHTS_BYTES)
    config = ModelConfig.from_json(cfg_bytes, where=str(folder / CONFIG_FILE))
    if ref is not None and (ref.arch != config.arch or dict(ref.arch_args) != dict(config.arch_args)):
        raise ModelMismatchError(
            f"{ref.short()}: the reference names {ref.arch} {dict(ref.arch_args)}, config.json says "
            f"{config.arch} {config.arch_args}",
            file=str(folder / CONFIG_FILE), expected=ref.arch, actual=config.arch,
        )
    model = build_model(config.arch, config.arch_args)
    if list(model.input_shape) != list(config.input_shape):
        raise ArchitectureError(
            f"{folder / CONFIG_FILE}: input_shape {config.input_shape} does not fit {config.arch} "
            f"{config.arch_args} (which takes {list(model.input_shape)})"
        )
    if model.num_classes and model.num_classes != config.num_classes:
        raise ArchitectureError(f"{folder / CONFIG_FILE}: {config.num_classes} classes, the model has {model.num_classes}")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise FormatError(f"{folder / WEIGHTS_FILE}: not a valid safetensors file: {exc}") from None
    load_state(model, tensors, str(folder / WEIGHTS_FILE))
    model.eval()
    model.requires_grad_(False)
    if device is not None:
        model.to(device)
    return model, config


def local_ref(folder: str | os.PathLike) -> ModelRef:
    """A pinned local ModelRef for a model folder (architecture and arguments from its config.json).

    The path is stored as given (not resolved), so a delta built with a relative path stays location-independent.
    """
    config = read_config(folder)
    return ModelRef.from_folder(folder, config.arch, config.arch_args)
