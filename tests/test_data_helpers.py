"""select_classes, take_fraction (stratified, deterministic), fit_to_shape, keyed orders."""

import numpy as np
import pytest
import torch

from pnc_pack.data import fit_to_shape, keyed_order, relabel, select_classes, stratified_split, take_fraction
from pnc_pack.errors import DataError


def toy(n_per=(30, 10, 20)):
    y = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(n_per)])
    X = torch.arange(len(y), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return X, y


def test_select_and_relabel():
    X, y = toy()
    Xs, ys = select_classes(X, y, [2, 0])
    assert sorted(set(ys.tolist())) == [0, 2] and len(ys) == 50
    assert torch.equal(Xs[:, 0, 0, 0], X[(y == 0) | (y == 2)][:, 0, 0, 0])  # order kept
    assert relabel(ys, [2, 0]).tolist() == [1] * 30 + [0] * 20
    with pytest.raises(DataError):
        relabel(y, [0, 1])


def test_take_fraction_stratified_and_deterministic():
    X, y = toy()
    Xa, ya = take_fraction(X, y, 0.5, seed=3)
    assert torch.bincount(ya).tolist() == [15, 5, 10]
    Xb, yb = take_fraction(X, y, 0.5, seed=3)
    assert torch.equal(Xa, Xb) and torch.equal(ya, yb)
    Xc, _ = take_fraction(X, y, 0.5, seed=4)
    assert not torch.equal(Xa, Xc)
    ids = Xa[:, 0, 0, 0]
    assert torch.equal(ids, ids.sort().values)  # original order kept
    assert torch.equal(Xa[:, 0, 0, 0].long(), torch.nonzero(torch.isin(X[:, 0, 0, 0], ids)).flatten())
    _, y1 = take_fraction(X, y, 0.01, seed=0)
    assert torch.bincount(y1).tolist() == [1, 1, 1]  # at least one per class
    assert take_fraction(X, y, 1.0)[0] is X


@pytest.mark.parametrize("f", [0, 0.0, -0.1, 1.5, True, "0.5", float("nan")])
def test_take_fraction_bad(f):
    X, y = toy()
    with pytest.raises(DataError):
        take_fraction(X, y, f)


def test_keyed_order_is_a_fixed_permutation():
    o = keyed_order(10, 0, "x")
    assert sorted(o.tolist()) == list(range(10)) and o.tolist() != list(range(10))
    assert np.array_equal(o, keyed_order(10, 0, "x"))
    assert not np.array_equal(o, keyed_order(10, 1, "x"))
    # pinned: the same on every platform and library version
    assert keyed_order(6, 0, "pin").tolist() == [3, 1, 5, 4, 2, 0]




def test_stratified_split():
    _, y = toy()
    tr, te = stratified_split(y, 0.2, seed=0)
    assert len(set(tr) & set(te)) == 0 and len(tr) + len(te) == len(y)
    assert torch.bincount(y[torch.from_numpy(te)]).tolist() == [6, 2, 4]


def test_fit_to_shape():
    X = torch.rand(5, 1, 8, 8)
    assert fit_to_shape(X, (1, 8, 8)) is X
    up = fit_to_shape(X, (3, 28, 28))
    assert up.shape == (5, 3, 28, 28) and torch.equal(up[:, 0], up[:, 2])
    assert float(up.min()) >= 0 and float(up.max()) <= 1
    const = fit_to_shape(torch.full((2, 1, 8, 8), 0.25), (1, 28, 28))
    assert torch.allclose(const, torch.full_like(const, 0.25))
    rgb = torch.rand(3, 3, 32, 32)
    g = fit_to_shape(rgb, (1, 16, 16), chunk=2)
    assert g.shape == (3, 1, 16, 16)
    assert torch.allclose(g.mean(dim=(2, 3)), rgb.mean(dim=(1, 2, 3)).view(3, 1), atol=1e-2)
    with pytest.raises(DataError):
        fit_to_shape(torch.rand(2, 3, 8, 8), (4, 8, 8))
    with pytest.raises(DataError):
        fit_to_shape(torch.rand(2, 8, 8), (1, 8, 8))
