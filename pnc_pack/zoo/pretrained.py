"""Pretrained-model folders: ``model.safetensors`` + ``config.json``, saved and loaded without pickle.

``save_pretrained`` writes the model's parameters and persistent buffers (its ``state_dict``: BatchNorm running
statistics and ``num_batches_tracked`` included) as contiguous CPU tensors with ``safetensors.torch.save``, whose
bytes depend only on the tensors (names sorted within each dtype), and the config via its deterministic
``to_json``. Both files are written atomically (weights first, so a config never points at missing weights).

``load_pretrained`` trusts nothing in the folder: with a pinned ``ref`` it checks every pinned file's size first,
then reads each file once into a buffer of its own, hashing the bytes as they arrive, and compares the sha256 with
the pin before anything is parsed from that buffer (one read, one hash; a file changed between checks cannot slip
through, since what is parsed is what was hashed). The architecture comes only from the registry, built on the meta
device; the tensors come only from safetensors bytes (``zoo.tensorfile``, never torch's pickle-based loader) as views
of that same buffer, which become the model's parameters (``assign=True``): in memory the loaded model costs about
its file's size, not three times it. Any missing, unexpected, mis-shaped or mis-typed tensor is an
:class:`ArchitectureError` naming it. The model is returned in eval mode with ``requires_grad`` off everywhere.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import save as st_save
from torch.overrides import TorchFunctionMode

from pnc_pack.errors import ArchitectureError, FormatError, ModelMismatchError, ModelNotFoundError
from pnc_pack.fsutil import atomic_write
from pnc_pack.refs import ModelRef
from pnc_pack.zoo.base import ZooModel
from pnc_pack.zoo.config import CONFIG_FILE, WEIGHTS_FILE, ModelConfig, config_from_bytes, read_config
from pnc_pack.zoo.hf_config import INDEX_FILE, layout_files, load_json, shard_names
from pnc_pack.zoo.registry import build_model
from pnc_pack.zoo.tensorfile import parse

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


READ_CHUNK = 1 << 20  # hashed right after it is read, while it is still in the CPU cache
PARALLEL_MIN_BYTES = 8 << 20  # below this, starting threads costs more than it saves


def read_file(path: Path, ref: ModelRef | None, name: str, limit: int) -> bytearray:
    """The bytes of ``path``, read once into a new buffer; with a pin for ``name`` in ``ref``, its size is checked
    before reading and its sha256 computed over exactly those bytes while they are read, and compared before the
    buffer is returned (so whatever is parsed from it is what was hashed)."""
    want = ref.files.get(name) if ref is not None else None
    try:
        f = open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise ModelNotFoundError(f"model folder {path.parent}: {name} not found") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if want is not None and size != want.size:
            raise ModelMismatchError(ref.mismatch(path.parent, name, f"has size {size}, pinned {want.size}"),
                                     file=str(path), expected=f"size {want.size}", actual=f"size {size}")
        if size > limit:
            raise FormatError(f"{path}: {size} bytes, more than the limit of {limit}")
        h = hashlib.sha256() if want is not None else None
        buf = bytearray(size)
        got = 0
        with memoryview(buf) as view:
            while got < size:
                n = f.readinto(view[got:got + READ_CHUNK])
                if not n:
                    break
                if h is not None:
                    h.update(view[got:got + n])
                got += n
        changed = got != size or f.read(1) != b""
    if changed:
        msg = f"{path}: file {name!r} changed size while it was being read"
        if want is not None:
            raise ModelMismatchError(f"{ref.short()}: {msg}", file=str(path), expected=f"size {want.size}",
                                     actual="changed while read")
        raise FormatError(msg)
    if h is not None and h.hexdigest() != want.sha256:
        raise ModelMismatchError(
            ref.mismatch(path.parent, name, f"has sha256 {h.hexdigest()}, pinned {want.sha256}"),
            file=str(path), expected=want.sha256, actual=h.hexdigest(),
        )
    return buf


def read_model_files(folder: str | os.PathLike, ref: ModelRef | None = None) -> dict[str, bytearray]:
    """{file name: bytes} of a model folder, every pinned file checked as it is read: the files ``ref`` pins, or
    without one those of the folder's layout (``hf_config.layout_files``: a zoo folder's config and weights; a
    transformers folder's config, preprocessor config and weights or index and shards)."""
    folder = Path(folder)
    if ref is not None:
        ref.check_sizes(folder)  # all files present with their pinned sizes before reading any
        names = sorted(ref.files)
    elif not folder.is_dir():
        raise ModelNotFoundError(f"model folder {folder} not found")
    else:
        names = layout_files(folder)
    return {name: read_file(folder / name, ref, name, MAX_WEIGHTS_BYTES if name.endswith(".safetensors") else 1 << 20)
            for name in names}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported properly by read_model_files


