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
