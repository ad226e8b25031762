"""Exactness for every zoo architecture: the clone's old-class logits are the target's, and detach gives the target
back bit for bit. Random (untrained) slim models and a clone module at every insertion position."""

from __future__ import annotations

import pytest
import torch

from pnc_pack.build.search import Problem, fresh_branch
from pnc_pack.build.api import to_module
from pnc_pack.build.config import BuildConfig
from pnc_pack.clone.convert import state_digest
from pnc_pack.clone.model import ClonedModel
from pnc_pack.format import codec
from pnc_pack.format.delta import CloneDelta, LabelEntry
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
    cfg = BuildConfig()
    empty = torch.empty(0)
    p = Problem(target, source, [1, 2], target.num_classes, *([empty] * 10))
    br = fresh_branch(p, R, cfg)
    br.binary = {n: (torch.arange(len(s)) % 2 == 0).float() for n, s in br.scores.items()}
    with torch.no_grad():
        br.head.weight.normal_()
    module, head = to_module(p, br, _ref(source.arch, source.arch_args), p.clone_idx)
    labels = tuple(LabelEntry("target", i, str(i)) for i in range(target.num_classes))
    labels += (LabelEntry("source:0", 1, "a"), LabelEntry("source:0", 2, "b"))
    return CloneDelta(_ref(target.arch, target.arch_args), target.num_blocks, (module,), "target-head-linear",
                      {"num_outputs": len(labels), "num_old": target.num_classes},
                      {f"new.0.{k}": v for k, v in head.items()}, labels)


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
        cloned = ClonedModel.from_delta(delta, target, [source])
        with torch.no_grad():
            out = cloned(x)
        assert out.shape == (3, target.num_classes + 2)
        assert torch.equal(out[:, :target.num_classes], want)
        assert cloned.detach() is target
    assert (state_digest(target), state_digest(source)) == before
