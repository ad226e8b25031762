"""Distributed builds (issue 22): world size 2 over gloo with a file rendezvous (``session(2)`` starts one worker);
the deltas are the serial ones byte for byte, and a rank that raises or dies stops the build with one error."""

from __future__ import annotations

import re
import time

import pytest
import torch

from pnc_pack.builder import build_clone
from pnc_pack.builder.distributed import ENV_FAIL, assign, pack, session, unpack
from pnc_pack.builder.multi import build_multi
from pnc_pack.builder.select import build_selected
from pnc_pack.errors import RankError
from pnc_pack.format.codec import dumps
from tests.multi_fixtures import TINY


def test_longest_first_and_messages():
    assert assign([1, 5, 3, 3], 2) == [[1, 0], [2, 3]]  # 5 | 3, 3 (loads 5, 6), then 1 to the lighter rank
    assert assign([2.0], 3) == [[0], [], []]
    t = {"a": torch.arange(6, dtype=torch.float64).reshape(2, 3), "b": torch.tensor([True, False]),
         "e": torch.empty(0, 4), "s": torch.tensor(7)}
    meta, back = unpack(pack({"x": [1, "y"]}, t))
    assert meta == {"x": [1, "y"]} and set(back) == set(t)
    assert all(back[k].dtype == t[k].dtype and torch.equal(back[k], t[k]) for k in t)


def test_two_ranks_build_the_serial_bytes(zoo, digits, source2):
    """Positions of one module, modules of a multi-source build, candidates of source selection: same bytes."""
    T, A, B = zoo["target"], zoo["source"], source2
    sel_kw = dict(max_anchors=20, select_masks=5, seed=0, **TINY)
    serial = [dumps(build_clone(T, A, digits, [5, 6], seed=0, **TINY)),
              dumps(build_multi(T, [(A, [5, 6]), (B, [8, 9])], digits, seed=0, **TINY)),
              dumps(build_selected(T, [A, B], digits, [8], **sel_kw)[0])]
    with session(2) as s:
        assert s.rank == 0 and s.world == 2
        dist = [dumps(build_clone(T, A, digits, [5, 6], seed=0, **TINY)),
                dumps(build_multi(T, [(A, [5, 6]), (B, [8, 9])], digits, seed=0, **TINY)),
                dumps(build_selected(T, [A, B], digits, [8], **sel_kw)[0])]
    assert dist[0] == serial[0]
    assert dist[1] == serial[1]
    assert dist[2] == serial[2]


@pytest.mark.parametrize("mode, cause", [("raise", "rank 1 failed: RuntimeError: injected failure"),
                                         ("exit", "rank 1 died (exit code 3)")])
def test_a_failing_rank_stops_the_build(zoo, digits, monkeypatch, mode, cause):
    monkeypatch.setenv(ENV_FAIL, f"1:{mode}")
    t0 = time.monotonic()
    with pytest.raises(RankError, match=re.escape(cause)) as info:
        with session(2, timeout=60):
            build_clone(zoo["target"], zoo["source"], digits, [5, 6], seed=0, **TINY)
    assert info.value.rank == 1 and time.monotonic() - t0 < 30


def test_cli_nproc_failure_writes_nothing(zoo, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pnc_pack.cli import cli
    from tests.multi_fixtures import TINY_CLI

    monkeypatch.setenv(ENV_FAIL, "1:exit")
    out = tmp_path / "clone.pncd"
    args = ["build", "--target", str(zoo["target"]), "--source", str(zoo["source"]), "--clone-classes", "5,6",
            "--data", "digits", "--nproc", "2", "--dist-timeout", "60", *TINY_CLI, "-o", str(out)]
    res = CliRunner().invoke(cli, args)
    assert isinstance(res.exception, RankError) and "rank 1 died (exit code 3)" in str(res.exception)
    assert res.exception.exit_code == 7
    assert not out.exists() and list(tmp_path.iterdir()) == []
