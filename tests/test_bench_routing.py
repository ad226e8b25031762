"""The routing diagnostic (tools/bench/routing.py) on the tiny digits clone: it finds the builder's held-out anchors
again, so its row at the builder's own recall is the delta as built, and moving the operating point trades Ori for
Tar the way a bias shift must."""

from __future__ import annotations

import pytest

from tools.bench import routing


@pytest.fixture(scope="module")
def analysis(built, digits):
    return routing.analyse(built, digits, recalls=(0.5, 0.8, 0.9, 0.95, 1.0))


def test_the_builders_own_recall_gives_the_delta_back(built, analysis):
    rows = {r["recall"]: r for r in analysis["rows"]}
    as_built = rows["as built"]
    ev = built.metrics["eval"]
    assert as_built["ori"] == pytest.approx(100 * ev["ori"], abs=0.01)
    assert as_built["tar"] == pytest.approx(100 * ev["tar"], abs=0.01)
    # the same held-out anchors as the calibration's: the share routed new is the one the builder measured
    assert as_built["held_out_routed_new"] == pytest.approx(100 * built.metrics["calibration"]["held_out_recall_after"],
                                                            abs=0.01)
    assert analysis["held_out_anchors"] == built.metrics["held_out"]
    assert analysis["builder_recall"] == built.provenance["config"]["route_recall_multi"]


def test_higher_recall_trades_ori_for_tar(analysis):
    rows = [r for r in analysis["rows"] if r["recall"] != "as built"]
    routed = [r["held_out_routed_new"] for r in rows]
    assert routed == sorted(routed)
    n = analysis["held_out_anchors"]
    for r in rows:  # each row routes the share of held-out anchors it was asked for, to one anchor
        assert abs(r["held_out_routed_new"] - 100 * r["recall"]) <= 100 / n + 0.01, r
    assert [r["new_routed_new"] for r in rows] == sorted(r["new_routed_new"] for r in rows)
    assert [r["old_routed_new"] for r in rows] == sorted(r["old_routed_new"] for r in rows)


def test_errors_are_counted_by_true_and_predicted_class(analysis, built):
    old_to_new = analysis["errors"]["old -> cloned"]
    as_built = analysis["rows"][0]
    for pair in list(old_to_new) + list(analysis["errors"]["cloned -> old"]):
        a, b = map(int, pair.split("->"))
        assert (a in (5, 6)) != (b in (5, 6)), pair  # one side old, the other cloned
    for pair in analysis["errors"]["cloned -> other cloned"]:
        assert set(map(int, pair.split("->"))) == {5, 6}
    share = 100 * sum(old_to_new.values()) / analysis["old_test_images"]
    assert share == pytest.approx(as_built["old_routed_new"], abs=0.01)


def test_multi_module_deltas_are_refused_with_a_clear_error(built, digits):
    from dataclasses import replace

    from pnc_pack.errors import UsageError

    two = replace(built, modules=built.modules * 2)
    with pytest.raises(UsageError, match="single-module"):
        routing.analyse(two, digits)


def test_a_file_that_is_not_a_delta_is_a_message_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "not-a-delta.pnc"
    bad.write_bytes(b"PK\x03\x04 certainly not a clone delta")
    assert routing.main(["--data", "digits", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("routing: ") and "Traceback" not in err
    assert not list(routing.RESULTS.glob("routing-digits-*"))  # nothing written


def test_split_val_reads_the_validation_runs_deltas(tmp_path, capsys):
    """--split val looks where `paper --split val` keeps its deltas (the validation split's cache folder), never in
    the test split's."""
    with pytest.raises(SystemExit):
        routing.main(["--data", "digits", "--split", "val", "--val-size", "300", "--val-seed", "1",
                      "--seeds", "0", "--workdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert str(tmp_path / "digits-val300s1" / "lenet5" / "seed0" / "pnc-M" / "pnc.pnc") in err
