"""Exactness for every zoo architecture: the clone's old-class logits are the target's, and detach gives the target
back bit for bit. Random (untrained) slim models and a clone module at every insertion position."""

from __future__ import annotations

import pytest
import torch

from pnc_pack.builder.api import fresh_delta
from pnc_pack.clone.convert import state_digest
from pnc_pack.clone.model import ClonedNetwork
from pnc_pack.format import codec
from pnc_pack.format.delta import CloneDelta
from pnc_pack.refs import FileDigest, ModelRef
from pnc_pack.zoo.registry import build_model

SLIM = {
    "lenet5": {"num_classes": 4, "in_channels": 1, "image_size": 28},
    "plaincnn": {"num_classes": 4, "width": 8},
    "resnet18": {"num_classes": 4, "width": 4},
    "resnet50": {"num_classes": 4, "width": 4},
    "mobilenetv2": {"num_classes": 4, "width_mult": 0.25},
    "shufflenetv2": {"num_classes": 4, "width_mult": 0.5},
}
PAIRS = [(a, a) for a in SLIM] + [("resnet18", "plaincnn"), ("lenet5", "plaincnn"), ("mobilenetv2", "resnet18")]


def _ref(arch, args):
    return ModelRef(arch, args, {"model.safetensors": FileDigest("0" * 64, 1)}, path=f"/zoo/{arch}")


def _delta(target, source, R) -> CloneDelta:
    return fresh_delta(target, source, R, _ref(target.arch, target.arch_args), _ref(source.arch, source.arch_args),
                       clone_idx=(1, 2))


@pytest.mark.parametrize("t_arch,s_arch", PAIRS)
def test_old_logits_exact_and_detach_bit_identical(t_arch, s_arch):
    torch.manual_seed(0)
    target = build_model(t_arch, SLIM[t_arch]).eval().requires_grad_(False)
    source = build_model(s_arch, {**SLIM[s_arch], **({"in_channels": 1} if t_arch == "lenet5" else {})}).eval()
    source.requires_grad_(False)
    before = state_digest(target), state_digest(source)
    x = torch.rand(3, *target.input_shape)
    with torch.no_grad():
        want = target(x)
    for R in range(target.num_blocks):
        delta = codec.loads(codec.dumps(_delta(target, source, R)))  # through the file format, as a receiver
        cloned = ClonedNetwork.from_delta(delta, target, [source])
        with torch.no_grad():
            out = cloned(x)
        assert out.shape == (3, target.num_classes + 2)
        assert torch.equal(out[:, :target.num_classes], want)
        assert cloned.detach() is target
    assert (state_digest(target), state_digest(source)) == before


def _trained_like(arch, args, seed):
    """A slim random model whose BatchNorm statistics have moved (one train-mode pass), frozen in eval."""
    torch.manual_seed(seed)
    m = build_model(arch, args)
    with torch.no_grad():
        m.train()(torch.rand(4, *m.input_shape))
    return m.eval().requires_grad_(False)


@pytest.mark.parametrize("arch", list(SLIM))
def test_apply_through_files_is_exact_for_every_arch(arch, tmp_path):
    """The real loader (files on disk, pins checked, tensors viewed in place): pretrained state unchanged by apply
    and by use, the target's logits untouched, and detach gives back the saved target bit for bit."""
    from pnc_pack.api.model import apply
    from pnc_pack.zoo.config import ModelConfig
    from pnc_pack.zoo.pretrained import local_ref, save_pretrained

    models, refs = {}, {}
    for i, name in enumerate(("target", "source")):
        m = _trained_like(arch, SLIM[arch], i)
        cfg = ModelConfig(arch, dict(m.arch_args), [{"label": j + 10 * i, "name": f"c{j}"} for j in range(4)],
                          list(m.input_shape))
        save_pretrained(m, cfg, tmp_path / name)
        models[name], refs[name] = m, local_ref(tmp_path / name)
    saved = {n: state_digest(m) for n, m in models.items()}
    x = torch.rand(3, *models["target"].input_shape)
    with torch.no_grad():
        want = models["target"](x)
    path = tmp_path / "clone.pncd"
    R = models["target"].num_blocks - 1
    codec.save(fresh_delta(models["target"], models["source"], R, refs["target"], refs["source"], (1, 2)), path)
    cloned = apply(path)
    assert state_digest(cloned.target) == saved["target"] and state_digest(cloned.sources[0]) == saved["source"]
    assert not any(p.requires_grad for m in (cloned.target, *cloned.sources) for p in m.parameters())
    with torch.no_grad():
        assert torch.equal(cloned(x)[:, :4], want)
    cloned.train()
    cloned(x).sum().backward()  # even a training step's forward/backward leaves the pretrained state alone
    restored = cloned.detach()
    assert state_digest(restored) == saved["target"] and state_digest(cloned.sources[0]) == saved["source"]
    with torch.no_grad():
        assert torch.equal(restored(x), want)
