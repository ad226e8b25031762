"""Datasets: readers for idx, npz and image folders, the packaged examples (mnist5k, digits), class splits.

``load_dataset(spec) -> Dataset`` (see :mod:`pnc_pack.data.specs` for the spec forms); ``select_classes``,
``take_fraction`` (stratified, deterministic), ``fit_to_shape`` (to a model's input shape). Nothing downloads.
"""

from __future__ import annotations

from pnc_pack.data.dataset import (  # noqa: F401
    TEST_FRACTION,
    Dataset,
    fit_to_shape,
    keyed_order,
    relabel,
    select_classes,
    stratified_split,
    take_fraction,
)
from pnc_pack.data.specs import SPEC_FORMS, load_dataset, parse_spec  # noqa: F401
