"""One exit code per kind of mistake, whichever command meets it (issue 20, item 12): a delta that is missing or
cannot be read is malformed input (3) for every command; a malformed repo id or hub spec typed by the user is a
usage error (2); a malformed reference inside a delta file keeps its class (5). Nothing here needs the Hub or torch
work: each case fails before either."""

from __future__ import annotations

from pathlib import Path

import pytest

from pnc_pack.cli import main

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    return rc, err


@pytest.mark.parametrize("cmd", [
    ["inspect"], ["verify"], ["sign", "{d}", "--key", "{k}"], ["remove", "{d}", "--all"],
    ["apply"], ["eval", "{d}", "--data", "digits"],
    ["add", "{d}", "--source", "models/s", "--clone-classes", "7", "--data", "digits"],
])
@pytest.mark.parametrize("what", ["missing", "folder"])
def test_a_delta_that_cannot_be_read_is_3_everywhere(capsys, tmp_path, cmd, what):
    d = tmp_path / "nope.pncd"
    if what == "folder":
        d.mkdir()
    if cmd[0] == "sign":
        assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    args = [str(a).replace("{d}", str(d)).replace("{k}", str(tmp_path / "k")) for a in cmd]
    args = args if "{d}" in map(str, cmd) else [*args, d]
    if cmd[0] in ("remove", "add"):
        args += ["-o", tmp_path / "out.pncd"]
    rc, err = _run(capsys, *args)
    assert rc == 3 and "FormatError" in err and str(d) in err


@pytest.mark.parametrize("cmd", [
    ["inspect", "hf://bad//id"], ["verify", "hf://a/b@x/../y"], ["apply", "hf://bad..id"],
    ["eval", "hf://-x/y", "--data", "digits"], ["pull", "bad//id"], ["pull", "org/name@"],
    ["push", VECTORS / "valid-minimal.pncd", "bad//id"],
])
def test_a_malformed_repo_id_typed_by_the_user_is_2(capsys, cmd):
    rc, err = _run(capsys, *cmd)
    assert rc == 2 and "UsageError" in err and ("repo id" in err or "reference" in err or "revision" in err)


def test_zoo_push_bad_repo_id_is_2(capsys, tmp_path):
    rc, err = _run(capsys, "zoo", "push", tmp_path, "no good/id")
    assert rc == 2 and "repo id" in err


def test_a_malformed_reference_inside_a_delta_keeps_its_class(capsys):
    rc, err = _run(capsys, "inspect", VECTORS / "bad-repo-id.pncd")
    assert rc == 5 and "ReferenceError" in err


def test_readme_exit_codes_match():
    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "2 usage (bad flags or arguments, including a malformed repo id or `hf://` spec" in text
    assert "3 malformed, tampered, missing or unreadable delta" in text
