"""The tiny build settings shared by the tests/test_multi*.py files (their second source, ``source2``, is a fixture
in tests/conftest.py)."""

from __future__ import annotations

TINY = dict(steps=10, retune_steps=2, masks_per_anchor=4, pool_size=500, data_fraction=0.5)
TINY_CLI = [arg for k, v in TINY.items() if k != "data_fraction" for arg in ("--set", f"{k}={v}")] + [
    "--data-fraction", str(TINY["data_fraction"])]
