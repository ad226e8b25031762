"""Write an image-classification dataset in the Hub's parquet layout (tests only): PNG bytes + a ClassLabel."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np


def write_parquet_dataset(folder, splits: dict[str, tuple[np.ndarray, np.ndarray]], names: list[str]) -> Path:
    """``splits``: {"train": (uint8 images [N, H, W], labels [N]), "test": ...} -> folder/data/<split>-00000-of-00001.parquet"""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    features = {"image": {"_type": "Image"}, "label": {"names": names, "_type": "ClassLabel"}}
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    for split, (X, y) in splits.items():
        cells = []
        for i, img in enumerate(X):
            buf = io.BytesIO()
            Image.fromarray(np.asarray(img, dtype=np.uint8)).save(buf, format="PNG")
            cells.append({"bytes": buf.getvalue(), "path": f"{split}-{i}.png"})
        table = pa.table({"image": cells, "label": pa.array([int(v) for v in y], pa.int64())})
        table = table.replace_schema_metadata(meta)
        pq.write_table(table, folder / "data" / f"{split}-00000-of-00001.parquet")
    return folder


def digits_parquet(folder) -> Path:
    """sklearn's 8x8 digits (uint8 0..255), 1,437 train / 360 test, as a parquet dataset."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images * (255 / 16)).round().astype(np.uint8)
    y = d.target
    return write_parquet_dataset(folder, {"train": (X[:1437], y[:1437]), "test": (X[1437:], y[1437:])},
                                 [str(i) for i in range(10)])
