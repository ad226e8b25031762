"""The same pull / resolve / fetch path against olah, a real and independent Hub-compatible server.

olah is read-only, so "publishing" here is a git commit in its mirror folder (tests/hub/olah_mirror.py). This
checks that nothing in pnc-pack depends on quirks of our own test server.
"""

from __future__ import annotations

import os

import pytest

import pnc_pack.hub as hub_api
from pnc_pack.errors import HubNotFoundError
from pnc_pack.format import codec
from pnc_pack.hub.card import delta_card
from tests.hub.hub_helpers import make_delta


def _files(folder):
    return {n: (folder / n).read_bytes() for n in hub_api.MODEL_FILES}


@pytest.fixture
def olah_env(olah, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", olah.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "machine-a"))
    return olah


def test_pull_and_fetch_through_olah(olah_env, make_model, run_child, tmp_path):
    olah = olah_env
    target, source = make_model("target"), make_model("source", names=("5", "6", "7", "8", "9"), seed=1)
    tc = olah.commit("olah-org/target", _files(target), "target v1")
    olah.tag("olah-org/target", "v1")
    sc = olah.commit("olah-org/source", _files(source), "source")

    tref = hub_api.resolve_model("hf://olah-org/target").ref  # main -> its commit
    assert tref.commit == tc
    assert hub_api.resolve_model("hf://olah-org/target@v1").ref == tref
    assert hub_api.resolve_model(f"hf://olah-org/target@{tc[:7]}").ref == tref
    sref = hub_api.resolve_model("hf://olah-org/source@main").ref
    assert sref.commit == sc

    delta = make_delta(tref, [sref])
    data = codec.dumps(delta)
    card = delta_card(delta, repo_id="olah-org/clone", branch="main", file_name="clone.pncd",
                      file_sha256="0" * 64, file_size=len(data), endpoint=olah.url)
    dc = olah.commit("olah-org/clone", {"clone.pncd": data, "README.md": card.encode()}, "delta")
    olah.commit("olah-org/target", _files(make_model("target-v2", seed=9)), "target v2")  # main moves on

    env = {"HF_ENDPOINT": olah.url}
    base = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    got = run_child("fetch", "hf://olah-org/clone", env={**base, **env, "HF_HOME": str(tmp_path / "b")})
    assert got.returncode == 0, got
    out = got.json()
    assert out["commit"] == dc
    for m, ref in zip(out["models"], (tref, sref)):  # the pinned commits, not the moved branch
        assert m["uri"] == ref.uri() and m["files"] == {n: d.sha256 for n, d in ref.files.items()}
    offline = run_child("fetch", "hf://olah-org/clone",
                        env={**base, **env, "HF_HOME": str(tmp_path / "b"), "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0 and offline.json() == out, offline

    # in-process too: pull, then fetch every pinned model (hash-checked) = what apply needs before loading
    got = hub_api.pull(f"olah-org/clone@{dc}")
    path, commit, pulled = got.path, got.commit, got.delta
    assert commit == dc and pulled == delta and path.read_bytes() == data
    folders = hub_api.fetch_models(pulled.refs)
    assert [f.name for f in folders] == [tref.commit, sref.commit]


def test_olah_not_found_kinds(olah_env, make_model):
    olah = olah_env
    c = olah.commit("olah-org/nf", _files(make_model("m")), "m")
    # olah answers 401 RepositoryNotFound for a missing repo, revision or file: with no token, that is not-found
    with pytest.raises(HubNotFoundError):
        hub_api.resolve_model("hf://olah-org/missing")
    with pytest.raises(HubNotFoundError):
        hub_api.resolve_model("hf://olah-org/nf@no-such-branch")
    with pytest.raises(HubNotFoundError, match="clone.pncd"):
        hub_api.pull(f"olah-org/nf@{c}")
    # model_info without a revision needs olah's meta_head.json (written by the fixture); pnc-pack never relies on it
    from huggingface_hub import HfApi

    assert HfApi(endpoint=olah.url, token=False).model_info("olah-org/nf").sha == c


def _real_lenet(folder, names, seed):
    import torch

    from pnc_pack.zoo import build_model
    from pnc_pack.zoo.config import ModelConfig
    from pnc_pack.zoo.pretrained import save_pretrained

    torch.manual_seed(seed)
    model = build_model("lenet5", {"num_classes": len(names), "in_channels": 1, "image_size": 28})
    cfg = ModelConfig(arch="lenet5", arch_args=model.arch_args, input_shape=list(model.input_shape),
                      classes=[{"label": i, "name": n} for i, n in enumerate(names)], training={"seed": seed})
    return save_pretrained(model, cfg, folder), model


def test_loader_gets_its_models_through_olah(olah_env, tmp_path, monkeypatch):
    """The loader (pnc_pack.api.specs) up to building the cloned network: delta from hf://, models fetched at
    the pinned commits and hash-checked, real LeNet-5 weights loaded through the registry and pin-checked."""
    import torch

    from pnc_pack.api import specs as apply_mod
    olah = olah_env
    tdir, tmodel = _real_lenet(tmp_path / "t", [str(i) for i in range(5)], 0)
    sdir, smodel = _real_lenet(tmp_path / "s", [str(i) for i in range(5, 10)], 1)
    olah.commit("olah-org/real-target", _files(tdir))
    olah.commit("olah-org/real-source", _files(sdir))
    tref = hub_api.resolve_model("hf://olah-org/real-target").ref
    sref = hub_api.resolve_model("hf://olah-org/real-source").ref
    delta = make_delta(tref, [sref])
    dc = olah.commit("olah-org/real-clone", {"clone.pncd": codec.dumps(delta)})
    monkeypatch.setenv("HF_HOME", str(tmp_path / "receiver"))  # a receiver with an empty cache
    d = apply_mod.open_delta(f"hf://olah-org/real-clone@{dc}")
    assert d == delta
    target_dir, source_dirs = apply_mod.locate_models(d)
    assert target_dir.name == tref.commit and [p.name for p in source_dirs] == [sref.commit]
    from pnc_pack.zoo.pretrained import load_pretrained

    target, _ = load_pretrained(target_dir, d.target)  # what apply.load_models does, pins re-checked
    source, _ = load_pretrained(source_dirs[0], d.modules[0].source)
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(target(x), tmodel.eval()(x)) and torch.equal(source(x), smodel.eval()(x))

