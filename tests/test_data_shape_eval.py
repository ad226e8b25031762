"""Evaluation and repair data must have the model's shape (issue 20, item 13): 8x8 digits on a model trained on
28x28 MNIST is a DataError naming both shapes, unless resizing is asked for (--resize, resize=True) or the data is
the one the target was trained on (training fitted it the same way)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pnc_pack.clone import evaluate, repair
from pnc_pack.errors import DataError


def _clone(trained_on):
    return SimpleNamespace(output_labels=[0, 1, 5], input_shape=(1, 28, 28), trained_on=trained_on)


def test_eval_data_of_another_shape_is_refused(digits):
    with pytest.raises(DataError, match=r"1x8x8.*1x28x28.*--resize"):
        evaluate.labelled_split(_clone("mnist5k"), digits)
    with pytest.raises(DataError, match="--resize"):
        repair.labelled_split(_clone("mnist5k"), *digits.train)


def test_resize_when_asked_or_when_trained_on_it(digits):
    X, y = evaluate.labelled_split(_clone("mnist5k"), digits, resize=True)
    assert tuple(X.shape[1:]) == (1, 28, 28) and set(y.tolist()) == {0, 1, 2}
    X2, _ = evaluate.labelled_split(_clone("digits"), digits)  # the target was trained on digits, fitted as here
    assert X2.equal(X)
    Xr, _ = repair.labelled_split(_clone(None), *digits.train, resize=True)
    assert tuple(Xr.shape[1:]) == (1, 28, 28)
    big = evaluate.resized(digits, (1, 28, 28))
    assert big.input_shape == (1, 28, 28) and evaluate.resized(big, (1, 28, 28)) is big


def test_commands_take_resize():
    from click.testing import CliRunner

    from pnc_pack.cli import cli

    for cmd in ("eval", "apply"):
        assert "--resize" in CliRunner().invoke(cli, [cmd, "--help"]).output
