"""The in-memory dataset and the helpers every spec shares: deterministic splits, class selection, resizing.

Images are tensors ``[N, C, H, W]``: float32 in [0, 1], or uint8 at native resolution (parquet data, converted per
use); labels int64 ``[N]``. Nothing here downloads.

Deterministic orders (held-out splits, ``take_fraction``, shuffles of label-sorted files) do not use a random number
generator: every index gets the key ``blake2b(salt, seed, index)`` and indices are sorted by key. The result is the
same on every platform and for every numpy/torch version, which a stream-based RNG does not promise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pnc_pack.errors import DataError

TEST_FRACTION = 0.2  # held-out share for datasets that ship without a test split (mnist5k, digits, npz X/y, folder)
SPLIT_SEED = 0  # fixed: the held-out split of a dataset never changes with the training seed

Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Dataset:
    """A labelled image dataset: ``train`` and ``test`` = (X [N,C,H,W]: float32 in [0,1], or uint8 as decoded for
    parquet data, converted per use by :func:`fit_to_shape` / a model's ``prepare_images``; y int64 [N]).
    ``files``: for data fetched from the Hub, its commit and each file's sha256 (recorded in a delta's
    provenance), else None."""

    name: str
    train: Split
    test: Split
    class_names: list[str]
    files: dict | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train[0].shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train[1])}, test={len(self.test[1])}, "
                f"shape={list(self.input_shape)}, classes={len(self.class_names)})")


def keyed_order(n: int, seed: int, salt: str = "") -> np.ndarray:
    """A permutation of range(n) that depends only on (n, seed, salt): indices sorted by a keyed hash."""
    prefix = f"pnc-pack/{salt}/{int(seed)}/".encode()
    keys = np.empty(n, dtype=np.uint64)
    for i in range(n):
        keys[i] = int.from_bytes(hashlib.blake2b(prefix + str(i).encode(), digest_size=8).digest(), "little")
    return np.argsort(keys, kind="stable")


def _labels(y) -> np.ndarray:
    return y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)


def stratified_split(y, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED,
                     salt: str = "split") -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): per class, ``round(n_c * test_fraction)`` samples go to test.

    Both index arrays are in a deterministic shuffled order (so label-sorted inputs come out mixed).
    """
    y = _labels(y)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[keyed_order(len(idx), seed, f"{salt}/{int(c)}")]
        k = int(round(len(idx) * test_fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    train_idx = np.concatenate(train) if train else np.zeros(0, dtype=np.int64)
    test_idx = np.concatenate(test) if test else np.zeros(0, dtype=np.int64)
    train_idx = train_idx[keyed_order(len(train_idx), seed, f"{salt}/train")]
    test_idx = test_idx[keyed_order(len(test_idx), seed, f"{salt}/test")]
    return train_idx, test_idx


def split_held_out(name: str, X: torch.Tensor, y: torch.Tensor, class_names: list[str],
                   test_fraction: float = TEST_FRACTION) -> Dataset:
    tr, te = stratified_split(y, test_fraction)
    tr, te = torch.from_numpy(tr), torch.from_numpy(te)
    return Dataset(name, (X[tr], y[tr]), (X[te], y[te]), class_names)


def select_classes(X: torch.Tensor, y: torch.Tensor, classes: Sequence[int]) -> Split:
    """The samples whose label is in ``classes`` (labels unchanged, order kept)."""
    classes = [int(c) for c in classes]
    keep = torch.isin(y, torch.tensor(classes, dtype=y.dtype))
    return X[keep], y[keep]


def relabel(y: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Map label ``classes[i]`` to ``i`` (every label of ``y`` must be in ``classes``)."""
    lut = {int(c): i for i, c in enumerate(classes)}
    try:
        return torch.tensor([lut[int(v)] for v in y.tolist()], dtype=torch.int64)
    except KeyError as exc:
        raise DataError(f"label {exc.args[0]} is not one of the classes {list(classes)}") from None


def take_fraction(X: torch.Tensor, y: torch.Tensor, fraction: float, seed: int = 0) -> Split:
    """A stratified, deterministic subset: per class ``max(1, round(n_c * fraction))`` samples (order kept)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
        raise DataError(f"data fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1.0:
        return X, y
    ys = _labels(y)
    keep = []
    for c in np.unique(ys):
        idx = np.flatnonzero(ys == c)
        k = max(1, int(round(len(idx) * fraction)))
        keep.append(idx[np.sort(keyed_order(len(idx), seed, f"fraction/{int(c)}")[:k])])
    sel = torch.from_numpy(np.sort(np.concatenate(keep)))
    return X[sel], y[sel]


def fit_to_shape(X: torch.Tensor, input_shape: Sequence[int], chunk: int = 4096) -> torch.Tensor:
    """Images ``[N, C, H, W]`` to a model's ``input_shape`` (C', H', W').

    Channels: kept, 1 -> C' by repetition, C -> 1 by the mean; anything else is a DataError. Size: bilinear
    (``F.interpolate``, ``align_corners=False``, antialiased when shrinking), clamped to [0, 1]; in chunks so the
    temporary memory stays bounded. uint8 images (a dataset kept as decoded, e.g. parquet) are divided by 255: the
    result is always float32 in [0, 1].
    """
    c_out, h_out, w_out = (int(s) for s in input_shape)
    if X.dim() != 4:
        raise DataError(f"expected images [N, C, H, W], got shape {list(X.shape)}")
    n, c, h, w = X.shape
    if c != c_out and c != 1 and c_out != 1:
        raise DataError(f"cannot fit {c}-channel images to a {c_out}-channel model")
    if (c, h, w) == (c_out, h_out, w_out):
        return as_float(X)
    out = torch.empty((n, c_out, h_out, w_out), dtype=torch.float32)
    for s in range(0, n, chunk):
        x = as_float(X[s:s + chunk])
        if c != c_out:
            x = x.mean(dim=1, keepdim=True) if c_out == 1 else x.expand(-1, c_out, -1, -1)
        if (h, w) != (h_out, w_out):
            shrink = h_out < h or w_out < w
            x = F.interpolate(x, size=(h_out, w_out), mode="bilinear", align_corners=False, antialias=shrink)
            x = x.clamp_(0.0, 1.0)
        out[s:s + chunk] = x
    return out


def as_float(X: torch.Tensor) -> torch.Tensor:
    """Images as float32 in [0, 1]: uint8 divided by 255, float32 unchanged (the same tensor)."""
    if X.dtype == torch.uint8:
        return X.to(torch.float32).div_(255.0)
    return X if X.dtype == torch.float32 else X.float()


def images_from_uint8(a: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W] or [N, C, H, W] -> float32 [N, C, H, W] in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if t.dim() == 3:
        t = t.unsqueeze(1)
    return t.to(torch.float32).div_(255.0)


def digit_names(n: int) -> list[str]:
    return [str(i) for i in range(n)]
