"""transformers model folders through the Hub: publish uploads every file of the layout, hf:// resolves to a ref
pinning each of them (config, preprocessor config, weights or index and shards), and the folder loads."""

from __future__ import annotations

import importlib.util

import pytest

import pnc_pack.hub as hub_api
from pnc_pack.refs import sha256_file
from tests.hf_models import write_hf_folder

# not imported at collection: importing transformers imports huggingface_hub, whose endpoint constants would then
# be read before the fixture points HF_ENDPOINT at the loopback Hub
pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs pnc-pack[hf]")

FILES = {"config.json", "preprocessor_config.json", "model.safetensors"}


def test_publish_resolve_fetch_load_transformers_folder(hf_env, tmp_path):
    import torch

    from pnc_pack.zoo.pretrained import load_pretrained

    folder = write_hf_folder(tmp_path / "tiny-convnext", "convnext", labels=[5, 6, 7, 8, 9], seed=3)
    commit = hub_api.publish_model(folder, "org/tiny-convnext")
    files = hf_env.hub.repos["org/tiny-convnext"].commits[commit].files
    assert FILES <= set(files)
    resolved = hub_api.resolve_model("hf://org/tiny-convnext@main")
    ref = resolved.ref
    assert ref.commit == commit and ref.arch == "hf-convnext" and set(ref.files) == FILES
    for name in FILES:
        assert ref.files[name] == sha256_file(folder / name)
    model, config = load_pretrained(hub_api.fetch_model(ref), ref)
    assert config.labels == [5, 6, 7, 8, 9]
    local, _ = load_pretrained(folder)
    x = torch.rand(2, *model.input_shape)
    with torch.no_grad():
        assert torch.equal(model(x), local(x))
