"""The command line of several sources in one clone: build with repeated --source, inspect, eval per functionality,
remove, add, --select-source; errors are one line with the usage exit code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pnc_pack.cli import main
from pnc_pack.format import codec
from tests.multi_fixtures import TINY_CLI


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def files(zoo, source2, tmp_path_factory):
    """Built once: the two-module clone and the single clone of the first source, same settings."""
    d = tmp_path_factory.mktemp("multi-cli")
    common = ["--target", zoo["target"], "--data", "digits", "--eval-data", "digits", *TINY_CLI]
    assert main(["build", "--source", str(zoo["source"]), "--clone-classes", "5,6", "--source", str(source2),
                 "--clone-classes", "8,9", *map(str, common), "-o", str(d / "ab.pncd")]) == 0
    assert main(["build", "--source", str(zoo["source"]), "--clone-classes", "5,6", *map(str, common),
                 "-o", str(d / "a.pncd")]) == 0
    return d


def test_build_inspect_eval_two_sources(files, capsys):
    rc, out, _ = _run(capsys, "inspect", files / "ab.pncd", "--json")
    s = json.loads(out)
    assert rc == 0 and len(s["modules"]) == 2
    assert [c["name"] for m in s["modules"] for c in m["classes"]] == ["5", "6", "8", "9"]
    assert {t["name"] for t in s["tensors"]} >= {"classifier.new.0.weight", "classifier.new.1.weight"}
    rc, out, _ = _run(capsys, "eval", files / "ab.pncd", "--data", "digits", "--json")
    e = json.loads(out)
    assert rc == 0 and [f["name"] for f in e["functionalities"]] == ["target", "module 0", "module 1"]
    stored = dict(codec.load(files / "ab.pncd").metrics["eval"])
    assert stored.pop("data") == "digits" and stored == e  # what build measured is what a receiver measures
    rc, out, _ = _run(capsys, "eval", files / "ab.pncd", "--data", "digits")
    assert rc == 0 and "module 1   (8, 9):" in out and "target     (0, 1, 2, 3, 4):" in out


def test_remove_gives_back_the_single_clone_and_the_target(files, capsys, zoo):
    rc, out, _ = _run(capsys, "remove", files / "ab.pncd", "--classes", "8,9", "-o", files / "r.pncd")
    assert rc == 0 and "removed module 1" in out
    assert (files / "r.pncd").read_bytes() == (files / "a.pncd").read_bytes()
    rc, out, _ = _run(capsys, "remove", files / "ab.pncd", "--all", "-o", files / "none.pncd", "--json")
    assert rc == 0 and json.loads(out)["modules"] == []
    rc, out, _ = _run(capsys, "apply", files / "none.pncd", "--eval-data", "digits", "--json")
    assert rc == 0 and json.loads(out)["eval"]["k"] == 0
    rc, _, err = _run(capsys, "remove", files / "ab.pncd", "-o", files / "x.pncd")
    assert rc == 2 and "--module" in err and "Traceback" not in err
    rc, _, err = _run(capsys, "remove", files / "ab.pncd", "--module", "5", "-o", files / "x.pncd")
    assert rc == 2 and "no module 5" in err
    # remove never needs torch
    code = ("import sys; from pnc_pack.cli import main; "
            f"rc = main(['remove', {str(files / 'ab.pncd')!r}, '--module', '0', '-o', {str(files / 'y.pncd')!r}]); "
            "assert rc == 0 and 'torch' not in sys.modules, (rc, 'torch' in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_add_appends_a_module(files, capsys, source2):
    rc, out, _ = _run(capsys, "add", files / "a.pncd", "--source", source2, "--clone-classes", "8,9",
                      "--data", "digits", "--eval-data", "digits", *TINY_CLI, "-o", files / "added.pncd",
                      "--device", "cpu", "--precision", "fp32")
    assert rc == 0 and "module 1" in out
    assert (files / "added.pncd").read_bytes() == (files / "ab.pncd").read_bytes()
    prov = codec.load(files / "added.pncd").provenance["modules"][1]
    assert (prov["device"], prov["precision"]) == ("cpu", "fp32")


def test_usage_errors_are_one_line(files, capsys, zoo, source2):
    rc, _, err = _run(capsys, "build", "--source", zoo["source"], "--source", source2, "--clone-classes", "8",
                      "--target", zoo["target"], "--data", "digits", "-o", files / "x.pncd")
    assert rc == 2 and "2 --source and 1 --clone-classes" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _run(capsys, "build", "--source", zoo["source"], "--clone-classes", "5", "--target", zoo["target"],
                      "--data", "digits", "--set", "stepz=3", "-o", files / "x.pncd")
    assert rc == 2 and "unknown build setting 'stepz'" in err
    rc, _, err = _run(capsys, "add", files / "a.pncd", "--source", source2, "--clone-classes", "6",
                      "--data", "digits", "-o", files / "x.pncd")
    assert rc == 2 and "class 6" in err


# Small selection sizes (the defaults are 200 anchors x 100 masks; D_t of 8 and 9 at data fraction 0.5 has 144 images),
# and no negatives in the builds that follow: what is checked here is the selection, not the clone's quality.
SELECT_CLI = ["--select-source", "--select-anchors", "40", "--select-masks", "10", "--set", "neg_weight=0"]


def test_select_source_prints_scores_and_builds_from_the_best(files, capsys, zoo, source2):
    rc, out, _ = _run(capsys, "build", "--source", zoo["source"], "--source", source2, "--clone-classes", "8,9",
                      *SELECT_CLI, "--target", zoo["target"], "--data", "digits", *TINY_CLI,
                      "-o", files / "sel.pncd", "--json")
    assert rc == 0
    r = json.loads(out)
    sel = r["selection"]
    assert len(sel["scores"]) == 2 and sel["best"] == max(range(2), key=lambda i: sel["scores"][i])
    assert sel["anchors"] == 40
    d = codec.load(files / "sel.pncd")
    assert d.modules[0].source.path == sel["chosen"] and d.metrics["selection"]["scores"] == sel["scores"]
    rc, out, _ = _run(capsys, "build", "--source", zoo["source"], "--source", source2, "--clone-classes", "8,9",
                      *SELECT_CLI, "--target", zoo["target"], "--data", "digits", *TINY_CLI,
                      "-o", files / "sel2.pncd")
    assert rc == 0 and "<- chosen" in out and (files / "sel2.pncd").read_bytes() == (files / "sel.pncd").read_bytes()
    rc, out, _ = _run(capsys, "build", "--source", zoo["source"], "--source", source2, "--clone-classes", "8,9",
                      *SELECT_CLI, "--select-by", "accuracy", "--target", zoo["target"], "--data", "digits",
                      *TINY_CLI, "-o", files / "sel3.pncd", "--json")
    sel = json.loads(out)["selection"]
    acc = [d["dt_accuracy"] for d in sel["details"]]
    assert rc == 0 and sel["rule"] == "accuracy" and acc[sel["best"]] == max(acc)


def test_set_reads_every_kind_of_builder_setting():
    from pnc_pack.cli._build_opts import parse_settings
    from pnc_pack.errors import UsageError

    got = parse_settings(["route_recall_multi=none", "negatives=inversion", "neg_masks=2", "route_recall=0.9",
                          "localize=no", "positions=0,1"], seed=None)
    assert got == {"route_recall_multi": None, "negatives": "inversion", "neg_masks": 2, "route_recall": 0.9,
                   "localize": False, "positions": (0, 1)}
    with pytest.raises(UsageError, match="neg_masks"):
        parse_settings(["neg_masks=none"])
    with pytest.raises(UsageError, match="route_recall"):
        parse_settings(["route_recall=high"])
