"""Distributed builds (issue 22): world size 2 over gloo with a file rendezvous (``session(2)`` starts one worker).
One world builds the three kinds of unit (positions, the modules of a multi-source build, source selection's
candidates), byte for byte the serial deltas, then a rank that raises stops it with one error naming the rank; a
second world, the CLI's ``--nproc 2``, loses a rank that dies and writes nothing. Builds are tiny: what is tested is
that the work is spread and gathered exactly, not what it learns."""

from __future__ import annotations

import re
import time

import pytest
import torch

from pnc_pack.builder import build_clone
from pnc_pack.builder.dist_messages import pack, unpack
from pnc_pack.builder.dist_session import session
from pnc_pack.builder.distributed import ENV_FAIL, assign
from pnc_pack.builder.multi import build_multi
from pnc_pack.builder.select import build_selected
from pnc_pack.devices import rank_device
from pnc_pack.errors import RankError
from pnc_pack.format.codec import dumps

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

SMALL = dict(steps=3, retune_steps=1, masks_per_anchor=2, pool_size=120, data_fraction=0.15)
SMALL_CLI = [arg for k, v in SMALL.items() if k != "data_fraction" for arg in ("--set", f"{k}={v}")] + [
    "--data-fraction", str(SMALL["data_fraction"])]


def test_longest_first_and_messages():
    assert assign([1, 5, 3, 3], 2) == [[1, 0], [2, 3]]  # 5 | 3, 3 (loads 5, 6), then 1 to the lighter rank
    assert assign([2.0], 3) == [[0], [], []]
    t = {"a": torch.arange(6, dtype=torch.float64).reshape(2, 3), "b": torch.tensor([True, False]),
         "e": torch.empty(0, 4), "s": torch.tensor(7)}
    meta, back = unpack(pack({"x": [1, "y"]}, t))
    assert meta == {"x": [1, "y"]} and set(back) == set(t)
    assert all(back[k].dtype == t[k].dtype and torch.equal(back[k], t[k]) for k in t)


def test_each_rank_has_its_own_gpu():
    """--device cuda (or auto with GPUs): cuda:LOCAL_RANK modulo the node's GPU count; a named GPU for every rank;
    the CPU stays the CPU."""
    assert [rank_device("cuda", r, count=2) for r in range(5)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert [rank_device("auto", r, count=4) for r in range(4)] == [f"cuda:{r}" for r in range(4)]
    assert [rank_device(None, r, count=3) for r in (0, 4)] == ["cuda:0", "cuda:1"]
    assert {rank_device("cuda:1", r, count=2) for r in range(4)} == {"cuda:1"}
    assert {rank_device(d, r, count=0) for d in ("cpu", "auto", None) for r in range(3)} == {"cpu"}
    assert rank_device("cpu", 1, count=2) == "cpu"
    assert rank_device(torch.device("cuda"), 3, count=2) == "cuda:1"
    assert rank_device(" CUDA ", 1, count=8) == "cuda:1"
    assert rank_device("cuda", 1, count=0) == "cuda"  # no GPU here: left for resolve_device's usage error


def test_one_world_builds_the_serial_bytes_then_a_raising_rank_stops_it(zoo, digits, source2, monkeypatch):
    """Positions of one module, modules of a multi-source build, candidates of source selection: the serial bytes
    at world size 2; then, in the same world, rank 1 raises: one RankError naming it and the cause, in time."""
    T, A, B = zoo["target"], zoo["source"], source2
    sel_kw = dict(max_anchors=12, select_masks=3, seed=0, **SMALL)

    def builds():
        return [dumps(build_clone(T, A, digits, [5, 6], seed=0, **SMALL)),
                dumps(build_multi(T, [(A, [5, 6]), (B, [8, 9])], digits, seed=0, **SMALL)),
                dumps(build_selected(T, [A, B], digits, [8], **sel_kw)[0])]

    serial, dist, took = builds(), [], []
    with pytest.raises(RankError, match=re.escape("rank 1 failed: RuntimeError: injected failure")) as info:
        with session(2, timeout=120) as s:
            assert s.rank == 0 and s.world == 2
            dist = builds()
            monkeypatch.setenv(ENV_FAIL, "1:raise")  # sent with the next units: rank 1 raises at its first
            t0 = time.monotonic()
            try:
                build_clone(T, A, digits, [5, 6], seed=0, **SMALL)
            finally:
                took.append(time.monotonic() - t0)
    assert info.value.rank == 1 and took[0] < 120  # within the stated timeout: it did not wait for rank 1
    assert len(dist) == 3
    assert dist[0] == serial[0]
    assert dist[1] == serial[1]
    assert dist[2] == serial[2]


def test_cli_nproc_dead_rank_is_reported_and_nothing_written(zoo, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pnc_pack.cli import cli

    monkeypatch.setenv(ENV_FAIL, "1:exit")
    out = tmp_path / "clone.pncd"
    args = ["build", "--target", str(zoo["target"]), "--source", str(zoo["source"]), "--clone-classes", "5,6",
            "--data", "digits", "--nproc", "2", "--dist-timeout", "60", *SMALL_CLI, "-o", str(out)]
    res = CliRunner().invoke(cli, args)
    assert isinstance(res.exception, RankError) and "rank 1 died (exit code 3)" in str(res.exception)
    assert res.exception.rank == 1 and res.exception.exit_code == 7
    assert not out.exists() and list(tmp_path.iterdir()) == []
