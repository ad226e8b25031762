"""What a new user meets at the command line (issue 20): one rule for existing outputs (--force) and an unwritable
output folder reported before any work (item 10); settings and class lists checked up front (item 11). Every case
fails before a model is loaded, so no model is needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pnc_pack.cli import main

ROOT = Path(__file__).resolve().parents[1]
TWO = ROOT / "spec" / "vectors" / "valid-bf16-two-modules.pncd"  # a valid two-module delta, torch-free to rewrite


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


@pytest.fixture
def existing(tmp_path):
    out = tmp_path / "out.pncd"
    out.write_bytes(b"keep me")
    return out


BUILD = ["build", "--target", "models/t", "--source", "models/s", "--data", "digits", "--clone-classes", "5"]


@pytest.mark.parametrize("cmd", [
    BUILD,
    ["add", TWO, "--source", "models/s", "--clone-classes", "7", "--data", "digits"],
    ["remove", TWO, "--module", "0"],
    ["apply", TWO, "--repair-data", "digits"],
    ["sign", TWO, "--key", TWO],
    ["pull", "org/name"],
])
def test_every_writer_refuses_an_existing_output(capsys, existing, cmd):
    rc, _, err = _run(capsys, *cmd, "-o", existing)
    assert rc == 2 and str(existing) in err and "--force" in err
    assert existing.read_bytes() == b"keep me"


def test_folder_outputs_and_keys_refuse_too(capsys, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    rc, _, err = _run(capsys, "train", "--arch", "lenet5", "--data", "digits", "--classes", "0,1", "-o", tmp_path / "m")
    assert rc == 2 and "config.json" in err and "--force" in err
    rc, _, err = _run(capsys, "apply", TWO, "--export", tmp_path / "m")
    assert rc == 2 and "config.json" in err and "--force" in err
    (tmp_path / "me.pub").write_text("x")
    rc, _, err = _run(capsys, "keygen", "-o", tmp_path / "me")
    assert rc == 2 and "me.pub" in err and "--force" in err and not (tmp_path / "me").exists()


def test_an_existing_onnx_sidecar_is_refused_like_the_graph(capsys, tmp_path):
    side = tmp_path / "m.onnx.json"
    side.write_text("keep me")
    rc, _, err = _run(capsys, "apply", TWO, "--export-onnx", tmp_path / "m.onnx")
    assert rc == 2 and str(side) in err and "--force" in err
    assert side.read_text() == "keep me" and not (tmp_path / "m.onnx").exists()
    (tmp_path / "d.onnx.json").mkdir()
    rc, _, err = _run(capsys, "apply", TWO, "--export-onnx", tmp_path / "d.onnx", "--force")
    assert rc == 2 and "is a folder" in err and "d.onnx.json" in err


def test_force_overwrites(capsys, existing, tmp_path):
    assert _run(capsys, "keygen", "-o", tmp_path / "k")[0] == 0
    assert _run(capsys, "keygen", "-o", tmp_path / "k")[0] == 2
    assert _run(capsys, "keygen", "-o", tmp_path / "k", "--force")[0] == 0
    rc, _, _ = _run(capsys, "sign", TWO, "--key", tmp_path / "k", "-o", existing, "--force")
    assert rc == 0 and existing.read_bytes()[:4] == b"\x89PNC"


@pytest.mark.parametrize("cmd", [BUILD, ["remove", TWO, "--module", "0"], ["keygen"]])
def test_unwritable_output_folder_is_a_usage_error_first(capsys, tmp_path, cmd):
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, _, err = _run(capsys, *cmd, "-o", blocker / "sub" / "out")
    assert rc == 2 and "cannot write in" in err and str(blocker) in err


def test_permission_denied_is_named_before_the_work(capsys, tmp_path, monkeypatch):
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path else real(p, mode, **kw))
    for cmd in (BUILD, ["remove", TWO, "--all"]):
        rc, _, err = _run(capsys, *cmd, "-o", tmp_path / "x.pncd")
        assert rc == 2 and "permission denied" in err and str(tmp_path) in err
    rc, _, err = _run(capsys, "train", "--arch", "lenet5", "--data", "digits", "--classes", "0,1",
                      "-o", tmp_path / "m")
    assert rc == 2 and "permission denied" in err
    rc, _, err = _run(capsys, "apply", TWO, "--export", tmp_path / "offline")
    assert rc == 2 and "permission denied" in err


@pytest.mark.parametrize("setting, words", [
    ("lr=-1", "lr must be positive"), ("lr=nan", "lr must be a finite number"), ("mask_lr=0", "mask_lr"),
    ("neg_weight=-1", "neg_weight must be 0 or more"), ("temperature=inf", "finite"),
    ("neg_target_conf=2", "neg_target_conf must be in [0, 1]"),
])
def test_bad_settings_fail_before_any_work(capsys, tmp_path, setting, words):
    rc, _, err = _run(capsys, *BUILD, "--set", setting, "-o", tmp_path / "c.pncd")
    assert rc == 2 and words in err and not (tmp_path / "c.pncd").exists()


def test_settings_in_python_are_checked_too():
    from pnc_pack.builder.config import BuildConfig
    from pnc_pack.errors import UsageError

    with pytest.raises(UsageError, match="lr must be a finite"):
        BuildConfig.with_overrides(lr=float("nan"))


@pytest.mark.parametrize("classes, words", [("5,,6", "empty item"), ("5,", "empty item"), ("5,5", "twice"),
                                            (",", "at least one")])
def test_class_lists(capsys, tmp_path, classes, words):
    args = [a if a != "5" else classes for a in BUILD]
    rc, _, err = _run(capsys, *args, "-o", tmp_path / "c.pncd")
    assert rc == 2 and "--clone-classes" in err and words in err


def test_remove_all_with_a_module_is_refused(capsys, tmp_path):
    rc, _, err = _run(capsys, "remove", TWO, "--all", "--module", "0", "-o", tmp_path / "x.pncd")
    assert rc == 2 and "--all" in err and not (tmp_path / "x.pncd").exists()
