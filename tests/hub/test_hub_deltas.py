"""Clone deltas through the Hub, end to end, as users on different machines would run them.

Our own Hub-compatible server on 127.0.0.1 (tests/hub/server.py) and the real huggingface_hub client; "other
machines" are child processes (tests/hub/child.py) with their own empty HF_HOME and no token.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import threading

import pytest
import yaml

import pnc_pack.hub as hub_api
from pnc_pack.errors import FormatError, HubNotFoundError, ReferenceError, SignatureError
from pnc_pack.format import codec
from tests.hub.hub_helpers import WRITE_TOKEN, child_cmd, make_delta

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py


def _publish_pair(make_model):
    hub_api.publish_model(make_model("target"), "org/target")
    hub_api.publish_model(make_model("source", names=("5", "6", "7", "8", "9"), seed=1), "org/source")
    tref = hub_api.resolve_model("hf://org/target").ref  # a branch: pinned to its commit now
    sref = hub_api.resolve_model("hf://org/source@main").ref
    return tref, sref


def _meta(readme: bytes) -> dict:
    text = readme.decode()
    return yaml.safe_load(text[4:text.index("\n---", 4)])


def test_round_trip_as_a_new_user(hf_env, make_model, run_child, tmp_path):
    hub = hf_env.hub
    tref, sref = _publish_pair(make_model)
    assert tref.commit == hub.head("org/target") and sref.commit == hub.head("org/source")
    delta = make_delta(tref, [sref])
    commit = hub_api.push(delta, "org/clone")
    files = hub.repos["org/clone"].commits[commit].files
    data = codec.dumps(delta)
    assert files["clone.pncd"] == data
    meta = _meta(files["README.md"])
    assert meta["library_name"] == "pnc-pack" and meta["base_model_relation"] == "adapter"
    assert meta["base_model"] == ["org/source", "org/target"]
    assert {"pnc-pack", "partial-network-cloning", "clone-delta"} <= set(meta["tags"])
    assert meta["pnc_pack_metrics"] == {"accuracy.ori": 0.9375, "accuracy.tar": 0.875}
    assert meta["pnc_pack_delta"]["sha256"] == hashlib.sha256(data).hexdigest()
    body = files["README.md"].decode()
    assert "pnc-pack apply hf://org/clone@main" in body and "source 0 class 1" in body and "mask density" in body

    # the target moves on after the delta was built: the delta still gets the commit it pinned
    hub_api.publish_model(make_model("target-v2", seed=7), "org/target")
    assert hub.head("org/target") != tref.commit

    got = run_child("fetch", "org/clone", env=hf_env.machine("b"))  # another machine: empty cache, no token
    assert got.returncode == 0, got
    out = got.json()
    assert out["commit"] == commit and out["delta_sha256"] == hashlib.sha256(data).hexdigest()
    assert [m["uri"] for m in out["models"]] == [tref.uri(), sref.uri()]
    for m, ref in zip(out["models"], (tref, sref)):
        assert m["files"] == {n: d.sha256 for n, d in ref.files.items()}
        assert m["folder"].startswith(str(tmp_path / "b")) and m["folder"].endswith(ref.commit)

    dest = tmp_path / "out" / "delta.pncd"
    dest.parent.mkdir()
    pulled = run_child("cli", "pull", f"hf://org/clone@{commit}", "-o", str(dest), "--json", env=hf_env.machine("b"))
    assert pulled.returncode == 0, pulled
    assert json.loads(pulled.stdout)["commit"] == commit and dest.read_bytes() == data

    warm = run_child("fetch", "org/clone", env=hf_env.machine("b", offline=True))
    assert warm.returncode == 0, warm
    assert warm.json() == out
    cold = run_child("fetch", "org/clone", env=hf_env.machine("c", offline=True))
    assert cold.returncode == 14, cold
    assert "org/clone@main" in cold.json()["message"] and "clone.pncd" in cold.json()["message"]


def test_concurrent_pushes_to_one_branch(hf_env, make_model):
    hub = hf_env.hub
    tref, sref = _publish_pair(make_model)
    first = hub_api.push(make_delta(tref, [sref], seed=1), "org/clone")
    initial = hub.repos["org/clone"].commits[first].parent
    with pytest.raises(hub_api.HubConflictError, match="moved") as exc:
        hub_api.push(make_delta(tref, [sref], seed=2), "org/clone", parent_commit=initial)
    assert exc.value.exit_code == 15 and hub.head("org/clone") == first

    # two pushers read the same head, then both push: exactly one lands, the other is told
    results, barrier = [], threading.Barrier(2)

    def pusher(seed):
        barrier.wait()
        try:
            results.append(hub_api.push(make_delta(tref, [sref], seed=seed), "org/clone", parent_commit=first))
        except hub_api.HubConflictError as e:
            results.append(e)

    threads = [threading.Thread(target=pusher, args=(s,)) for s in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    won = [r for r in results if isinstance(r, str)]
    lost = [r for r in results if isinstance(r, hub_api.HubConflictError)]
    assert len(won) == 1 and len(lost) == 1 and hub.head("org/clone") == won[0]
    assert hub.repos["org/clone"].commits[won[0]].parent == first

    # other branches are independent; a new branch is created from main
    dev = hub_api.push(make_delta(tref, [sref], seed=5), "org/clone", branch="dev")
    assert hub.head("org/clone", "dev") == dev and hub.head("org/clone") == won[0]
    assert hub_api.pull("org/clone@dev").commit == dev


def test_push_refuses_local_refs(hf_env, make_model):
    local = hub_api.resolve_model(str(make_model("target"))).ref
    hub_api.publish_model(make_model("source"), "org/source")
    sref = hub_api.resolve_model("hf://org/source").ref
    with pytest.raises(ReferenceError, match="zoo push") as exc:
        hub_api.push(make_delta(local, [sref]), "org/clone")
    assert str(local.path) in str(exc.value) and "org/clone" not in hf_env.hub.repos


def test_pull_refuses_damaged_or_unsigned_delta(hf_env, make_model, tmp_path):
    from pnc_pack.format.signing import generate_keypair, public_key_bytes, sign

    tref, sref = _publish_pair(make_model)
    key = generate_keypair()
    signed = sign(make_delta(tref, [sref]), key)
    commit = hub_api.push(signed, "org/clone")
    assert hub_api.pull("org/clone", trusted_keys=[public_key_bytes(key)]).commit == commit
    hub_api.push(make_delta(tref, [sref], seed=3), "org/unsigned")
    with pytest.raises(SignatureError):
        hub_api.pull("org/unsigned", require_signature=True)

    data = bytearray(hf_env.hub.repos["org/clone"].commits[commit].files["clone.pncd"])
    data[len(data) // 2] ^= 0xFF
    hf_env.hub.override_file("org/clone", "clone.pncd", bytes(data))
    out = tmp_path / "never.pncd"
    hf_env.home.rename(tmp_path / "old-cache")  # a fresh cache: the damaged bytes are downloaded
    with pytest.raises(FormatError) as exc:
        hub_api.pull("org/clone", output=out)
    assert exc.value.exit_code == 3 and "org/clone@" in str(exc.value) and not out.exists()
    with pytest.raises(HubNotFoundError, match="clone.pncd"):
        hub_api.pull("org/target")  # a model repo holds no delta


def test_four_processes_pull_into_one_cache(hf_env, make_model, tmp_path):
    tref, sref = _publish_pair(make_model)
    commit = hub_api.push(make_delta(tref, [sref]), "org/clone")
    env = hf_env.machine("shared")
    procs = [subprocess.Popen(child_cmd("fetch", "org/clone"), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    results = [json.loads(o) for o, _ in outs]
    assert all(r == results[0] for r in results) and results[0]["commit"] == commit
    assert results[0]["models"][0]["files"] == {n: d.sha256 for n, d in tref.files.items()}
    blobs = list((tmp_path / "shared" / "hub" / "models--org--clone" / "blobs").iterdir())
    assert len(blobs) == 1  # one download shared by all, no leftovers (.incomplete / temp files)


def test_cli_push_pull_zoo_and_exit_codes(hf_env, make_model, run_child, tmp_path):
    env = hf_env.machine("cli", token=WRITE_TOKEN)
    env["PNC_CHILD_NO_TORCH"] = "1"  # the child fails if the command imported torch
    pushed = run_child("cli", "zoo", "push", str(make_model("target")), "org/target", "--json", env=env)
    assert pushed.returncode == 0, pushed
    tcommit = json.loads(pushed.stdout)["commit"]
    plain = run_child("cli", "zoo", "push", str(make_model("source", seed=2)), "org/source", "-m", "src", env=env)
    assert plain.returncode == 0 and len(plain.stdout.strip()) == 40, plain
    tref = hub_api.resolve_model(f"hf://org/target@{tcommit}").ref
    sref = hub_api.resolve_model("hf://org/source").ref
    delta_file = tmp_path / "clone.pncd"
    codec.save(make_delta(tref, [sref]), delta_file)

    res = run_child("cli", "push", str(delta_file), "org/clone", "--json", env=env)
    assert res.returncode == 0, res
    commit = json.loads(res.stdout)["commit"]
    assert commit == hf_env.hub.head("org/clone")
    res = run_child("cli", "pull", "org/clone", env=env)
    assert res.returncode == 0 and res.stdout.splitlines()[0] == f"commit {commit}", res
    assert res.stdout.splitlines()[1].startswith("path ")

    res = run_child("cli", "pull", "org/nothing", env=env)
    assert res.returncode == 11 and "HubNotFoundError" in res.stderr and "Traceback" not in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1
    res = run_child("cli", "push", str(delta_file), "org/clone", env={**env, "HF_TOKEN": "hf_bad"})
    assert res.returncode == 12, res
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    res = run_child("cli", "pull", "org/clone", env=hf_env.machine("x", endpoint=dead))
    assert res.returncode == 13 and "HubConnectionError" in res.stderr, res
    local = hub_api.resolve_model(str(make_model("local"))).ref
    local_file = tmp_path / "local.pncd"
    codec.save(make_delta(local, [sref]), local_file)
    res = run_child("cli", "push", str(local_file), "org/clone2", env=env)
    assert res.returncode == 5 and "zoo push" in res.stderr, res