def read_models(jobs: Sequence[tuple[str | os.PathLike, ModelRef | None]]) -> list[dict[str, bytearray]]:
    """:func:`read_model_files` for several folders, in threads when they hold PARALLEL_MIN_BYTES or more
    (reading and hashlib release the GIL, so the sha256 checks of two models run on two cores). Every file of every
    model is read and checked before the caller parses anything; the first failure is raised."""
    if len(jobs) <= 1 or sum(_size(Path(f) / WEIGHTS_FILE) for f, _ in jobs) < PARALLEL_MIN_BYTES:
        return [read_model_files(f, r) for f, r in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        futures = [pool.submit(read_model_files, f, r) for f, r in jobs]
    return [fu.result() for fu in futures]


def load_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str, assign: bool = False) -> None:
    """Strictly load ``tensors`` into ``model``: same names, shapes and dtypes, or ArchitectureError naming one.

    ``assign``: the model's parameters and buffers become ``tensors`` themselves (no copy; a model built on the
    meta device gets real ones)."""
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
    model.load_state_dict(tensors, strict=True, assign=assign)


class _SkipMetaInit(TorchFunctionMode):
    """Random initialisers on meta tensors become no-ops. They compute nothing there anyway, but some (``normal_``,
    ``erfinv_``, ``clamp_``: kaiming_normal_, trunc_normal_) have no C++ meta kernel, and the first call imports
    torch's Python meta registrations: 1.5 s and 70 MB of RSS on this project's machine, once per process."""

    OPS = frozenset({"normal_", "uniform_", "erfinv_", "exponential_", "clamp_", "log_normal_", "cauchy_",
                     "geometric_", "random_", "bernoulli_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", None) in self.OPS and args and isinstance(args[0], torch.Tensor) \
                and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def empty_model(arch: str, arch_args) -> ZooModel:
    """A registered architecture to receive tensors with ``load_state(..., assign=True)``.

    Built on the meta device (no memory, no random initialisation) unless that fails or leaves a tensor the state
    dict will not fill (a non-persistent buffer of some plugin architecture); then built normally, so every error
    is the ordinary one.
    """
    try:
        with torch.device("meta"), _SkipMetaInit():
            model = build_model(arch, arch_args)
    except Exception:  # noqa: BLE001 - whatever the meta build trips on, the normal build reports properly
        return build_model(arch, arch_args)
    filled = {id(t) for t in model.state_dict(keep_vars=True).values()}
    if any(t.is_meta and id(t) not in filled for t in (*model.parameters(), *model.buffers())):
        return build_model(arch, arch_args)
    return model


def load_pretrained(folder: str | os.PathLike, ref: ModelRef | None = None,
                    device: str | torch.device | None = None,
                    files: dict[str, bytearray] | None = None) -> tuple[ZooModel, ModelConfig]:
    """Load a model folder; with ``ref``, check its pins first. Returns ``(model, config)``, model frozen in eval.

    ``files``: the folder's bytes already read and checked by :func:`read_model_files` (or :func:`read_models`)
    with the same ``ref``. The model's tensors are views of the weights buffer, so it is consumed.
    """
    folder = Path(folder)
    if files is None:
        # every pinned file is read and hashed before anything is parsed from any of them
        files = read_model_files(folder, ref)
    if CONFIG_FILE not in files:
        raise ModelNotFoundError(f"model folder {folder}: {CONFIG_FILE} is not among the pinned files")
    config = config_from_bytes(bytes(files[CONFIG_FILE]), lambda n: bytes(files[n]) if n in files else None,
                               str(folder))
    if ref is not None and (ref.arch != config.arch or dict(ref.arch_args) != dict(config.arch_args)):
        raise ModelMismatchError(
            ref.mismatch(folder, CONFIG_FILE, f"says {config.arch} {config.arch_args}, the pin names {ref.arch} "
                                              f"{dict(ref.arch_args)}"),
            file=str(folder / CONFIG_FILE), expected=ref.arch, actual=config.arch,
        )
    model = empty_model(config.arch, config.arch_args)
    if list(model.input_shape) != list(config.input_shape):
        raise ArchitectureError(
            f"{folder / CONFIG_FILE}: input_shape {config.input_shape} does not fit {config.arch} "
            f"{config.arch_args} (which takes {list(model.input_shape)})"
        )
    if model.num_classes and model.num_classes != config.num_classes:
        raise ArchitectureError(f"{folder / CONFIG_FILE}: {config.num_classes} classes, the model has {model.num_classes}")
    tensors = weight_tensors(files, folder)
    if config.arch.startswith("hf-"):
        fill_bn_counters(model, tensors)
    load_state(model, tensors, str(folder / WEIGHTS_FILE), assign=True)
    model.eval()
    model.requires_grad_(False)
    if device is not None:
        model.to(device)
    return model, config


def weight_tensors(files: dict[str, bytearray], folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors``, or of the shards ``model.safetensors.index.json`` lists (each tensor in
    the shard the index names, none twice); views of the buffers read."""
    if WEIGHTS_FILE in files:
        return parse(files[WEIGHTS_FILE], str(folder / WEIGHTS_FILE))[0]
    if INDEX_FILE not in files:
        raise ModelNotFoundError(f"model folder {folder}: neither {WEIGHTS_FILE} nor {INDEX_FILE} is pinned")
    where = str(folder / INDEX_FILE)
    index = load_json(bytes(files[INDEX_FILE]), where)
    out: dict[str, torch.Tensor] = {}
    for shard in shard_names(index, where):
        if shard not in files:
            raise ModelNotFoundError(f"model folder {folder}: shard {shard!r} is not among the pinned files")
        tensors, _ = parse(files[shard], str(folder / shard))
        for name, t in tensors.items():
            if name in out or index["weight_map"].get(name) != shard:
                raise FormatError(f"{folder / shard}: tensor {name!r} is not where {INDEX_FILE} says (or twice)")
            out[name] = t
    if set(out) != set(index["weight_map"]):
        raise FormatError(f"{where}: the weight map lists tensors the shards do not hold")
    return out


def fill_bn_counters(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Checkpoints converted to transformers often omit BatchNorm's ``num_batches_tracked`` (unused in eval):
    only those, when missing, are filled with 0."""
    for name, t in model.state_dict().items():
        if name.endswith(".num_batches_tracked") and name not in tensors:
            tensors[name] = torch.zeros((), dtype=t.dtype)


def local_ref(folder: str | os.PathLike) -> ModelRef:
    """A pinned local ModelRef for a model folder (architecture and arguments from its config.json).

    The path is stored as given (not resolved), so a delta built with a relative path stays location-independent.
    """
    if not Path(folder).is_dir():
        raise ModelNotFoundError(f"model folder {folder} not found (a Hub model is written hf://NAMESPACE/NAME)")
    config = read_config(folder)
    return ModelRef.from_folder(folder, config.arch, config.arch_args, files=layout_files(folder))
