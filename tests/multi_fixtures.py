"""Fixtures shared by the tests/test_multi*.py files (imported by name there): a second tiny source and the tiny
build settings."""

from __future__ import annotations

import pytest

TINY = dict(steps=10, retune_steps=2, masks_per_anchor=4, pool_size=500, data_fraction=0.5)
TINY_CLI = [arg for k, v in TINY.items() if k != "data_fraction" for arg in ("--set", f"{k}={v}")] + [
    "--data-fraction", str(TINY["data_fraction"])]


@pytest.fixture(scope="session")
def source2(tmp_path_factory, digits):
    """A LeNet-5 source on digits 7-9 (the conftest source has 5-9, the target 0-4)."""
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    model, config = train_model("lenet5", None, digits, [7, 8, 9], epochs=3, seed=1)
    return save_pretrained(model, config, tmp_path_factory.mktemp("zoo2") / "source2")
