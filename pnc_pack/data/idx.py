"""MNIST-format idx files (``idx:DIR``): the reader validates every header before trusting a size.

An idx file is a 4-byte magic ``00 00 TT DD`` (TT = element type, 0x08 = unsigned byte, the only type accepted;
DD = number of dimensions), ``DD`` big-endian uint32 dimensions, then the elements. Images must be ``idx3``
(N, H, W), labels ``idx1`` (N). The file must hold exactly ``prod(dims)`` data bytes after the header; ``.gz`` files
are decompressed with the same bound (reading stops one byte past the declared size, so a gzip bomb costs nothing).

DIR must hold ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``, each optionally gzipped (``.gz``), with ``.`` accepted in place of the last ``-``
(``train-images.idx3-ubyte``, as some copies name them). Class names: one per line in ``DIR/classes.txt`` if
present; otherwise Fashion-MNIST's names when the folder's name contains "fashion"; otherwise "0", "1", ...
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from pnc_pack.data.dataset import Dataset, digit_names, images_from_uint8
from pnc_pack.errors import DataError

MAX_ITEMS = 10_000_000
MAX_SIDE = 4096
MAX_BYTES = 1 << 33  # 8 GiB of pixels: far above any idx dataset
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"]
MAX_CLASS_FILE = 1 << 20


def read_idx(path: str | Path, want_dims: int) -> np.ndarray:
    """Read one idx file (optionally .gz) of unsigned bytes with ``want_dims`` dimensions."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4:
                raise DataError(f"{path}: truncated header ({len(head)} bytes)")
            if head[0] != 0 or head[1] != 0:
                raise DataError(f"{path}: bad magic number {head.hex()} (first two bytes must be 0)")
            if head[2] != 0x08:
                raise DataError(f"{path}: element type 0x{head[2]:02x} at offset 2 is not 0x08 (unsigned byte)")
            if head[3] != want_dims:
                raise DataError(f"{path}: {head[3]} dimensions at offset 3, expected {want_dims}")
            raw = f.read(4 * want_dims)
            if len(raw) < 4 * want_dims:
                raise DataError(f"{path}: truncated header (dimensions)")
            dims = struct.unpack(f">{want_dims}I", raw)
            if dims[0] > MAX_ITEMS or any(d > MAX_SIDE for d in dims[1:]) or (want_dims > 1 and 0 in dims[1:]):
                raise DataError(f"{path}: implausible dimensions {list(dims)}")
            n = int(np.prod(dims, dtype=np.int64))
            if n > MAX_BYTES:
                raise DataError(f"{path}: {n} data bytes declared, more than the limit of {MAX_BYTES}")
            data = f.read(n + 1)
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"{path}: not found") from None
        raise DataError(f"{path}: cannot read: {exc}") from None
    if len(data) != n:
        what = "more" if len(data) > n else f"only {len(data)}"
        raise DataError(f"{path}: header declares {list(dims)} = {n} data bytes, the file holds {what}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims).copy()  # writable, owns its memory


def _find(folder: Path, stem: str, kind: str) -> Path:
    """``train-images`` + ``idx3-ubyte``: the first of the accepted spellings that exists."""
    for sep in ("-", "."):
        for ext in ("", ".gz"):
            p = folder / f"{stem}{sep}{kind}{ext}"
            if p.is_file():
                return p
    raise DataError(f"idx:{folder}: missing {stem}-{kind} (or {stem}-{kind}.gz)")


def class_names_for(folder: Path, n: int) -> list[str]:
    f = folder / "classes.txt"
    if f.is_file():
        with open(f, "rb") as fh:
            data = fh.read(MAX_CLASS_FILE + 1)
        if len(data) > MAX_CLASS_FILE:
            raise DataError(f"{f}: larger than {MAX_CLASS_FILE} bytes")
        try:
            names = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise DataError(f"{f}: not UTF-8 text") from None
        if len(names) < n:
            raise DataError(f"{f}: {len(names)} names for {n} classes")
        if len(set(names)) != len(names):
            raise DataError(f"{f}: duplicate class names")
        return names
    if "fashion" in folder.resolve().name.lower() and n <= len(FASHION_NAMES):
        return list(FASHION_NAMES)
    return digit_names(max(n, 10))


def load_idx_dir(arg: str) -> Dataset:
    folder = Path(arg)
    if not folder.is_dir():
        raise DataError(f"idx:{arg}: not a folder")
    parts = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        xp, yp = _find(folder, f"{stem}-images", "idx3-ubyte"), _find(folder, f"{stem}-labels", "idx1-ubyte")
        x, y = read_idx(xp, 3), read_idx(yp, 1)
        if len(x) != len(y):
            raise DataError(f"idx:{arg}: {xp.name} holds {len(x)} images but {yp.name} {len(y)} labels")
        parts[split] = (images_from_uint8(x), torch.from_numpy(y.astype(np.int64)))
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise DataError(f"idx:{arg}: train and test images differ in size")
    n = int(max(int(parts[s][1].max()) if len(parts[s][1]) else -1 for s in parts)) + 1
    return Dataset(f"idx:{arg}", parts["train"], parts["test"], class_names_for(folder, n))
