"""The transformers image classifiers of the zoo (hf-*): loaded from a real transformers folder through the
project's own checked safetensors reader, block split composing to the model's own logits bit for bit, masks equal
to pruning what consumes them, and a hostile config corpus refused before anything is imported."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from pnc_pack.clone.parts import masked
from pnc_pack.zoo.pretrained import load_pretrained, local_ref
from pnc_pack.zoo.registry import _builtin_names
from tests.hf_models import TINY, write_hf_folder

# transformers is not imported at collection: it imports huggingface_hub, whose endpoint constants would be read
# before tests/hub's fixtures point HF_ENDPOINT at a loopback Hub
pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs pnc-pack[hf]")

ARCH = {"resnet": "hf-resnet", "regnet": "hf-regnet", "convnext": "hf-convnext", "convnextv2": "hf-convnextv2",
        "mobilenet_v2": "hf-mobilenet-v2", "efficientnet": "hf-efficientnet"}


def test_every_hf_builtin_tested():
    assert sorted(ARCH.values()) == sorted(n for n in _builtin_names() if n.startswith("hf-"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from tests.hf_models import make_hf_model

    root = tmp_path_factory.mktemp("hf")
    out = {}
    for mt in TINY:
        model = make_hf_model(mt, num_labels=5, seed=1)
        out[mt] = (write_hf_folder(root / mt, mt, model=model), model)
    return out


@pytest.mark.parametrize("mt", sorted(TINY))
def test_loads_and_composes_bit_for_bit(folders, mt):
    folder, original = folders[mt]
    ref = local_ref(folder)
    assert set(ref.files) == {"config.json", "model.safetensors", "preprocessor_config.json"}
    model, config = load_pretrained(folder, ref)
    assert model.arch == config.arch == ARCH[mt] and not model.training
    assert model.num_blocks == 5 and config.class_names == [f"class-{i}" for i in range(5)]
    assert all(not p.requires_grad for p in model.parameters())
    torch.manual_seed(0)
    x = torch.rand(3, *model.input_shape)
    with torch.no_grad():
        # the transformers class's own forward over the same loaded tensors: equal bit for bit
        own = model.forward_hf(model.preprocess(x))
        full = model(x)
        assert torch.equal(full, own)
        # the model that wrote the folder (its own tensors: oneDNN may pick other kernels for other alignments)
        assert torch.allclose(original(pixel_values=model.preprocess(x)).logits, full, rtol=1e-5, atol=1e-6)
        h = x
        for b in range(model.num_blocks):
            h = model.forward_blocks(h, b, b + 1)
            assert tuple(h.shape[1:]) == model.block_shapes()[b]
        assert torch.equal(model.head(model.head_input(h)), own)
        assert model.features(x).shape == (3, model.feature_dim)


def _consumers(model, name):
    """The weights (tensor, input-channel dim) that consume mask point ``name``'s output: zeroing their input
    channels is pruning those filters."""
    parent = model.get_submodule(name.rsplit(".", 1)[0])
    if name.endswith(".act") or name.endswith(".grn"):  # ConvNeXt(V2): pwconv2 (Linear, channels-last)
        return [(parent.pwconv2.weight, 1)]
    if name.endswith("depthwise_act"):  # EfficientNet: squeeze-excite reduce and the projection
        block = model.get_submodule(name.rsplit(".", 2)[0])
        return [(block.squeeze_excite.reduce.weight, 1), (block.projection.project_conv.weight, 1)]
    if name.endswith("conv_3x3.activation"):  # MobileNetV2: the depthwise unit feeds reduce_1x1
        owner = model.get_submodule(name.rsplit(".", 2)[0])
        return [(owner.reduce_1x1.convolution.weight, 1)]
    unit = parent  # a conv unit (ResNet/RegNet/MobileNetV2) inside its layer: the next unit(s) consume it
    layer_name, idx, _ = name.rsplit(".", 2)  # "<layer>.<unit index>.activation"
    seq = model.get_submodule(layer_name)
    out, nxt = [], list(seq)[int(idx) + 1:]
    for m in nxt:
        if hasattr(m, "attention"):  # RegNet's squeeze-excite
            out.append((m.attention[0].weight, 1))
            continue
        if m.convolution.groups != 1:  # a grouped conv's input channels are not weight[:, c]: not tested here
            raise ValueError("grouped consumer")
        out.append((m.convolution.weight, 1))
        break
    assert unit is not None
    return out


def _inner_points(model):
    pts = []
    for name, n in model.mask_points():
        if name.endswith((".act", ".grn", "depthwise_act", "conv_3x3.activation")) or (".layer." in name and name.endswith("activation")
                                                                  and not name.endswith("layers.0.activation")):
            pts.append((name, n))
    keep = []
    for name, n in pts:
        try:
            if _consumers(model, name):
                keep.append((name, n))
        except (AttributeError, ValueError, IndexError, TypeError):
            continue
    return keep


@pytest.mark.parametrize("mt", sorted(TINY))
def test_mask_equals_pruning(folders, mt):
    model, _ = load_pretrained(folders[mt][0])
    points = _inner_points(model)
    assert points, mt
    torch.manual_seed(2)
    x = torch.rand(2, *model.input_shape)
    block_of = {name: b for b in range(model.num_blocks) for name, _ in model.mask_points(b, b + 1)}
    for name, n in points[:3]:
        upto = block_of[name] + 1  # compared where the masked filters still show (a random tiny model's logits
        mask = (torch.rand(n) > 0.5).float()  # may hardly depend on its input)
        dim = getattr(model.get_submodule(name), "pnc_mask_dim", 1)
        assert dim == (-1 if mt.startswith("convnext") else 1)
        with torch.no_grad(), masked(model, {name: mask}):
            got = model.forward_blocks(x, 0, upto)
        saved = []
        with torch.no_grad():
            for w, d in _consumers(model, name):
                saved.append((w, w.clone()))
                w.mul_(mask.view([-1 if i == d else 1 for i in range(w.dim())]))
            want = model.forward_blocks(x, 0, upto)
            for w, old in saved:
                w.copy_(old)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (mt, name)
        assert not torch.equal(got, model.forward_blocks(x, 0, upto)) or mask.all()


def _corpus():
    ok = {"model_type": "resnet", "num_labels": 2, "hidden_sizes": [8, 16, 16, 32], "depths": [1, 1, 1, 1],
          "embedding_size": 8}
    pp = {"size": {"height": 32, "width": 32}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    cases = [("auto_map", {**ok, "auto_map": {"AutoModel": "evil.Model"}}, pp, "ArchitectureError"),
             ("quantization", {**ok, "quantization_config": {"quant_method": "bitsandbytes"}}, pp, "ArchitectureError"),
             ("attn", {**ok, "attn_implementation": "flash_attention_2"}, pp, "ArchitectureError"),
             ("attn_", {**ok, "_attn_implementation": "eager"}, pp, "ArchitectureError"),
             ("pipelines", {**ok, "custom_pipelines": {"x": {"impl": "evil.P"}}}, pp, "ArchitectureError"),
             ("unknown-type", {**ok, "model_type": "bert"}, pp, "ArchitectureError"),
             ("module-type", {**ok, "model_type": "os.system"}, pp, "ArchitectureError"),
             ("module-type2", {**ok, "model_type": "transformers.models.resnet"}, pp, "ArchitectureError"),
             ("path-type", {**ok, "model_type": "../../etc/passwd"}, pp, "ArchitectureError"),
             ("type-list", {**ok, "model_type": ["resnet"]}, pp, "ArchitectureError"),
             ("path-act", {**ok, "hidden_act": "../../evil.py"}, pp, "ArchitectureError"),
             ("module-act", {**ok, "hidden_act": "torch.nn.ReLU"}, pp, "ArchitectureError"),
             ("huge-width", {**ok, "hidden_sizes": [8, 16, 16, 10 ** 9]}, pp, "ArchitectureError"),
             ("long-list", {**ok, "depths": [1] * 1000}, pp, "ArchitectureError"),
             ("bool-int", {**ok, "embedding_size": True}, pp, "ArchitectureError"),
             ("oversized-string", {**ok, "_name_or_path": "x" * 100_000}, pp, "FormatError"),
             ("bad-archs", {**ok, "architectures": ["os:system"]}, pp, "ArchitectureError"),
             ("label-control", {**ok, "id2label": {"0": "a\nb", "1": "c"}}, pp, "ArchitectureError"),
             ("num-labels-mismatch", {**ok, "id2label": {"0": "a"}, "num_labels": 3}, pp, "ArchitectureError"),
             ("channels", {**ok, "num_channels": 1}, pp, "ArchitectureError"),
             ("pp-auto-map", ok, {**pp, "auto_map": {"AutoImageProcessor": "evil.P"}}, "ArchitectureError"),
             ("pp-type", ok, {**pp, "image_processor_type": "evil.Processor"}, "ArchitectureError"),
             ("pp-pipelines", ok, {**pp, "custom_pipelines": {}}, "ArchitectureError"),
             ("pp-path-size", ok, {**pp, "size": "../../etc"}, "ArchitectureError"),
             ("pp-huge-size", ok, {**pp, "size": {"height": 10 ** 6, "width": 10 ** 6}}, "ArchitectureError"),
             ("pp-std-zero", ok, {**pp, "image_std": [0, 1, 1]}, "ArchitectureError"),
             ("pp-mean-str", ok, {**pp, "image_mean": "/etc/passwd"}, "ArchitectureError"),
             ("pp-oversized", ok, {**pp, "processor_class": "y" * 100_000}, "FormatError"),
             ("pp-missing", ok, None, "ModelNotFoundError"),
             ("remote-code", {**ok, "trust_remote_code": True}, pp, "ArchitectureError"),
             ("pp-resample-path", ok, {**pp, "resample": "../../evil"}, "ArchitectureError"),
             ("pp-include-top-str", ok, {**pp, "include_top": "os.system"}, "ArchitectureError"),
             ("pp-type-module", ok, {**pp, "feature_extractor_type": "transformers.ConvNextImageProcessor"},
              "ArchitectureError"),
             ("pp-pil-backend", ok, {**pp, "image_processor_type": "ConvNextImageProcessorPil"}, "accepted")]
    return cases


def test_hostile_configs_refused_before_any_import(tmp_path):
    """Every hostile config.json / preprocessor_config.json is a typed error from read_config and from
    load_pretrained, in a fresh process in which neither torch nor transformers has been imported by then."""
    cases = _corpus()
    for name, cfg, pp, _ in cases:
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps(cfg))
        if pp is not None:
            (d / "preprocessor_config.json").write_text(json.dumps(pp))
        (d / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (tmp_path / "dup").mkdir()
    (tmp_path / "dup" / "config.json").write_text('{"model_type": "resnet", "model_type": "bert"}')
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "config.json").write_bytes(b'{"model_type": "resnet", "x": "' + b"a" * (2 << 20) + b'"}')
    (tmp_path / "nan").mkdir()
    (tmp_path / "nan" / "config.json").write_text('{"model_type": "resnet", "layer_norm_eps": NaN}')
    cases += [("dup", None, None, "FormatError"), ("big", None, None, "FormatError"),
              ("nan", None, None, "FormatError")]
    code = f"""
