"""A clone of several sources through the Hub: build against hf:// references, push, and on another machine (empty
cache, no token) pull, inspect, evaluate per functionality, remove a module (from the hf:// spec) and apply what is
left."""

from __future__ import annotations

import json

import pytest

import pnc_pack.hub as hub_api
from pnc_pack.format import codec

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

TINY = dict(steps=10, retune_steps=2, masks_per_anchor=4, pool_size=500, data_fraction=0.5)


def test_two_sources_push_pull_eval_remove(hf_env, run_child, tmp_path, zoo, source2, digits):
    from pnc_pack.api.build import build_multi

    # the conftest's LeNet-5 models: the target (digits 0-4), a source of 5-9 and one of 7-9
    for name, folder in (("target", zoo["target"]), ("a", zoo["source"]), ("b", source2)):
        hub_api.publish_model(folder, f"org/lenet5-{name}")
    delta = build_multi("hf://org/lenet5-target", [("hf://org/lenet5-a@main", [5, 6]), ("hf://org/lenet5-b", [8, 9])],
                        digits, seed=0, **TINY)
    assert not delta.has_local_refs and [m.source.repo_id for m in delta.modules] == ["org/lenet5-a", "org/lenet5-b"]
    commit = hub_api.push(delta, "org/clone-multi")
    card = hf_env.hub.repos["org/clone-multi"].commits[commit].files["README.md"].decode()
    assert "org/lenet5-a" in card and "org/lenet5-b" in card

    env = hf_env.machine("receiver")
    dest = tmp_path / "pulled.pncd"
    got = run_child("cli", "pull", f"org/clone-multi@{commit}", "-o", str(dest), "--json", env=env)
    assert got.returncode == 0, got
    assert dest.read_bytes() == codec.dumps(delta) and len(got.json()["refs"]) == 3
    got = run_child("cli", "inspect", str(dest), "--json", env=env)
    assert got.returncode == 0 and len(got.json()["modules"]) == 2
    got = run_child("cli", "eval", f"hf://org/clone-multi@{commit}", "--data", "digits", "--json", env=env)
    assert got.returncode == 0, got
    ev = got.json()
    assert [f["classes"] for f in ev["functionalities"]] == [["0", "1", "2", "3", "4"], ["5", "6"], ["8", "9"]]
    assert ev["functionalities"][1]["source"].startswith("org/lenet5-a@")

    one = tmp_path / "one.pncd"
    got = run_child("cli", "remove", f"hf://org/clone-multi@{commit}", "--source", "org/lenet5-a", "-o", str(one),
                    "--json", env=env)  # a hub spec, as every command takes
    assert got.returncode == 0, got
    assert [m["classes"] for m in json.loads(got.stdout)["modules"]] == [["8", "9"]]
    got = run_child("cli", "apply", str(one), "--eval-data", "digits", "--json",
                    env=hf_env.machine("receiver", offline=True))  # every model is in the receiver's cache now
    assert got.returncode == 0, got
    assert got.json()["eval"]["k"] == 2
