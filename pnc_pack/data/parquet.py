"""``parquet:DIR`` datasets: the Hugging Face Hub's image-classification layout, read with pyarrow and Pillow.

A dataset repository in that layout holds parquet files for a ``train`` and a ``test`` split (``data/train-*.parquet``
or ``<config>/train/*.parquet``, any file whose path names the split), each with an image column (a struct of
``bytes`` (PNG/JPEG) and ``path``) and a label column whose schema metadata (``huggingface`` key) declares a
``ClassLabel`` with its class names. No ``datasets`` library and no code from the repository: the metadata is read
as JSON, the images decoded by Pillow (grayscale kept as one channel, anything else RGB) and kept as uint8 at their
native resolution: each model converts them per use (``fit_to_shape``; an hf-* model's own image processor, which
makes grayscale RGB). Any other layout is a :class:`DataError` saying what was found.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

from pnc_pack.data.dataset import Dataset
from pnc_pack.errors import DataError

MAX_IMAGES = 2_000_000


def _need(package: str):
    return DataError(f"parquet datasets need {package}: pip install 'pnc-pack[hf]'")


def split_files(folder: Path) -> dict[str, list[Path]]:
    """{"train": [...], "test": [...]} of the parquet files under ``folder`` (by the split named in their path)."""
    found = sorted(p for p in folder.rglob("*.parquet") if p.is_file())
    out: dict[str, list[Path]] = {"train": [], "test": []}
    for p in found:
        rel = p.relative_to(folder).as_posix()
        for split in out:
            if f"/{split}/" in f"/{rel}" or Path(rel).name.startswith(f"{split}-") or Path(rel).stem == split:
                out[split].append(p)
                break
    if not out["train"] or not out["test"]:
        names = ", ".join(p.relative_to(folder).as_posix() for p in found[:10]) or "no parquet files"
        raise DataError(f"parquet:{folder}: expected train and test parquet files (data/train-*.parquet, "
                        f"data/test-*.parquet); found {names}")
    return out


def _columns(schema, where: str) -> tuple[str, str, list[str]]:
    meta = (schema.metadata or {}).get(b"huggingface")
    features = {}
    if meta:
        try:
            features = json.loads(meta.decode("utf-8")).get("info", {}).get("features", {})
        except (UnicodeDecodeError, ValueError, AttributeError):
            raise DataError(f"{where}: the schema's huggingface metadata is not JSON") from None
    labels = [k for k, v in features.items() if isinstance(v, dict) and v.get("_type") == "ClassLabel"]
    images = [k for k, v in features.items() if isinstance(v, dict) and v.get("_type") == "Image"]
    if len(labels) != 1 or len(images) != 1:
        cols = ", ".join(f"{f.name}: {f.type}" for f in schema)
        raise DataError(f"{where}: expected one Image column and one ClassLabel column in the schema's features; "
                        f"found columns {cols} and features {sorted(features)}")
    names = features[labels[0]].get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and 0 < len(n) <= 256 for n in names):
        raise DataError(f"{where}: ClassLabel {labels[0]!r} has no list of class names")
    return images[0], labels[0], names


def _read(files: list[Path], where: str):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise _need("pyarrow") from None
    try:
        from PIL import Image
    except ImportError:
        raise _need("Pillow") from None
    images, labels, names = [], [], None
    for f in files:
        try:
            table = pq.read_table(f)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a damaged file
            raise DataError(f"{where}: cannot read {f.name}: {exc}") from None
        img_col, lab_col, n = _columns(table.schema, f"{where}/{f.name}")
        if names is not None and n != names:
            raise DataError(f"{where}: {f.name} names other classes than the first file")
        names = n
        for cell in table.column(img_col).to_pylist():
            data = cell.get("bytes") if isinstance(cell, dict) else None
            if not isinstance(data, (bytes, bytearray)):
                raise DataError(f"{where}/{f.name}: an image without bytes (only embedded images are read)")
            with Image.open(io.BytesIO(data)) as im:
                im = im.convert("L") if im.mode in ("L", "1", "I;16", "I") else im.convert("RGB")
                images.append(np.asarray(im, dtype=np.uint8))
        labels += table.column(lab_col).to_pylist()
        if len(images) > MAX_IMAGES:
            raise DataError(f"{where}: more than {MAX_IMAGES} images")
    if not images or len({a.shape for a in images}) != 1:
        raise DataError(f"{where}: images must all have one size and mode")
    if not all(isinstance(v, int) and 0 <= v < len(names) for v in labels):
        raise DataError(f"{where}: labels must be ClassLabel indices in [0, {len(names)})")
    a = np.stack(images)
    a = a[:, None] if a.ndim == 3 else np.moveaxis(a, -1, 1)
    X = torch.from_numpy(np.ascontiguousarray(a))  # uint8 at native resolution; each model converts per use
    return X, torch.tensor(labels, dtype=torch.int64), names


def load_parquet_dir(arg: str, name: str | None = None, pinned_files: dict | None = None) -> Dataset:
    """``pinned_files``: the Hub fetch's repo, commit and per-file sha256 (``Dataset.files``), when fetched."""
    folder = Path(arg)
    if not folder.is_dir():
        raise DataError(f"parquet:{arg}: folder not found")
    files = split_files(folder)
    Xtr, ytr, names = _read(files["train"], f"parquet:{arg} (train)")
    Xte, yte, names_te = _read(files["test"], f"parquet:{arg} (test)")
    if names_te != names:
        raise DataError(f"parquet:{arg}: the test split names other classes than the train split")
    return Dataset(name or f"parquet:{arg}", (Xtr, ytr), (Xte, yte), names, pinned_files)
