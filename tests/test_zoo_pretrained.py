"""Model folders: save/load round trip, deterministic bytes, pins checked before anything is read."""

import json

import pytest
import torch

from pnc_pack.errors import ArchitectureError, FormatError, ModelMismatchError, ModelNotFoundError
from pnc_pack.zoo import ModelConfig, build_model, load_pretrained, local_ref, save_pretrained
from pnc_pack.zoo import pretrained as pretrained_mod


def config_for(model, labels):
    return ModelConfig(arch=model.arch, arch_args=dict(model.arch_args),
                       classes=[{"label": c, "name": f"class {c}"} for c in labels],
                       input_shape=list(model.input_shape), training={"seed": 0})


def trained_resnet():
    torch.manual_seed(1)
    m = build_model("resnet18", {"num_classes": 3, "width": 4, "image_size": 8})
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(2):  # BN running stats and num_batches_tracked move away from their initial values
        loss = torch.nn.functional.cross_entropy(m(torch.rand(8, 3, 8, 8)), torch.randint(0, 3, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def resnet():
    return trained_resnet()


@pytest.fixture
def saved(tmp_path, resnet):
    m = resnet
    folder = tmp_path / "model"
    save_pretrained(m, config_for(m, [4, 0, 9]), folder)
    return m, folder


def test_round_trip_identical(saved):
    m, folder = saved
    loaded, cfg = load_pretrained(folder)
    assert cfg.labels == [4, 0, 9] and cfg.arch == "resnet18"
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    sd, sd2 = m.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys()
    assert "blocks.0.bn.num_batches_tracked" in sd2 and int(sd2["blocks.0.bn.num_batches_tracked"]) == 2
    for k in sd:
        assert sd[k].dtype == sd2[k].dtype and torch.equal(sd[k], sd2[k]), k
    x = torch.rand(4, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(m(x), loaded(x))


def test_deterministic_bytes(saved, tmp_path):
    m, folder = saved
    loaded, cfg = load_pretrained(folder)
    save_pretrained(loaded, cfg, tmp_path / "again")
    for name in ("model.safetensors", "config.json"):
        assert (folder / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def test_pinned_ref_checked_before_loading(saved, monkeypatch):
    m, folder = saved
    ref = local_ref(folder)
    assert ref.arch == "resnet18" and ref.arch_args == m.arch_args and set(ref.files) == {"config.json", "model.safetensors"}
    load_pretrained(folder, ref)  # the untouched folder loads
    p = folder / "model.safetensors"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    called = []
    monkeypatch.setattr(pretrained_mod, "build_model", lambda *a, **k: called.append("build"))
    monkeypatch.setattr(pretrained_mod, "parse", lambda *a, **k: called.append("parse"))
    monkeypatch.setattr(pretrained_mod.ModelConfig, "from_json", lambda *a, **k: called.append("config"))
    with pytest.raises(ModelMismatchError) as exc:
        load_pretrained(folder, ref)
    assert exc.value.file.endswith("model.safetensors") and exc.value.expected == ref.files["model.safetensors"].sha256
    assert called == []


def test_ref_of_another_arch_refused(saved):
    m, folder = saved
    ref = local_ref(folder)
    other = type(ref)(arch="resnet50", arch_args=ref.arch_args, files=ref.files, path=ref.path)
    with pytest.raises(ModelMismatchError, match="resnet50"):
        load_pretrained(folder, other)


def test_missing_file(saved):
    m, folder = saved
    ref = local_ref(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError):
        load_pretrained(folder, ref)
    with pytest.raises(ModelNotFoundError):
        load_pretrained(folder)


def _edit_config(folder, fn):
    d = json.loads((folder / "config.json").read_text())
    fn(d)
    (folder / "config.json").write_text(json.dumps(d))


def test_shape_mismatch_names_tensor(saved):
    m, folder = saved
    _edit_config(folder, lambda d: d["arch_args"].update(width=8))
    with pytest.raises(ArchitectureError, match=r"tensor 'blocks\.0\.bn\.bias' has shape \[4\], the architecture needs \[8\]"):
        load_pretrained(folder)


def test_missing_and_unexpected_tensors(saved):
    m, folder = saved
    _edit_config(folder, lambda d: d.update(arch="resnet50"))
    with pytest.raises(ArchitectureError, match="tensor"):
        load_pretrained(folder)


def test_unknown_arch_in_config(saved):
    m, folder = saved
    _edit_config(folder, lambda d: d.update(arch="evil-net"))
    with pytest.raises(ArchitectureError, match="not registered"):
        load_pretrained(folder)


def test_dtype_mismatch(tmp_path):
    m = build_model("lenet5", {"num_classes": 2})
    save_pretrained(m, config_for(m, [0, 1]), tmp_path)
    from safetensors.torch import load, save

    t = load((tmp_path / "model.safetensors").read_bytes())
    t["head.bias"] = t["head.bias"].double()
    (tmp_path / "model.safetensors").write_bytes(save(t))
    with pytest.raises(ArchitectureError, match="'head.bias' has dtype"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize("payload", [b"", b"\x00" * 8, b"garbage" * 10, (10**9).to_bytes(8, "little") + b"{}"])
def test_not_safetensors(tmp_path, payload):
    m = build_model("lenet5", {"num_classes": 2})
    save_pretrained(m, config_for(m, [0, 1]), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(payload)
    with pytest.raises(FormatError, match="safetensors"):
        load_pretrained(tmp_path)


def test_save_refuses_inconsistent_config(tmp_path):
    m = build_model("lenet5", {"num_classes": 2})
    cfg = config_for(m, [0, 1])
    cfg.arch_args = dict(cfg.arch_args, image_size=32)
    with pytest.raises(ArchitectureError):
        save_pretrained(m, cfg, tmp_path)
    assert not (tmp_path / "model.safetensors").exists()
