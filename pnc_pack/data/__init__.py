"""Datasets: readers for idx, npz and image folders, the packaged examples (mnist5k, digits), class splits.

``load_dataset(spec) -> Dataset`` (see :mod:`pnc_pack.data.specs` for the spec forms); ``select_classes``,
``take_fraction`` (stratified, deterministic), ``fit_to_shape`` (to a model's input shape). Nothing downloads.
"""

from __future__ import annotations

import importlib

# Names resolve on first use (PEP 562), so ``pnc_pack.data.specs`` (torch-free) can be imported by commands that
# never touch tensors without importing torch through ``dataset``.
_EXPORTS = {
    **dict.fromkeys(["TEST_FRACTION", "Dataset", "as_float", "fit_to_shape", "keyed_order", "relabel", "select_classes",
                     "stratified_split", "take_fraction"], "pnc_pack.data.dataset"),
    **dict.fromkeys(["SPEC_FORMS", "load_dataset", "parse_spec"], "pnc_pack.data.specs"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pnc_pack.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