import json, sys
from pathlib import Path
from pnc_pack.errors import PncError
from pnc_pack.zoo.config import read_config
out = {{}}
for name in {[c[0] for c in cases]!r}:
    try:
        read_config(Path({str(tmp_path)!r}) / name)
        out[name] = "accepted"
    except PncError as exc:
        out[name] = type(exc).__name__
out["_imported"] = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(json.dumps(out))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got.pop("_imported") == []
    assert got == {name: want for name, _, _, want in cases}
    # and the loader refuses them the same way (its first step reads the config)
    from pnc_pack.errors import PncError

    for name, _, _, want in cases[:8]:
        with pytest.raises(PncError) as exc:
            load_pretrained(tmp_path / name)
        assert type(exc.value).__name__ == want


def test_sharded_folder_and_pins(tmp_path, folders):
    """An index + shards folder loads the same model; every shard is pinned; a changed shard is refused."""
    from safetensors.torch import save_file

    from pnc_pack.errors import ModelMismatchError
    from pnc_pack.zoo.pretrained import read_model_files

    src, original = folders["resnet"]
    sd = {k: v.contiguous() for k, v in original.state_dict().items()}
    names = sorted(sd)
    half = len(names) // 2
    d = tmp_path / "sharded"
    d.mkdir()
    for f in ("config.json", "preprocessor_config.json"):
        (d / f).write_bytes((src / f).read_bytes())
    wm = {}
    for i, part in enumerate((names[:half], names[half:])):
        shard = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: sd[k] for k in part}, str(d / shard), metadata={"format": "pt"})
        wm.update({k: shard for k in part})
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    ref = local_ref(d)
    assert set(ref.files) == {"config.json", "preprocessor_config.json", "model.safetensors.index.json",
                              "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
    a, _ = load_pretrained(d, ref)
    b, _ = load_pretrained(src)
    x = torch.rand(2, *a.input_shape)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    raw = bytearray((d / "model-00002-of-00002.safetensors").read_bytes())
    raw[-1] ^= 1
    (d / "model-00002-of-00002.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelMismatchError):
        read_model_files(d, ref)
