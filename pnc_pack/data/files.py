"""``npz:FILE`` and ``folder:DIR`` datasets (no pickle, no downloads).

npz: ``numpy.load(FILE, allow_pickle=False)`` with keys ``x_train``, ``y_train`` and optionally ``x_test``,
``y_test``; or ``X``, ``y`` (then, like ``x_train`` alone, a stratified 20% is held out deterministically).
Images may be [N, H, W], [N, C, H, W] or [N, H, W, C] (C in 1, 3, 4 and not also plausible as H: channels-last is
recognised when the last axis is 1/3/4 and axis 1 is not). uint8 images are divided by 255; float images must
already lie in [0, 1]. Labels: integers >= 0, one per image. Optional ``class_names``: an array of strings.

folder: ``DIR/<class>/<image>`` (class names = sub-folder names, sorted; label i = i-th name), or ``DIR/train/<class>``
and ``DIR/test/<class>`` with the same class folders. Images: .png .jpg .jpeg .bmp .gif, read with Pillow (a
DataError names the missing package otherwise), converted to grayscale when every image is grayscale, else RGB, and
resized (bilinear) to the size of the first image (by sorted path) when sizes differ.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from pnc_pack.data.dataset import Dataset, digit_names, split_held_out
from pnc_pack.errors import DataError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
MAX_IMAGES = 2_000_000


def _images(a: np.ndarray, where: str) -> torch.Tensor:
    if a.dtype == object or a.ndim not in (3, 4):
        raise DataError(f"{where}: expected images [N,H,W], [N,C,H,W] or [N,H,W,C], got shape {list(a.shape)}")
    if a.ndim == 3:
        a = a[:, None]
    elif a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3, 4):
        a = np.moveaxis(a, -1, 1)
    if a.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(a)).float().div_(255.0)
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise DataError(f"{where}: unsupported dtype {a.dtype}")
    a = a.astype(np.float32)
    if a.size and (not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0):
        raise DataError(f"{where}: non-uint8 images must hold values in [0, 1] (scale them first)")
    return torch.from_numpy(np.ascontiguousarray(a))


def _labels(a: np.ndarray, n: int, where: str) -> torch.Tensor:
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise DataError(f"{where}: labels must be a 1-D integer array, got {a.dtype} {list(a.shape)}")
    if len(a) != n:
        raise DataError(f"{where}: {len(a)} labels for {n} images")
    if len(a) and (a.min() < 0 or a.max() >= 100_000):
        raise DataError(f"{where}: labels must lie in [0, 100000)")
    return torch.from_numpy(a.astype(np.int64))


def _array(z, key: str, arg: str) -> np.ndarray:
    """``z[key]``; an object array (stored pickled) is refused with our own message, never numpy's advice to
    load it with pickling allowed: unpickling a file runs code it names."""
    try:
        return z[key]
    except ValueError as exc:
        if "pickle" not in str(exc):
            raise
        raise DataError(f"npz:{arg}[{key}]: an object array, stored pickled: pnc-pack never reads pickled data; "
                        "save images and labels as numeric arrays (uint8 or float images, integer labels) and "
                        "class_names as strings") from None


def load_npz(arg: str) -> Dataset:
    path = Path(arg)
    if not path.is_file():
        raise DataError(f"npz:{arg}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            arrays = {k: _array(z, k, arg) for k in sorted(keys & {"x_train", "y_train", "x_test", "y_test", "X", "y",
                                                                  "class_names"})}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"npz:{arg}: cannot read: {exc}") from None
    if {"x_train", "y_train"} <= keys:
        xk, yk = "x_train", "y_train"
    elif {"X", "y"} <= keys:
        xk, yk = "X", "y"
    else:
        raise DataError(f"npz:{arg}: expected keys x_train, y_train [, x_test, y_test] or X, y; found {sorted(keys)}")
    X = _images(arrays[xk], f"npz:{arg}[{xk}]")
    y = _labels(arrays[yk], len(X), f"npz:{arg}[{yk}]")
    test = None
    if xk == "x_train" and ({"x_test", "y_test"} & keys):
        if not {"x_test", "y_test"} <= keys:
            raise DataError(f"npz:{arg}: x_test and y_test go together")
        Xt = _images(arrays["x_test"], f"npz:{arg}[x_test]")
        yt = _labels(arrays["y_test"], len(Xt), f"npz:{arg}[y_test]")
        if Xt.shape[1:] != X.shape[1:]:
            raise DataError(f"npz:{arg}: x_test images are {list(Xt.shape[1:])}, x_train {list(X.shape[1:])}")
        test = (Xt, yt)
    n = int(max(int(y.max()) if len(y) else 0, int(test[1].max()) if test and len(test[1]) else 0)) + 1
    names = digit_names(n)
    if "class_names" in arrays:
        cn = arrays["class_names"]
        if cn.ndim != 1 or cn.dtype.kind not in "U" or len(cn) < n:
            raise DataError(f"npz:{arg}[class_names]: expected at least {n} strings")
        names = [str(s) for s in cn]
    name = f"npz:{arg}"
    if test is None:
        return split_held_out(name, X, y, names)
    return Dataset(name, (X, y), test, names)


def _class_dirs(folder: Path) -> list[Path]:
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DataError(f"folder:{folder}: no class sub-folders")
    return dirs


def _read_images(files: list[Path], where: str):
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{where}: reading image folders needs the package 'Pillow': pip install Pillow") from None
    imgs = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                imgs.append(im.copy())
        except Exception as exc:  # PIL raises many types for bad files
            raise DataError(f"{f}: not a readable image: {type(exc).__name__}: {exc}") from None
    return imgs


def load_image_folder(arg: str) -> Dataset:
    folder = Path(arg)
    if not folder.is_dir():
        raise DataError(f"folder:{arg}: not a folder")
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        roots = {"train": folder / "train", "test": folder / "test"}
    else:
        roots = {"all": folder}
    names = [p.name for p in _class_dirs(next(iter(roots.values())))]
    if len(roots) == 2 and [p.name for p in _class_dirs(roots["test"])] != names:
        raise DataError(f"folder:{arg}: train/ and test/ have different class folders")
    listing = {}
    for split, root in roots.items():
        files, labels = [], []
        for label, name in enumerate(names):
            for f in sorted((root / name).iterdir()):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                    files.append(f)
                    labels.append(label)
        if len(files) > MAX_IMAGES:
            raise DataError(f"folder:{arg}: more than {MAX_IMAGES} images")
        listing[split] = (files, labels)
    all_files = [f for fs, _ in listing.values() for f in fs]
    if not all_files:
        raise DataError(f"folder:{arg}: no images ({', '.join(sorted(IMAGE_EXTS))})")
    imgs = _read_images(all_files, f"folder:{arg}")
    gray = all(im.mode in ("1", "L", "LA", "I", "I;16", "F") for im in imgs)
    mode, size = ("L" if gray else "RGB"), imgs[0].size
    from PIL import Image

    arrays = []
    for im in imgs:
        im = im.convert(mode)
        if im.size != size:
            im = im.resize(size, Image.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.uint8))
    stack = np.stack(arrays)
    X_all = torch.from_numpy(stack if stack.ndim == 4 else stack[:, :, :, None]).permute(0, 3, 1, 2)
    X_all = X_all.float().div_(255.0).contiguous()
    parts, start = {}, 0
    for split, (files, labels) in listing.items():
        parts[split] = (X_all[start:start + len(files)], torch.tensor(labels, dtype=torch.int64))
        start += len(files)
    name = f"folder:{arg}"
    if "all" in parts:
        return split_held_out(name, *parts["all"], names)
    return Dataset(name, parts["train"], parts["test"], names)
