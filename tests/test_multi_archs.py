"""Heterogeneous pairs through the builder (SUPP §3.2): slim ResNet-18 -> plain CNN, LeNet-5 -> plain CNN,
MobileNetV2 -> slim ResNet-18. Every target position is searched, R_s = ceil(R_t · L_s / L_t), the adapter bridges
channels and resolution, the delta applies through the file format with the target's logits exact; and two
heterogeneous modules compose into one clone."""

from __future__ import annotations

import math

import pytest
import torch

from pnc_pack.api.model import apply
from pnc_pack.builder import build_clone
from pnc_pack.data import fit_to_shape
from pnc_pack.format import codec
from pnc_pack.format.compose import compose
from pnc_pack.zoo.pretrained import load_pretrained
from tests.multi_fixtures import TINY

# 16x16 inputs (the digits are 8x8): LeNet-5 takes 28x28, so the adapters bridge resolutions as well as channels
ARCHS = {"plaincnn": {"width": 4, "image_size": 16}, "resnet18": {"width": 4, "image_size": 16},
         "mobilenetv2": {"width_mult": 0.25, "image_size": 16}}
# every assertion here is about shapes, positions and exact target logits, none about how well the clone works: the
# shortest schedule that still runs every phase at every position (the MobileNetV2 -> ResNet-18 build: 18.7 -> 5.7 s)
FAST = dict(TINY, batch_size=32, steps=3, retune_steps=1, masks_per_anchor=2, pool_size=120, data_fraction=0.15)
PAIRS = [("resnet18", "plaincnn"), ("lenet5", "plaincnn"), ("mobilenetv2", "resnet18")]  # (source, target)


@pytest.fixture(scope="module")
def models(tmp_path_factory, digits, zoo):
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    root = tmp_path_factory.mktemp("hetero")
    out = {("lenet5", "source"): zoo["source"]}
    for arch, role, classes in (("plaincnn", "target", [0, 1, 2, 3, 4]), ("resnet18", "target", [0, 1, 2, 3, 4]),
                                ("resnet18", "source", [5, 6, 7, 8, 9]), ("mobilenetv2", "source", [5, 6, 7, 8, 9])):
        # one epoch: nothing below depends on how well they are trained (MobileNetV2: 5.5 -> 3.1 s)
        model, config = train_model(arch, ARCHS[arch], digits, classes, epochs=1, seed=0, data_fraction=0.5)
        out[(arch, role)] = save_pretrained(model, config, root / f"{arch}-{role}")
    return out


@pytest.fixture(scope="module")
def deltas(models, digits):
    return {(s, t): build_clone(models[(t, "target")], models[(s, "source")], digits, [5, 6], seed=0, **FAST)
            for s, t in PAIRS}


def _check_exact(delta, target_dir, digits, n_new):
    cloned = apply(codec.loads(codec.dumps(delta)))
    target, _ = load_pretrained(target_dir)
    X = fit_to_shape(digits.test[0][:64], target.input_shape)
    with torch.no_grad():
        out, want = cloned(X), target(X)
    assert out.shape == (64, 5 + n_new)
    assert torch.equal(out[:, :5], want)
    return cloned


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
def test_heterogeneous_build_applies(pair, models, deltas, digits):
    s, t = pair
    delta = deltas[pair]
    m = delta.modules[0]
    target, _ = load_pretrained(models[(t, "target")])
    source, _ = load_pretrained(models[(s, "source")])
    L_t, L_s = target.num_blocks, source.num_blocks
    assert delta.target_blocks == L_t and m.source_blocks == L_s
    assert sorted(delta.metrics["loss_per_R"], key=int) == [str(r) for r in range(L_t)]  # every position searched
    assert m.source_position == min(L_s - 1, math.ceil(m.target_position * L_s / L_t))
    assert tuple(m.adapter_args["out_shape"]) == (tuple(source.input_shape) if m.source_position == 0
                                                  else tuple(source.block_shapes()[m.source_position - 1]))
    _check_exact(delta, models[(t, "target")], digits, 2)


def test_two_heterogeneous_sources_in_one_clone(models, deltas, digits):
    from pnc_pack.builder import build_clone

    lenet = build_clone(models[("plaincnn", "target")], models[("lenet5", "source")], digits, [8, 9], seed=0, **FAST)
    both = compose([deltas[("resnet18", "plaincnn")], lenet])
    assert [m.source.arch for m in both.modules] == ["resnet18", "lenet5"]
    cloned = _check_exact(both, models[("plaincnn", "target")], digits, 4)
    assert cloned.output_labels == [0, 1, 2, 3, 4, 5, 6, 8, 9]
