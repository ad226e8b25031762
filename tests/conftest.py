"""Shared fixtures: tiny real models (LeNet-5 on sklearn digits) and a clone delta built from them."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)  # tiny models: one thread is faster and keeps results independent of the machine's load

CLONE = [5, 6]


@pytest.fixture(scope="session")
def digits():
    from pnc_pack.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def zoo(tmp_path_factory, digits):
    """Folders of a LeNet-5 target trained on digits 0-4 and a source on 5-9."""
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    root = tmp_path_factory.mktemp("zoo")
    out = {}
    for name, classes in (("target", [0, 1, 2, 3, 4]), ("source", [5, 6, 7, 8, 9])):
        model, config = train_model("lenet5", None, digits, classes, epochs=4, seed=0)
        out[name] = save_pretrained(model, config, root / name)
    return out


FAST = dict(steps=40, retune_steps=10, masks_per_anchor=20, data_fraction=0.5, pool_size=4000)
# For tests of plumbing (what a build touches, what a setting changes, that it repeats): every phase still runs (all
# positions, negatives, calibration), on fewer anchors, masks and steps; about 1.3 s CPU against FAST's 9.5 s. Not
# for anything about how well the clone works.
PLUMBING = dict(FAST, steps=2, retune_steps=1, masks_per_anchor=5, data_fraction=0.2, pool_size=300, batch_size=32)


@pytest.fixture(scope="session")
def built(zoo, digits):
    """A clone delta of digits 5 and 6 into the 0-4 target, built fast."""
    from pnc_pack.builder import build_clone

    return build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, eval_data=digits, **FAST)


@pytest.fixture(scope="session")
def source2(tmp_path_factory, digits):
    """A LeNet-5 source on digits 7-9 (the ``zoo`` source has 5-9, the target 0-4), for the multi-source tests."""
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    model, config = train_model("lenet5", None, digits, [7, 8, 9], epochs=3, seed=1)
    return save_pretrained(model, config, tmp_path_factory.mktemp("zoo2") / "source2")
