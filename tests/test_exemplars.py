"""Opt-in exemplars (issue 19 item 6): N real training images per target class join the negatives, recorded in
the provenance; inputs checked before any training; without them the build is the data-free one."""

from __future__ import annotations

import pytest

from pnc_pack.errors import DataError, UsageError
from tests.conftest import CLONE, FAST


@pytest.fixture(scope="module")
def with_exemplars(zoo, digits):
    from pnc_pack.builder import build_clone

    fast = dict(FAST, steps=5, retune_steps=1, pool_size=1000, positions=(0,))  # one position, few steps: the record is the point
    return build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, exemplars=digits, exemplars_per_class=3,
                       **fast)


def test_exemplars_are_training_images_of_the_target_classes_recorded(with_exemplars, built, digits):
    rec = with_exemplars.provenance["exemplars"]
    assert rec["split"] == "train" and rec["per_class"] == 3 and rec["data"] == digits.name
    assert sorted(rec["indices"]) == ["0", "1", "2", "3", "4"] and len(rec["sha256"]) == 64
    X, y = digits.train
    for label, idx in rec["indices"].items():
        assert len(set(idx)) == 3 and all(int(y[i]) == int(label) for i in idx)
    assert with_exemplars.provenance["config"]["exemplars_per_class"] == 3
    assert rec["held_out_for_calibration"] == 5  # one per class, never trained on, sets the routing calibration
    assert with_exemplars.metrics["calibration"]["rule"] == "exemplars"
    m = with_exemplars.metrics
    assert m["negatives_data_free"] == built.metrics["negatives"]  # the data-free draws are untouched
    assert m["negatives"] == m["negatives_data_free"] + m["negatives_exemplars"] and m["negatives_exemplars"] >= 10
    assert with_exemplars.classifier != built.classifier
    assert "exemplars" not in built.provenance and "exemplars_per_class" not in built.provenance["config"]


@pytest.mark.parametrize("kw, err, what", [
    (dict(exemplars="digits", exemplars_per_class=0), UsageError, "at least 1"),
    (dict(exemplars_per_class=5), UsageError, "no exemplar data"),
    (dict(exemplars="digits", exemplars_per_class=10 ** 6), DataError, "too few training images"),
    (dict(exemplars="digits", exemplars_per_class=2, neg_weight=0.0), UsageError, "negatives"),
    (dict(exemplars="npz:/nonexistent/x.npz", exemplars_per_class=2), DataError, "x.npz"),
])
def test_bad_exemplar_inputs_fail_before_training(zoo, digits, kw, err, what):
    from pnc_pack.builder import build_clone

    with pytest.raises(err, match=what):
        build_clone(zoo["target"], zoo["source"], digits, CLONE, seed=0, steps=10 ** 9, **kw)


def test_cli_exemplar_flags_go_together(zoo, tmp_path, capsys):
    from pnc_pack.cli import main

    base = ["build", "--target", str(zoo["target"]), "--source", str(zoo["source"]), "--data", "digits",
            "--clone-classes", "5", "-o", str(tmp_path / "d.pnc")]
    for extra in (["--exemplars", "digits"], ["--exemplars-per-class", "3"], ["--exemplars-per-class", "0"]):
        assert main(base + extra) == 2
        assert "--exemplars" in capsys.readouterr().err
    assert not (tmp_path / "d.pnc").exists()
