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
