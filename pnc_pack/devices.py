"""Where torch work runs: one place that turns ``--device`` / ``--precision`` into a checked torch device and a
compute mode, for every command (train, build, select, eval, apply, repair, demo, benchmarks).

- ``resolve_device("auto" | "cpu" | "cuda" | "cuda:N" | None)``: ``auto`` (and None) is ``cuda`` when CUDA is
  available, else ``cpu``; a device that does not exist is a UsageError naming the ones that do, raised before
  any data or model is loaded.
- ``rank_device(spec, local_rank)``: the device each rank of a distributed build uses (its own GPU).
- ``precision``: ``fp32`` (the default; on CUDA, matrix products may use TF32, as cuDNN convolutions already do)
  or ``bf16`` (autocast: weights, optimiser state and deltas stay fp32). ``compute(device, precision)`` is the
  context for forward passes; on the CPU with ``fp32`` it changes nothing, which keeps CPU builds byte-identical.
- ``deterministic(True)``: ``torch.use_deterministic_algorithms`` (and the cuBLAS workspace setting it needs)
  for the duration; an operation without a deterministic kernel becomes a one-line BuildError naming it. What it
  does and does not make reproducible on CUDA is in docs/devices.md.
- ``out_of_memory(device)``: CUDA running out of memory becomes a one-line BuildError suggesting ``--batch-size``.
Why here: the rule is the same for every room, and a room above needs only these few names (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import os

import torch

from pnc_pack.errors import BuildError, UsageError

PRECISIONS = ("fp32", "bf16")
NO_DETERMINISTIC = "does not have a deterministic implementation"  # torch's words for such an operation


def available_devices() -> list[str]:
    """``cpu`` and every CUDA device torch sees, as ``cuda:N``."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu"] + [f"cuda:{i}" for i in range(n)]


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device ``spec`` names (see the module's docs); UsageError when it does not exist here."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    have = available_devices()
    if text == "cpu":
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind == "cuda" and (index == "" or index.isdigit()):
        want = f"cuda:{index or 0}"
        if want in have:
            return torch.device(want)
        why = "CUDA is not available" if len(have) == 1 else f"there is no {want}"
        raise UsageError(f"device {spec!r}: {why} here; available devices: {', '.join(have)}")
    raise UsageError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N (available: {', '.join(have)})")


def rank_device(spec: str | torch.device | None, local_rank: int, count: int | None = None) -> str:
    """The device one rank of a distributed build runs on for ``--device spec`` (``count``: the GPUs this node has,
    default torch's count): ``cpu`` stays ``cpu``; a named ``cuda:N`` is that GPU on every rank; ``cuda`` (and
    ``auto`` where there is a GPU) is ``cuda:(local_rank % count)``, so each rank of a node has its own GPU, shared
    round-robin when there are more ranks than GPUs. What does not exist is left for :func:`resolve_device`."""
    text = "auto" if spec is None else str(spec).strip().lower()
    if count is None:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if text == "auto":
        text = "cuda" if count > 0 else "cpu"
    if text == "cuda" and count > 0:
        return f"cuda:{int(local_rank) % count}"
    return text


def check_precision(precision: str | None) -> str:
    p = "fp32" if precision is None else str(precision).strip().lower()
    if p not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}: one of {', '.join(PRECISIONS)}")
    return p


@contextlib.contextmanager
def compute(device: torch.device, precision: str = "fp32"):
    """Forward passes on ``device`` at ``precision``: bf16 autocast, or (CUDA, fp32) TF32 matrix products."""
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    elif device.type == "cuda":
        was = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(was)
    else:
        yield


@contextlib.contextmanager
def deterministic(on: bool = True):
    """``torch.use_deterministic_algorithms(True)`` for the duration (nothing when ``on`` is false). torch raises a
    RuntimeError for an operation that has no deterministic kernel on the device; that becomes a one-line
    BuildError naming the operation, before anything is written."""
    if not on:
        yield
        return
    was, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    was_bench = torch.backends.cudnn.benchmark
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for deterministic results
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    except RuntimeError as exc:
        if NO_DETERMINISTIC not in str(exc):
            raise
        op = str(exc).split(NO_DETERMINISTIC, 1)[0].strip()
        raise BuildError(f"--deterministic: {op} has no deterministic implementation in torch "
                         f"{torch.__version__.split('+')[0]} on this device; build without --deterministic "
                         "(docs/devices.md: what is reproducible then)") from None
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn)
        torch.backends.cudnn.benchmark = was_bench


@contextlib.contextmanager
def out_of_memory(device: torch.device, what: str = "the build"):
    """CUDA out of memory inside the block -> BuildError, one line, suggesting a smaller ``--batch-size``."""
    try:
        yield
    except torch.OutOfMemoryError:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise BuildError(f"{what} ran out of memory on {device}; try a smaller --batch-size (or --device cpu)") from None


def provenance(device: torch.device, precision: str, deterministic_mode: bool = False) -> dict:
    """What goes into a delta's provenance about where it was built."""
    out = {"device": device.type, "precision": precision}
    if device.type == "cuda":
        out.update(device_name=torch.cuda.get_device_name(device), deterministic=bool(deterministic_mode))
    return out


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (timings only; the builder itself never calls this in a loop)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(device: torch.device, reset: bool = False) -> int | None:
    """Peak bytes allocated on a CUDA device since the last reset (None on the CPU)."""
    if device.type != "cuda":
        return None
    peak = int(torch.cuda.max_memory_allocated(device))
    if reset:
        torch.cuda.reset_peak_memory_stats(device)
    return peak
