"""The builder's CPU speed-ups keep every float: its own Adam against torch.optim.Adam, LeNet-5's pooling without a
gradient against nn.MaxPool2d, and the patch fill of perturbed samples against nearest upsampling (docs/devices.md,
'CPU speed')."""

from __future__ import annotations

import torch
from torch import nn

from pnc_pack.zoo.optim import Adam, make_adam


def _params(seed: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(7, 5, generator=g).requires_grad_(), torch.randn(5, generator=g).requires_grad_(),
            torch.randn(3, generator=g).requires_grad_()]


def test_adam_is_torch_adam_bit_for_bit():
    mine, theirs = _params(0), _params(0)
    opt_a = Adam([{"params": mine[:2], "lr": 1e-3}, {"params": mine[2:], "lr": 5e-2}])
    opt_b = torch.optim.Adam([{"params": theirs[:2], "lr": 1e-3}, {"params": theirs[2:], "lr": 5e-2}])
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 7, generator=g)
    for step in range(60):
        for ps, opt in ((mine, opt_a), (theirs, opt_b)):
            h = torch.tanh(x @ ps[0]) * torch.sigmoid(ps[1])
            loss = h.pow(2).mean() + (ps[2].sum() if step % 3 else 0)  # some steps leave a parameter without grad
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    for a, b in zip(mine, theirs):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(mine, _params(0)))  # it did train


def test_adam_with_weight_decay_is_torch_adam_bit_for_bit():
    mine, theirs = _params(2), _params(2)
    opt_a, opt_b = Adam([{"params": mine, "lr": 3e-3}], 1e-2), torch.optim.Adam(theirs, lr=3e-3, weight_decay=1e-2)
    x = torch.randn(32, 7, generator=torch.Generator().manual_seed(3))
    for _ in range(30):
        for ps, opt in ((mine, opt_a), (theirs, opt_b)):
            loss = (torch.tanh(x @ ps[0]) * ps[1]).pow(2).mean() + ps[2].pow(2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(mine, theirs))
    plain = _params(2)
    opt_c = Adam([{"params": plain, "lr": 3e-3}])
    for _ in range(30):
        loss = (torch.tanh(x @ plain[0]) * plain[1]).pow(2).mean() + plain[2].pow(2).sum()
        opt_c.zero_grad(set_to_none=True)
        loss.backward()
        opt_c.step()
    assert not torch.equal(plain[0], mine[0])  # the decay did something


def test_make_adam_cpu_is_the_builders_own():
    p = [torch.zeros(2, requires_grad=True)]
    assert isinstance(make_adam([{"params": p, "lr": 0.1}], torch.device("cpu")), Adam)


def test_lenet_pool_without_grad_is_max_pool():
    from pnc_pack.zoo.lenet import MaxPool2

    pool, ref = MaxPool2(), nn.MaxPool2d(2)
    g = torch.Generator().manual_seed(0)
    for shape in ((3, 6, 28, 28), (2, 16, 11, 9)):
        x = torch.relu(torch.randn(*shape, generator=g)).round(decimals=1)  # many ties, zeros among them
        x[0, 0, 0, 0] = float("nan")
        with torch.no_grad():
            assert torch.equal(pool(x).nan_to_num(-1.0), ref(x).nan_to_num(-1.0))
        assert pool(x).shape == ref(x).shape
        xg = x.nan_to_num(0.0).requires_grad_()  # with a gradient: max_pool2d itself, ties routed as before
        pool(xg).sum().backward()
        want = xg.detach().clone().requires_grad_()
        ref(want).sum().backward()
        assert torch.equal(xg.grad, want.grad)


def test_perturb_is_the_upsampled_fill_bit_for_bit():
    import torch.nn.functional as F

    from pnc_pack.builder.surrogate import perturb

    g = torch.Generator().manual_seed(2)
    for shape, grid in (((9, 1, 28, 28), 4), ((5, 3, 32, 32), 4), ((4, 3, 30, 30), 4), ((3, 2, 12, 8), 2)):
        x = torch.rand(*shape, generator=g)
        b = (torch.rand(shape[0], grid * grid, generator=g) > 0.3).float()
        m = b.view(-1, 1, grid, grid)
        up = lambda t: F.interpolate(t, size=shape[2:], mode="nearest")  # noqa: E731
        want = x * up(m) + up(F.adaptive_avg_pool2d(x, grid) * (1 - m))
        assert torch.equal(perturb(x, b, grid).view(torch.int32), want.view(torch.int32))


def test_speed_bench_phases_nest_and_merge():
    import types

    from tools.bench.speed import _merge, _Phases

    mod = types.SimpleNamespace()
    mod.inner = lambda: 1
    mod.outer = lambda: mod.inner() + 1
    ph = _Phases()
    ph.wrap(mod, "outer", lambda: "outer")
    ph.wrap(mod, "inner", lambda: "inner")
    ph.wrap(mod, "missing", lambda: "never")  # a name the builder no longer has is skipped
    assert mod.outer() == 2 and mod.inner() == 1 and mod.inner() == 1
    ph.restore()
    assert [r["phase"] for r in ph.rows] == ["outer", "inner", "inner"]  # inner inside outer is outer's
    assert [r["phase"] for r in _merge(ph.rows)] == ["outer", "inner"]
    assert not hasattr(mod, "missing") and mod.outer() == 2 and len(ph.rows) == 3  # restored: no more rows
