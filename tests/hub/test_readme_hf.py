"""The README's transformers round trip runs as written (issue 18 item 6): the Hub-compatible test server started the
documented way, then the block in a fresh folder, in bash: tiny HF ResNet target and ConvNeXt source and an
MNIST-like parquet dataset published, a clone built from the Hub and pushed, applied by a receiver with an empty
Hub cache (Ori/Tar/Avg on the Hub dataset), and detached back to the target bit for bit. Then the delta pins every
file of both models and records the dataset's commit and each parquet file's sha256."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from pnc_pack.refs import sha256_file
from tests.hub.hub_helpers import run_readme_block

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs pnc-pack[hf]"),
              pytest.mark.slow]  # run first: see tests/conftest.py


def test_readme_hf_round_trip(tmp_path):
    r = run_readme_block("## Transformers image classifiers and Hub datasets", tmp_path,
                         HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT))
    assert "Ori" in r.stdout and "Avg" in r.stdout  # apply --eval-data hf:org/mnist-pq, from the Hub alone
    assert "detach: the target, bit for bit" in r.stdout
    assert (tmp_path / "receiver" / "hub").is_dir()  # the receiver's cache was filled by apply, from nothing

    import pnc_pack

    delta = pnc_pack.load(tmp_path / "c.pncd")
    ex = tmp_path / "hf-example"
    assert delta.target.arch == "hf-resnet" and delta.modules[0].source.arch == "hf-convnext"
    assert set(delta.target.files) == {"config.json", "preprocessor_config.json", "model.safetensors"}
    for name, pin in delta.target.files.items():
        assert pin == sha256_file(ex / "tiny-resnet" / name)
    data = delta.provenance["data_files"]
    assert data["repo"] == "org/mnist-pq" and re.fullmatch(r"[0-9a-f]{40}", data["commit"])
    assert delta.provenance["data"].startswith(f"hf:org/mnist-pq@{data['commit']}#sha256=")
    local = {p.relative_to(ex / "mnist-pq").as_posix(): sha256_file(p).sha256
             for p in (ex / "mnist-pq").rglob("*.parquet")}
    assert data["files"] == local and len(local) == 2
