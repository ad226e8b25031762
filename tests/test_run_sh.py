"""tools/run.sh says in one line that it sets up .venv before the long install, and takes torch from the index
PNC_PACK_TORCH_INDEX names (the CPU build); the README says what a plain PyPI install of torch gives (issue 20, 8).
A stub venv stands in for pip, so nothing is installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stub_venv(tmp_path: Path) -> tuple[Path, Path]:
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    for tool in ("python", "ruff"):
        stub = venv / "bin" / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        stub.chmod(0o755)
    return venv, log


def _run(venv: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "tools" / "run.sh"), "lint", "x"], capture_output=True, text=True,
                          env={**os.environ, "PNC_PACK_VENV": str(venv), **env}, timeout=60)


def test_first_run_says_it_sets_up_the_venv(tmp_path):
    venv, log = _stub_venv(tmp_path)
    r = _run(venv)
    assert r.returncode == 0, r.stderr
    assert "setting up" in r.stderr and "100 s" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    calls = log.read_text().splitlines()
    assert calls[0].startswith("python -m pip install") and "torch==2.13.0" in calls[0]
    assert "--index-url" not in calls[0] and calls[-1] == "ruff check x"
    r = _run(venv)  # set up: silent, straight to the command
    assert r.returncode == 0 and r.stderr == ""


def test_cpu_index(tmp_path):
    venv, log = _stub_venv(tmp_path)
    r = _run(venv, PNC_PACK_TORCH_INDEX="https://download.pytorch.org/whl/cpu")
    assert r.returncode == 0, r.stderr
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in log.read_text().splitlines()[0]


def test_readme_says_which_torch_build():
    text = (ROOT / "README.md").read_text()
    assert "resolves to the CUDA build" in text and "--index-url https://download.pytorch.org/whl/cpu" in text
    assert "PNC_PACK_TORCH_INDEX=https://download.pytorch.org/whl/cpu bash tools/run.sh demo" in text
