"""Every architecture of the zoo: block split, features/head, mask points, masking == pruning."""

import pytest
import torch

from pnc_pack.zoo import build_model, list_archs
from pnc_pack.zoo.registry import _builtin_names

TINY = {
    "lenet5": {"num_classes": 5},
    "plaincnn": {"num_classes": 4, "width": 4, "image_size": 8},
    "resnet18": {"num_classes": 3, "width": 4, "image_size": 8},
    "resnet50": {"num_classes": 3, "width": 4, "image_size": 8},
    "mobilenetv2": {"num_classes": 3, "width_mult": 0.25, "image_size": 8},
    "shufflenetv2": {"num_classes": 3, "width_mult": 0.25, "image_size": 8},
}
EXPECTED_L = {"lenet5": 3, "plaincnn": 3, "resnet18": 5, "resnet50": 5, "mobilenetv2": 5, "shufflenetv2": 5}


def make(arch):
    torch.manual_seed(0)
    m = build_model(arch, TINY[arch])
    # perturb BN statistics so eval-mode BN is not the identity (a stronger test of composition)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
    return m.eval()


def test_builtins_all_tested():
    assert sorted(TINY) == sorted(n for n in _builtin_names() if not n.startswith("hf-"))  # hf-*: test_zoo_hf
    assert set(_builtin_names()) <= set(list_archs())


@pytest.mark.parametrize("arch", sorted(TINY))
def test_split_composes(arch):
    m = make(arch)
    L = m.num_blocks
    assert L == EXPECTED_L[arch] and len(m.blocks) == L
    x = torch.rand(2, *m.input_shape)
    with torch.no_grad():
        full = m(x)
        assert full.shape == (2, TINY[arch]["num_classes"])
        h_L = m.forward_blocks(x, 0, L)
        assert torch.equal(m.features(x), m.head_input(h_L))
        assert torch.equal(full, m.head(m.head_input(h_L)))
        assert m.features(x).shape == (2, m.feature_dim)
        shapes = m.block_shapes()
        for a in range(L + 1):
            h_a = m.forward_blocks(x, 0, a)
            assert a == 0 or tuple(h_a.shape[1:]) == shapes[a - 1]
            for b in range(a, L + 1):
                composed = m.forward_blocks(m.forward_blocks(x, 0, a), a, b)
                assert torch.allclose(composed, m.forward_blocks(x, 0, b), atol=1e-6)
            assert torch.allclose(m.head(m.head_input(m.forward_blocks(h_a, a, L))), full, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(TINY))
def test_bad_span_refused(arch):
    from pnc_pack.errors import ArchitectureError

    m = make(arch)
    with pytest.raises(ArchitectureError):
        m.forward_blocks(torch.rand(1, *m.input_shape), 2, 1)
    with pytest.raises(ArchitectureError):
        m.mask_points(0, m.num_blocks + 1)


@pytest.mark.parametrize("arch", sorted(TINY))
def test_mask_points_resolve_and_count(arch):
    m = make(arch)
    L = m.num_blocks
    points = m.mask_points(0, L)
    assert points and len({n for n, _ in points}) == len(points)
    assert sum((m.mask_points(i, i + 1) for i in range(L)), []) == points
    for i in range(L):
        assert all(n.startswith(f"blocks.{i}.") for n, _ in m.mask_points(i, i + 1))
    calls = {}

    def hook(name, n):
        def f(mod, inp, out):
            assert out.shape[1] == n, (name, out.shape, n)
            calls[name] = calls.get(name, 0) + 1
        return f

    handles = [m.get_submodule(n).register_forward_hook(hook(n, k)) for n, k in points]
    with torch.no_grad():
        m(torch.rand(2, *m.input_shape))
    for h in handles:
        h.remove()
    assert calls == {n: 1 for n, _ in points}  # each point runs exactly once per forward


@pytest.mark.parametrize("arch", sorted(TINY))
def test_masking_all_filters_zeroes_output(arch):
    m = make(arch)
    x = torch.rand(2, *m.input_shape)
    seen, handles = {}, []
    for name, n in m.mask_points():
        mod = m.get_submodule(name)

        def mask(mod, inp, out, n=n):
            return out * torch.zeros(n).view(1, n, *([1] * (out.dim() - 2)))

        def record(mod, inp, out, name=name):
            seen[name] = out.abs().max().item()

        handles.append(mod.register_forward_hook(record))  # before masking: the plain output
        handles.append(mod.register_forward_hook(mask))
        handles.append(mod.register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name + "*", o.abs().max().item())))
    with torch.no_grad():
        m(x)
    for h in handles:
        h.remove()
    names = [n for n, _ in m.mask_points()]
    assert all(seen[n + "*"] == 0.0 for n in names)
    assert seen[names[0]] > 0  # the first point's plain output is not zero, so the check above can fail


def _mask_hook(mask):
    def f(mod, inp, out):
        return out * mask.view(1, -1, *([1] * (out.dim() - 2)))
    return f


@pytest.mark.parametrize("arch,point,consumer", [
    ("lenet5", "blocks.0.relu", "blocks.1.conv"),
    ("lenet5", "blocks.2.relu1", "blocks.2.fc2"),
    ("resnet18", "blocks.1.0.relu1", "blocks.1.0.conv2"),
    ("resnet50", "blocks.2.0.relu2", "blocks.2.0.conv3"),
])
def test_masking_equals_pruning(arch, point, consumer):
    """Masking filter i at a point == removing it: zeroing the consumer's input slice i gives the same logits."""
    m = make(arch)
    x = torch.rand(3, *m.input_shape)
    n = dict(m.mask_points())[point]
    mask = torch.ones(n)
    mask[::2] = 0
    h = m.get_submodule(point).register_forward_hook(_mask_hook(mask))
    with torch.no_grad():
        masked = m(x)
    h.remove()
    with torch.no_grad():
        base = m(x)
        w = m.get_submodule(consumer).weight
        w.mul_(mask.view(1, -1, *([1] * (w.dim() - 2))))
        pruned = m(x)
    assert not torch.allclose(base, pruned)
    assert torch.allclose(masked, pruned, atol=1e-6)


def test_lenet_shapes_match_classic():
    m = build_model("lenet5", {"num_classes": 10})
    assert m.block_shapes() == [(6, 14, 14), (16, 5, 5), (84,)]
    assert [n for n, _ in m.mask_points()] == ["blocks.0.relu", "blocks.1.relu", "blocks.2.relu1", "blocks.2.relu2"]
    assert [k for _, k in m.mask_points()] == [6, 16, 120, 84]
    assert m.blocks[2].fc1.in_features == 400 and m.head.out_features == 10
    assert m.input_shape == (1, 28, 28) and m.arch == "lenet5"
    assert m.arch_args == {"num_classes": 10, "in_channels": 1, "image_size": 28}


def test_resnet_full_width_parameter_count():
    m = build_model("resnet18", {"num_classes": 10})
    n = sum(p.numel() for p in m.parameters())
    assert 11_000_000 < n < 11_300_000  # the CIFAR ResNet-18: 11.17M parameters
