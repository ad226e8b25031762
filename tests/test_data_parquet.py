"""parquet:DIR datasets (the Hub's image-classification layout) and hf: specs through an installed resolver."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pyarrow")

from pnc_pack.data import load_dataset  # noqa: E402
from pnc_pack.errors import DataError  # noqa: E402
from tests.parquet_data import digits_parquet, write_parquet_dataset  # noqa: E402


def test_parquet_dir_reads_images_labels_and_class_names(tmp_path):
    ds = load_dataset(f"parquet:{digits_parquet(tmp_path / 'd')}")
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.train[0].shape == (1437, 1, 8, 8) and ds.test[0].shape == (360, 1, 8, 8)
    assert ds.train[0].dtype == torch.uint8  # kept as decoded, at native resolution
    from sklearn.datasets import load_digits

    from pnc_pack.data import as_float, fit_to_shape

    d = load_digits()
    want = torch.from_numpy((d.images[:5] * (255 / 16)).round().astype(np.uint8))
    assert torch.equal(ds.train[0][:5, 0], want)  # PNG round trip is lossless
    assert torch.equal(as_float(ds.train[0][:5]), want.unsqueeze(1).float() / 255)
    assert fit_to_shape(ds.train[0][:5], (1, 8, 8)).dtype == torch.float32  # every use converts
    assert ds.train[1][:5].tolist() == d.target[:5].tolist()


def test_other_layouts_refused_saying_what_was_found(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "train.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="found no parquet files"):
        load_dataset(f"parquet:{tmp_path / 'x'}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "y" / "data").mkdir(parents=True)
    for split in ("train", "test"):
        pq.write_table(pa.table({"text": ["a"], "label": [0]}), tmp_path / "y" / "data" / f"{split}-0.parquet")
    with pytest.raises(DataError, match="one Image column and one ClassLabel"):
        load_dataset(f"parquet:{tmp_path / 'y'}")


def test_hf_spec_goes_through_the_installed_resolver(tmp_path, monkeypatch):
    from pnc_pack.data import specs

    folder = write_parquet_dataset(tmp_path / "d", {
        "train": (np.zeros((4, 5, 5), np.uint8), np.array([0, 1, 0, 1])),
        "test": (np.full((2, 5, 5), 255, np.uint8), np.array([1, 0]))}, ["a", "b"])
    monkeypatch.setattr(specs, "_HUB_RESOLVER", None)
    with pytest.raises(DataError, match="Hub layer"):
        load_dataset("hf:org/data")
    monkeypatch.setattr(specs, "_HUB_RESOLVER", lambda arg: (folder, f"hf:{arg}@{'0' * 40}"))
    ds = load_dataset("hf:org/data")
    assert ds.name == f"hf:org/data@{'0' * 40}" and ds.class_names == ["a", "b"] and ds.test[0].max() == 255
    assert ds.files is None
    files = {"repo": "org/data", "commit": "0" * 40, "files": {"data/test-00000-of-00001.parquet": "a" * 64}}
    monkeypatch.setattr(specs, "_HUB_RESOLVER", lambda arg: (folder, f"hf:{arg}@{'0' * 40}", files))
    assert load_dataset("hf:org/data").files == files  # what a delta's provenance records (test_hub_hf_roundtrip)
