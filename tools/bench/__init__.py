"""Benchmarks: ``python -m tools.bench NAME [ARGS]`` runs ``tools/bench/NAME.py``'s ``main(argv)``.

Each benchmark prints its figures and writes JSON (and Markdown where it makes a table) under tools/bench/results/.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_result(name: str, out: dict, markdown: str | None = None) -> None:
    """``results/NAME.json`` (sorted keys, indented) and, if given, ``results/NAME.md``, each written atomically."""
    from pnc_pack.fsutil import atomic_write

    RESULTS.mkdir(exist_ok=True)
    atomic_write(RESULTS / f"{name}.json", (json.dumps(out, indent=2, sort_keys=True) + "\n").encode())
    if markdown is not None:
        atomic_write(RESULTS / f"{name}.md", markdown.encode())


def add_device_option(ap) -> None:
    """``--device`` on a benchmark's argparse parser (the CLI's values: auto, cpu, cuda, cuda:N)."""
    ap.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu, cuda or cuda:N: "
                    "where the benchmark's torch work runs (pnc_pack.devices)")


def device_dir(device) -> str:
    """The suffix of a cache folder for models or deltas made on ``device``: none for the CPU, so the CPU's caches
    stay where they were, and ``-cuda`` etc. otherwise, so no run reuses what another kind of device made."""
    import torch

    kind = torch.device(device).type if device is not None else "cpu"
    return "" if kind == "cpu" else f"-{kind}"


def device_record(device) -> dict:
    """``{"device": "cuda:0"}`` for a result made off the CPU, ``{}`` on the CPU: what a result (or a cache key) adds,
    so CPU results read as they always did."""
    import torch

    dev = torch.device(device) if device is not None else torch.device("cpu")
    return {} if dev.type == "cpu" else {"device": str(dev)}


def device_of(ap, args):
    """``args.device`` checked before any work: the torch device, or ``ap.error`` (exit 2) naming the devices that
    exist, as ``pnc-pack --device`` does."""
    from pnc_pack.devices import resolve_device
    from pnc_pack.errors import UsageError

    try:
        return resolve_device(args.device)
    except UsageError as exc:
        ap.error(str(exc))
