"""The tiny build settings shared by the tests/test_multi*.py files (their second source, ``source2``, is a fixture
in tests/conftest.py)."""

from __future__ import annotations

# Plumbing only (compose, add, remove, selection, reports; nothing here is about the clones' quality): the fewest steps
# that still train every position; data_fraction stays 0.5, the selection tests draw 40 anchors from D_t.
TINY = dict(steps=3, retune_steps=1, batch_size=32, masks_per_anchor=4, pool_size=500, data_fraction=0.5)
TINY_CLI = [arg for k, v in TINY.items() if k != "data_fraction" for arg in ("--set", f"{k}={v}")] + [
    "--data-fraction", str(TINY["data_fraction"])]
