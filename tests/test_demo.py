"""The demo end to end on tiny settings: trained zoo, two signed clones, a fresh-process receiver; its numbers are
the ones `pnc-pack eval` reports by hand on its outputs, detach restores the target, and the figure is a PNG."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pnc_pack.cli import cli
from pnc_pack.demo.run import DemoConfig, run_demo
from tests.conftest import FAST

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

TINY = dict(data="digits", epochs=2, data_fraction=0.5, build={k: v for k, v in FAST.items() if k != "data_fraction"})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    return run_demo(DemoConfig(workdir=str(work), **TINY)), work


def test_demo_receiver_verifies_applies_and_restores_the_target(demo):
    result, work = demo
    assert set(result["clones"]) == {"S", "M"}
    for name, c in result["clones"].items():
        r = c["receiver"]
        assert r["verify"]["ok"], r
        assert r["detach"]["identical"], r["detach"]
        assert r["export"]["bytes"] > c["bytes"]  # the offline model is larger than the delta
        assert r["eval"]["tar"] > 0.5, (name, r["eval"])  # 5 classes + k: chance is far below
    assert json.loads((work / "demo.json").read_text())["clones"]["S"]["bytes"] == result["clones"]["S"]["bytes"]
    assert (work / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_numbers_agree_with_pnc_pack_eval(demo):
    result, work = demo
    for name, c in result["clones"].items():
        res = CliRunner().invoke(cli, ["eval", c["path"], "--data", "digits", "--models-dir", str(work / "models"),
                                        "--json"])
        assert res.exit_code == 0, res.output
        by_hand = json.loads(res.output)
        for key in ("ori", "tar", "avg"):
            assert by_hand[key] == pytest.approx(c["receiver"]["eval"][key], abs=1e-9), (name, key)
            assert by_hand[key] == pytest.approx(c["metrics"]["eval"][key], abs=1e-9), (name, key)


def test_cached_models_are_reused_only_with_the_same_settings(demo):
    from pnc_pack.data import load_dataset
    from pnc_pack.demo.run import _train_or_reuse

    result, work = demo
    digits = load_dataset("digits")
    before = (work / "models" / "target" / "model.safetensors").read_bytes()
    assert result["trained"]
    assert _train_or_reuse(DemoConfig(workdir=str(work), **TINY), digits, (0, 1, 2, 3, 4), work / "models" / "target",
                           None) is False
    assert (work / "models" / "target" / "model.safetensors").read_bytes() == before
    other = work / "other"
    (other).mkdir()
    for f in ("config.json", "model.safetensors"):
        (other / f).write_bytes((work / "models" / "target" / f).read_bytes())
    assert _train_or_reuse(DemoConfig(workdir=str(work), **{**TINY, "epochs": 1}), digits, (0, 1, 2, 3, 4), other,
                           None) is True  # other epochs: retrained
