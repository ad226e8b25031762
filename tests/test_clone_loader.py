"""The loader: apply, exactness, pins checked before loading, signature policy, export, repair."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch

import pnc_pack
from pnc_pack.api.model import apply
from pnc_pack.clone.convert import state_digest, to_raw
from pnc_pack.clone.evaluate import evaluate_delta_model
from pnc_pack.clone.export import export_cloned, load_cloned
from pnc_pack.errors import ArchitectureError, ModelMismatchError, ModelNotFoundError, SignatureError
from pnc_pack.format import codec, signing
from pnc_pack.zoo.pretrained import load_pretrained


@pytest.fixture()
def delta_file(built, tmp_path):
    p = tmp_path / "clone.pncd"
    codec.save(built, p)
    return p


def _x(n=64):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(3))


def test_apply_rebuilds_the_clone_and_old_logits_are_the_targets(delta_file, zoo):
    cloned = apply(delta_file)
    target, _ = load_pretrained(zoo["target"])
    x = _x()
    with torch.no_grad():
        out = cloned(x)
        assert out.shape == (64, 7)
        assert torch.equal(out[:, :5], target(x))  # the unmodified target path, bit for bit
    assert cloned.output_labels == [0, 1, 2, 3, 4, 5, 6]


def test_apply_never_writes_pretrained_weights_and_detach_is_exact(delta_file, digits):
    cloned = apply(delta_file)
    before = [state_digest(m) for m in (cloned.target, *cloned.sources)]
    evaluate_delta_model(cloned, digits)
    cloned.train()  # even in training mode the pretrained parts stay in eval (BatchNorm statistics untouched)
    cloned(_x(8)).sum().backward()
    assert [state_digest(m) for m in (cloned.target, *cloned.sources)] == before
    restored = cloned.detach()
    pinned, _ = load_pretrained(cloned.delta.target.path)
    assert state_digest(restored) == state_digest(pinned)


def test_a_flipped_byte_in_a_model_file_is_refused_before_loading(built, zoo, tmp_path, monkeypatch):
    copy = tmp_path / "source"
    shutil.copytree(zoo["source"], copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.safetensors").write_bytes(bytes(data))
    import pnc_pack.zoo.pretrained as pretrained

    real = pretrained.parse
    parsed = []
    monkeypatch.setattr(pretrained, "parse", lambda data, where: parsed.append(where) or real(data, where))
    with pytest.raises(ModelMismatchError, match="model.safetensors") as exc:
        apply(built, source=copy)
    assert exc.value.expected != exc.value.actual and exc.value.file == str(copy / "model.safetensors")
    assert parsed == []  # every file of both models is checked before any is parsed: nothing was


def test_models_dir_and_missing_models(built, zoo, tmp_path):
    (tmp_path / "models").mkdir()
    for name in ("target", "source"):
        shutil.copytree(zoo[name], tmp_path / "models" / name)
    moved = replace(built, target=replace(built.target, path=str(tmp_path / "gone" / "target")))
    with pytest.raises(ModelNotFoundError, match="not found"):
        apply(moved)
    assert apply(moved, models_dir=tmp_path / "models") is not None


def test_signature_policy(delta_file, tmp_path):
    priv, pub, _ = signing.keygen(tmp_path / "k")
    other_priv, other_pub, _ = signing.keygen(tmp_path / "other")
    with pytest.raises(SignatureError):
        apply(delta_file, require_signature=True)
    signing.sign_file(delta_file, signing.load_private_key(priv))
    apply(delta_file, require_signature=True, trusted_keys=[signing.load_public_key(pub)])
    with pytest.raises(SignatureError):
        apply(delta_file, trusted_keys=[signing.load_public_key(other_pub)])


def test_shapes_that_do_not_fit_are_refused(built):
    m = built.modules[0]
    w = m.adapter["proj.weight"]
    bad = replace(m, adapter={**m.adapter, "proj.weight": to_raw(torch.zeros(w.shape[0] + 1, *w.shape[1:]))})
    with pytest.raises(ArchitectureError, match="proj.weight"):
        apply(replace(built, modules=(bad,)))


def test_export_round_trip_gives_identical_logits(delta_file, tmp_path, zoo):
    cloned = apply(delta_file)
    size = export_cloned(cloned, tmp_path / "offline")
    assert size > (zoo["target"] / "model.safetensors").stat().st_size
    shutil.rmtree(zoo["target"].parent / "unused", ignore_errors=True)
    again = pnc_pack.load_cloned(tmp_path / "offline")
    x = _x()
    with torch.no_grad():
        assert torch.equal(again(x), cloned(x))
    assert again.output_labels == cloned.output_labels


def test_a_damaged_offline_file_is_refused(delta_file, tmp_path):
    from pnc_pack.errors import FormatError

    export_cloned(apply(delta_file), tmp_path / "offline")
    f = tmp_path / "offline" / "model.safetensors"
    data = f.read_bytes()
    for bad in (data[:-1], data + b"\0", b"\xff" * 8 + data[8:]):
        f.write_bytes(bad)
        with pytest.raises(FormatError, match="safetensors"):
            load_cloned(tmp_path / "offline")


@pytest.mark.parametrize("damage", ["noise", "2-bit"])
def test_repair_brings_a_damaged_clone_back(built, digits, damage):
    from pnc_pack.clone.damage import perturb, quantize
    from pnc_pack.clone.repair import repair, repaired_delta

    good = evaluate_delta_model(apply(built), digits)["avg"]
    broken = perturb(built, scale=2.0) if damage == "noise" else quantize(built, bits=2)
    assert broken.refs == built.refs and broken.modules[0].masks == built.modules[0].masks
    damaged = apply(broken)
    hurt = evaluate_delta_model(damaged, digits)["avg"]
    assert hurt < good - (0.05 if damage == "noise" else 0.01)  # it lost accuracy (2-bit: less, on this tiny clone)
    pretrained = [state_digest(m) for m in (damaged.target, *damaged.sources)]
    result = repair(damaged, digits, epochs=8, samples=300)
    assert [state_digest(m) for m in (damaged.target, *damaged.sources)] == pretrained
    assert result.before["avg"] == pytest.approx(hurt)
    assert result.after["avg"] >= good - 0.01
    fixed = repaired_delta(damaged, result, "digits")
    assert fixed.refs == built.refs and fixed.modules[0].masks == built.modules[0].masks
    assert fixed.provenance["repair"]["samples"] == result.samples
    assert evaluate_delta_model(apply(codec.loads(codec.dumps(fixed))), digits)["avg"] == pytest.approx(result.after["avg"])
