"""The README's "Publishing on the Hub" runs as written (issue 20, item 9): the Hub-compatible test server started
the documented way (``python -m tests.hub.server``), then the block of commands in a fresh folder, in bash, with
only the server's port put in for the README's 8080."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.hub.hub_helpers import run_readme_block

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

ROOT = Path(__file__).resolve().parents[2]


def test_readme_publishing_path(tmp_path):
    r = run_readme_block("## Publishing on the Hub", tmp_path, timeout=300)
    shas = [line for line in r.stdout.splitlines() if re.fullmatch(r"[0-9a-f]{40}", line)]
    assert len(shas) == 3  # zoo push twice, push once
    assert "Ori" in r.stdout and "Avg" in r.stdout  # apply --eval-data from the Hub alone
    assert (tmp_path / "pulled.pncd").read_bytes() != b"" and (tmp_path / "shared.pncd").exists()


def _table_rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| command | example |"):text.index("## Publishing on the Hub")]
    return [line for line in table.splitlines() if line.startswith("| `")]


def test_readme_command_table_is_one_session():
    rows = _table_rows()
    first = {name: next(i for i, r in enumerate(rows) if r.startswith(f"| `{name}`")) for name in ("keygen", "verify")}
    assert first["keygen"] < first["verify"]  # the key exists before it is trusted
    deltas = re.findall(r"-o (\S+\.pncd)", "\n".join(rows))
    assert "clone.pncd" in deltas and len(deltas) == len(set(deltas))  # each written once: nothing overwritten
    joined = "\n".join(rows)
    for model in ("models/a", "models/b", "models/c", "models/source"):
        assert f"-o {model}" in joined  # how each model the table uses is made
    assert "pnc_pack.load_cloned" in joined and "damage" in joined


def test_readme_damaged_delta_recipe(tmp_path, monkeypatch):
    import shutil

    code = re.search(r'python -c "(.*?)"', next(r for r in _table_rows() if "damaged.pncd" in r)).group(1)
    shutil.copy(ROOT / "spec" / "vectors" / "valid-minimal.pncd", tmp_path / "clone.pncd")
    monkeypatch.chdir(tmp_path)
    exec(code, {})
    import pnc_pack

    damaged, clean = pnc_pack.load("damaged.pncd"), pnc_pack.load("clone.pncd")
    assert damaged.refs == clean.refs and damaged.tensors() != clean.tensors()
