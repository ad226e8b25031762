"""Shared fixtures: tiny real models (LeNet-5 on sklearn digits) and a clone delta built from them."""

from __future__ import annotations

import contextlib

import pytest
import torch

torch.set_num_threads(1)  # tiny models: one thread is faster and keeps results independent of the machine's load

CLONE = [5, 6]


def pytest_collection_modifyitems(items):
    """Files marked ``slow`` first, otherwise collection order (a stable sort). Under ``--dist loadfile`` a file is
    one unit of work and units go to the workers in this order: the long end-to-end files (~7-22 s each) start early
    instead of one of them running alone at the end while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def digits():
    from pnc_pack.data import load_dataset

    return load_dataset("digits")


@contextlib.contextmanager
def _once(tmp_path_factory, worker_id, name):
    """A folder for a session fixture's files, made once for every xdist worker (the pytest-xdist docs' pattern: a
    file lock in the workers' shared base temp): yields (folder, whether to make them); the others wait, then read.
    One process: a folder of its own, always made. Made here or read, they are the same bytes: the builds are
    deterministic on the CPU (test_devices.py pins ``built``)."""
    from filelock import FileLock  # a dependency of huggingface_hub, so always installed with pnc-pack

    if worker_id == "master":
        yield tmp_path_factory.mktemp(name), True
        return
    root = tmp_path_factory.getbasetemp().parent / f"shared-{name}"
    with FileLock(str(root) + ".lock"):
        done = root / ".done"
        make = not done.exists()
        if make:
            root.mkdir(exist_ok=True)
        yield root, make
        if make:
            done.touch()


@pytest.fixture(scope="session")
def zoo(tmp_path_factory, digits, worker_id):
    """Folders of a LeNet-5 target trained on digits 0-4 and a source on 5-9 (trained once for all workers)."""
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    out = {}
    with _once(tmp_path_factory, worker_id, "zoo") as (root, make):
        for name, classes in (("target", [0, 1, 2, 3, 4]), ("source", [5, 6, 7, 8, 9])):
            out[name] = root / name
            if make:
                model, config = train_model("lenet5", None, digits, classes, epochs=4, seed=0)
                save_pretrained(model, config, root / name)
    return out


FAST = dict(steps=40, retune_steps=10, masks_per_anchor=20, data_fraction=0.5, pool_size=4000)
# For tests of plumbing (what a build touches, what a setting changes, that it repeats): every phase still runs (all
# positions, negatives, calibration), on fewer anchors, masks and steps; about 1.3 s CPU against FAST's 9.5 s. Not
# for anything about how well the clone works.
PLUMBING = dict(FAST, steps=2, retune_steps=1, masks_per_anchor=5, data_fraction=0.2, pool_size=300, batch_size=32)


@pytest.fixture(scope="session")
def built(zoo, digits, tmp_path_factory, worker_id):
    """A clone delta of digits 5 and 6 into the 0-4 target, built fast (once for all workers, read back from its
    file by every one, the builder's too)."""
    from pnc_pack.builder import build_clone
    from pnc_pack.format import codec

    with _once(tmp_path_factory, worker_id, "built") as (root, make):
        if make:
            codec.save(build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, eval_data=digits, **FAST),
                       root / "built.pncd")
        return codec.load(root / "built.pncd")


@pytest.fixture(scope="session")
def source2(tmp_path_factory, digits, worker_id):
    """A LeNet-5 source on digits 7-9 (the ``zoo`` source has 5-9, the target 0-4), for the multi-source tests."""
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    with _once(tmp_path_factory, worker_id, "zoo2") as (root, make):
        if make:
            model, config = train_model("lenet5", None, digits, [7, 8, 9], epochs=3, seed=1)
            save_pretrained(model, config, root / "source2")
    return root / "source2"
