"""The paper bench's validation protocol (issue 19 item 1): a split carved from the training images, disjoint from
what the rows train on, the same for the same seed, and results that say which split they come from."""

from __future__ import annotations

import pytest
import torch

from pnc_pack.errors import UsageError
from tools.bench import paper, report


def test_validation_split_is_carved_from_training_images(digits):
    v = paper.validation_split(digits, 300, 0)
    n = len(digits.train[1])
    assert len(v.test[1]) == 300 and len(v.train[1]) == n - 300
    rows = lambda X: {bytes(x.numpy().tobytes()) for x in X}  # noqa: E731
    assert rows(v.test[0]) | rows(v.train[0]) <= rows(digits.train[0])
    assert not rows(v.test[0]) & rows(v.train[0])
    assert not rows(v.test[0]) & rows(digits.test[0]) - rows(digits.train[0])
    again = paper.validation_split(digits, 300, 0)
    assert torch.equal(again.test[0], v.test[0]) and v.name.endswith("-val300s0")
    assert not torch.equal(paper.validation_split(digits, 300, 1).test[1], v.test[1])
    with pytest.raises(UsageError, match="val-size"):
        paper.validation_split(digits, n, 0)


def test_val_runs_are_tagged_cached_apart_and_labelled(tmp_path):
    args = paper.parse_args(["--data", "digits", "--split", "val", "--val-size", "200", "--workdir", str(tmp_path)])
    assert args.tag == "-val" and paper.data_key(args) == "digits-val200s0"
    assert paper.seed_key(args)["split"]["size"] == 200
    test = paper.parse_args(["--data", "digits"])
    assert test.tag == "" and paper.data_key(test) == "digits" and "split" not in paper.seed_key(test)
    lab = report.label({"dataset": "digits", "split": paper.split_info(args)})
    assert "VALIDATION split: 200 training images, seed 0" in lab


def test_baseline_grid_reuses_points_chooses_on_mean_avg_and_paper_reads_it(tmp_path):
    import json

    from tools.bench import baselines_grid as G

    for m in G.GRID:  # the built-in settings are a point of every grid, so the table says what tuning bought
        assert G.default_params(m, 10) in G.points(m)
    pts = G.points("continual")
    done = {G._key("continual", p): {"params": p, "avg_mean": 50.0 + (i == 4)} for i, p in enumerate(pts)}
    grid = G.run_grid({}, ["continual"], done=done)  # every point known: nothing trains
    assert [r["params"] for r in grid["continual"]] == pts and all(r["reused"] for r in grid["continual"])
    assert G.choose(grid["continual"])["params"] == pts[4]
    assert G.choose([{**r, "avg_mean": 1.0} for r in grid["continual"]])["params"] == pts[0]  # ties: the first
    chosen = {"continual_kd": {"lr": 1e-4, "epochs": 3, "kd_weight": 10.0, "kd_T": 2.0}}
    (tmp_path / "baselines-grid-digits.json").write_text(json.dumps(
        {"dataset": "digits", "arch": "lenet5", "chosen": chosen, "command": "GRID", "split": {"size": 5}}))
    args = paper.parse_args(["--data", "digits", "--out", str(tmp_path), "--methods", "continual,continual_kd"])
    assert args.baseline_params == chosen and "GRID" in args.baseline_source
    took = paper.baseline_settings(args)["params"]
    assert took["continual_kd"] == chosen["continual_kd"] and took["continual"] == G.default_params("continual", 10)
    assert paper.seed_key(args)["baseline_params"] == chosen  # stored rows of other settings are not reused
    builtin = paper.parse_args(["--data", "digits", "--out", str(tmp_path), "--baseline-settings", "builtin"])
    assert builtin.baseline_params == {} and "baseline_params" not in paper.seed_key(builtin)
