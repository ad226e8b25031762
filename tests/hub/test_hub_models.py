"""Pretrained models through the Hub: publish, resolve (branch/tag/short sha -> pinned commit), fetch, errors.

All against our own Hub-compatible server on 127.0.0.1 (tests/hub/server.py), talking through the real
huggingface_hub client.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
import yaml

import pnc_pack.hub as hub_api
from pnc_pack.errors import (
    HubAuthError,
    HubConnectionError,
    HubNotFoundError,
    HubOfflineError,
    ModelMismatchError,
    ModelNotFoundError,
    UsageError,
)
from pnc_pack.refs import FileDigest, ModelRef, sha256_file
from tests.hub.hub_helpers import READ_TOKEN


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _card_meta(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text[4:text.index("\n---", 4)])


def test_publish_then_resolve_pins_commit_and_hashes(hf_env, make_model, tmp_path):
    hub = hf_env.hub
    folder = make_model("target")
    c1 = hub_api.publish_model(folder, "org/target", message="first")
    assert len(c1) == 40 and c1 == hub.head("org/target")
    files = hub.repos["org/target"].commits[c1].files
    assert files["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert files["config.json"] == (folder / "config.json").read_bytes()
    meta = _card_meta(files["README.md"].decode())
    assert meta["library_name"] == "pnc-pack" and "lenet5" in meta["tags"] and "pnc-pack" in meta["tags"]
    assert sha256_file(folder / "model.safetensors").sha256 in files["README.md"].decode()

    _r = hub_api.resolve_model("hf://org/target")  # no revision: main, resolved to its commit
    got_folder, ref = _r.folder, _r.ref
    assert ref.repo_id == "org/target" and ref.commit == c1 and not ref.is_local
    assert ref.arch == "lenet5" and ref.arch_args["num_classes"] == 5
    for name in ("config.json", "model.safetensors"):
        assert ref.files[name] == sha256_file(folder / name)
    assert str(got_folder).startswith(str(hf_env.home / "hub")) and got_folder.name == c1

    # a second version moves the branch; the short sha, the tag and the old ref still give the old one
    c2 = hub_api.publish_model(make_model("target-v2", seed=1), "org/target")
    hub.create_tag("org/target", "v1", c1)
    assert c2 != c1
    assert hub_api.resolve_model("hf://org/target@main").ref.commit == c2
    assert hub_api.resolve_model(f"hf://org/target@{c1[:8]}").ref.commit == c1
    assert hub_api.resolve_model("hf://org/target@v1").ref == ref
    fetched = hub_api.fetch_model(ref)
    assert (fetched / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()


def test_publish_to_branch_and_private(hf_env, make_model, monkeypatch):
    hub = hf_env.hub
    c = hub_api.publish_model(make_model("m"), "org/priv", private=True, branch="dev")
    repo = hub.repos["org/priv"]
    assert repo.private and repo.branches["dev"] == c and repo.branches["main"] != c
    assert hub_api.resolve_model("hf://org/priv@dev").ref.commit == c  # with the token: fine
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubNotFoundError, match="HF_TOKEN"):  # anonymous: 401 RepoNotFound, like the Hub
        hub_api.resolve_model("hf://org/priv@dev")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_token")
    with pytest.raises(HubAuthError) as exc:
        hub_api.resolve_model("hf://org/priv@dev")
    assert exc.value.exit_code == 12 and "\n" not in str(exc.value)


def test_local_refs_resolve_and_fetch(make_model, tmp_path):
    folder = make_model("local")
    _r = hub_api.resolve_model(str(folder))
    got, ref = _r.folder, _r.ref
    assert got == folder and ref.is_local and ref.path == str(folder)
    assert hub_api.fetch_model(ref) == folder
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    folder.rename(moved / "local")
    with pytest.raises(ModelNotFoundError, match="local"):
        hub_api.fetch_model(ref)
    assert hub_api.fetch_model(ref, models_dir=moved) == moved / "local"
    (moved / "local" / "config.json").write_bytes(b"{}")
    with pytest.raises(ModelMismatchError):
        hub_api.fetch_model(ref, models_dir=moved)
    with pytest.raises(ModelNotFoundError):
        hub_api.resolve_model(str(tmp_path / "nope"))


def test_not_found_kinds(hf_env, make_model, monkeypatch):
    c = hub_api.publish_model(make_model("t"), "org/t")
    with pytest.raises(HubNotFoundError, match="org/missing") as e1:
        hub_api.resolve_model("hf://org/missing")
    assert e1.value.exit_code == 11
    with pytest.raises(HubNotFoundError, match="'nope'"):
        hub_api.resolve_model("hf://org/t@nope")
    with pytest.raises(HubNotFoundError, match="'0123456789'"):
        hub_api.resolve_model("hf://org/t@0123456789")
    ref = hub_api.resolve_model(f"hf://org/t@{c}").ref
    missing = ModelRef(ref.arch, ref.arch_args, {**ref.files, "extra.bin": FileDigest("0" * 64, 1)},
                       repo_id=ref.repo_id, commit=ref.commit)
    with pytest.raises(HubNotFoundError, match="extra.bin"):
        hub_api.fetch_model(missing)
    gone = ModelRef(ref.arch, ref.arch_args, ref.files, repo_id="org/t", commit="f" * 40)
    with pytest.raises(HubNotFoundError, match="f{10}"):
        hub_api.fetch_model(gone)
    monkeypatch.delenv("HF_TOKEN")  # anonymous: the 401 RepoNotFound of the Hub is still "not found"
    with pytest.raises(HubNotFoundError):
        hub_api.resolve_model("hf://org/missing")
    with pytest.raises(UsageError):
        hub_api.resolve_model("hf://not a repo")


def test_connection_refused(hf_env, make_model, monkeypatch):
    c = hub_api.publish_model(make_model("t"), "org/t")
    ref = hub_api.resolve_model(f"hf://org/t@{c}").ref
    monkeypatch.setenv("HF_HOME", str(hf_env.tmp / "cold"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")  # nothing listens there
    with pytest.raises(HubConnectionError, match="127.0.0.1") as exc:
        hub_api.resolve_model("hf://org/t@main")
    assert exc.value.exit_code == 13
    with pytest.raises(HubConnectionError):
        hub_api.fetch_model(ref)  # fails at the preflight, not after huggingface_hub's retries
    with pytest.raises(HubConnectionError):
        hub_api.publish_model(make_model("t2"), "org/t")


def test_write_needs_a_write_token(hf_env, make_model, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    with pytest.raises(HubAuthError, match="403"):
        hub_api.publish_model(make_model("t"), "org/t")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(HubAuthError, match="401"):
        hub_api.publish_model(make_model("t2"), "org/t")
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubAuthError, match="set HF_TOKEN"):
        hub_api.publish_model(make_model("t3"), "org/t")
    assert "org/t" not in hf_env.hub.repos


def test_served_bytes_not_the_pinned_ones(hf_env, make_model, monkeypatch):
    hub = hf_env.hub
    c = hub_api.publish_model(make_model("t"), "org/t")
    ref = hub_api.resolve_model(f"hf://org/t@{c}").ref
    hub.override_file("org/t", "model.safetensors", b"\0" * ref.files["model.safetensors"].size)
    monkeypatch.setenv("HF_HOME", str(hf_env.tmp / "fresh"))
    with pytest.raises(ModelMismatchError, match="model.safetensors") as exc:
        hub_api.fetch_model(ref)
    assert exc.value.expected == ref.files["model.safetensors"].sha256 and exc.value.exit_code == 5


def test_damaged_cache_entry_is_downloaded_again(hf_env, make_model):
    c = hub_api.publish_model(make_model("t"), "org/t")
    ref = hub_api.resolve_model(f"hf://org/t@{c}").ref
    folder = hub_api.fetch_model(ref)
    blob = (folder / "model.safetensors").resolve()
    good = blob.read_bytes()
    os.chmod(blob, 0o644)
    blob.write_bytes(b"x" * len(good))  # bit rot in the cache
    assert hub_api.fetch_model(ref) == folder
    assert (folder / "model.safetensors").read_bytes() == good


def test_offline_warm_and_cold_cache(hf_env, make_model, run_child):
    c = hub_api.publish_model(make_model("t"), "org/t")
    ref = hub_api.resolve_model(f"hf://org/t@{c}").ref
    ref_json = json.dumps(ref.to_dict())
    online = run_child("fetchref", ref_json, env=hf_env.machine("b"))
    assert online.returncode == 0, online
    offline = run_child("fetchref", ref_json, env=hf_env.machine("b", offline=True))
    assert offline.returncode == 0, offline
    assert offline.json() == online.json()
    assert offline.json()["files"] == {n: d.sha256 for n, d in ref.files.items()}
    # a branch resolves offline through the cache's refs (what the last online look-up saw)
    by_branch = run_child("resolve", "hf://org/t@main", env=hf_env.machine("b", offline=True))
    assert by_branch.returncode == 14, by_branch  # machine b never looked up "main" online
    run_child("resolve", "hf://org/t@main", env=hf_env.machine("b"))
    by_branch = run_child("resolve", "hf://org/t@main", env=hf_env.machine("b", offline=True))
    assert by_branch.returncode == 0 and by_branch.json()["ref"]["commit"] == c, by_branch

    cold = run_child("fetchref", ref_json, env=hf_env.machine("c", offline=True))
    assert cold.returncode == 14, cold
    err = cold.json()
    assert err["error"] == "HubOfflineError"
    assert "org/t@" + c[:10] in err["message"] and "model.safetensors" in err["message"]
    assert "config.json" in err["message"]


def test_offline_in_process(hf_env, make_model, monkeypatch):
    c = hub_api.publish_model(make_model("t"), "org/t")
    ref = hub_api.resolve_model(f"hf://org/t@{c}").ref
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read at call time, not at import
    assert hub_api.fetch_model(ref).name == c
    with pytest.raises(HubOfflineError):
        hub_api.publish_model(make_model("t2"), "org/t")
    monkeypatch.setenv("HF_HOME", str(hf_env.tmp / "cold"))
    with pytest.raises(HubOfflineError, match="org/t@"):
        hub_api.fetch_models([ref])
