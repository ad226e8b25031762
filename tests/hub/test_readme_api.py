"""The README's Python API section runs as written: its code block, executed in a folder holding the models it
names, with the Hub steps against the loopback Hub (tests/hub/server.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(section: str) -> str:
    text = README.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


def test_readme_python_api_runs_as_written(hf_env, zoo, tmp_path, monkeypatch):
    import torch

    for name, src in (("target", "target"), ("source", "source"), ("b", "source")):
        shutil.copytree(zoo[src], tmp_path / "models" / name)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_block("Python API"), str(README), "exec"), scope)
    # what the comments promise
    assert scope["report"].ok and Path("clone.pncd").is_file()
    x = torch.rand(4, *scope["cloned"].target.input_shape)
    assert scope["cloned"](x).shape == (4, 8)
    assert scope["config"].to_dict() == scope["delta"].provenance["config"]
    assert scope["pulled"].commit == scope["commit"] and scope["pulled"].delta.target.commit == scope["t"]
    assert scope["received"](x).shape == (4, 8) and isinstance(scope["received"], type(scope["cloned"]))
    assert len(scope["two"].modules) == 2 and len(scope["one"].modules) == 1
    assert scope["one"].modules[0] == scope["two"].modules[0]
    assert len(scope["sel"].scores) == 2 and scope["sel"].best in (0, 1)
