"""Issue 17 item 1: the builder's inner loop makes no per-step host synchronisation. On CUDA a scalar read
(``.item()``, ``float(t)``, ``bool(t)``) or a data-dependent shape (``nonzero``, boolean-mask indexing) makes the
host wait for the GPU; on the CPU the same calls pass through torch's dispatcher, where they can be counted. A build
with more training steps must make exactly as many of them as one with fewer: whatever reads the device does so
once per position, phase or epoch, never per step. The same holds for training a zoo model and for repair. (Every
loop's Adam, ``pnc_pack.zoo.optim``, reads no tensor on the CPU; CUDA uses the fused torch.optim.Adam.)"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.conftest import PLUMBING

SYNCING = ("aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.item")


class SyncCounter(TorchDispatchMode):
    """Counts the operations that would make the host wait for a GPU."""

    def __init__(self):
        super().__init__()
        self.seen = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        if name in SYNCING:
            self.seen[name] += 1
        elif name in ("aten.index", "aten.index_put", "aten.index_put_") and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]):
            self.seen[f"{name} (boolean mask)"] += 1
        return func(*args, **(kwargs or {}))


def _build_syncs(zoo, digits, steps: int) -> Counter:
    from pnc_pack.builder import build_clone

    with SyncCounter() as c:
        build_clone(zoo["target"], zoo["source"], digits, [5], seed=0, device="cpu",
                    **dict(PLUMBING, steps=steps, retune_steps=steps))
    return c.seen


def test_more_training_steps_make_no_more_host_reads(zoo, digits):
    few, many = _build_syncs(zoo, digits, 2), _build_syncs(zoo, digits, 7)
    assert few == many, f"per-step host reads: {few} with 2 steps, {many} with 7"
    assert sum(few.values()) > 0  # the counter sees them: the once-per-position reads are there


def test_the_counter_sees_a_per_step_read():
    with SyncCounter() as c:
        x = torch.ones(3)
        for _ in range(4):
            float(x.sum())
        x[x > 0]
    assert c.seen["aten._local_scalar_dense"] == 4 and c.seen["aten.index (boolean mask)"] == 1


def test_training_a_zoo_model_reads_the_device_once_per_epoch_not_per_step(digits):
    from pnc_pack.zoo.training import train_model

    seen = []
    for fraction in (0.3, 0.9):  # 3x the steps per epoch
        with SyncCounter() as c:
            train_model("lenet5", None, digits, [0, 1], epochs=1, seed=0, data_fraction=fraction, device="cpu")
        seen.append(c.seen)
    assert seen[0] == seen[1], f"per-step host reads: {seen[0]} against {seen[1]}"


def test_repair_reads_the_device_once_per_epoch_not_per_step(built, digits):
    from pnc_pack.api.model import apply
    from pnc_pack.clone.repair import repair

    seen = []
    for batch_size in (64, 16):  # 4x the steps per epoch
        cloned = apply(built)
        with SyncCounter() as c:
            repair(cloned, digits, epochs=1, samples=128, batch_size=batch_size)
        seen.append(c.seen)
    assert seen[0] == seen[1], f"per-step host reads: {seen[0]} against {seen[1]}"
