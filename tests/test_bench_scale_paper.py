"""--device on the demo and the benchmarks (issue 17 item 1), and the pieces of the paper-scale benchmark (item 4):
the plan, the padded 3x32x32 data, and the per-phase timer around a tiny real build. No timings are asserted."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from pnc_pack.cli import cli, main
from pnc_pack.errors import UsageError

NO_SUCH = "cuda:99"  # missing here whether or not the machine has CUDA


def test_demo_checks_the_device_before_any_work(tmp_path, capsys):
    work = tmp_path / "w"
    rc = main(["demo", "--device", NO_SUCH, "--data", "idx:/nonexistent", "--workdir", str(work)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    assert NO_SUCH in err and "available devices: cpu" in err
    assert not work.exists()  # refused before the workdir, the data or any model


def test_demo_passes_device_and_precision_on(monkeypatch, tmp_path):
    import pnc_pack.demo

    seen = {}

    def fake(cfg, progress=None):
        seen.update(device=cfg.device, precision=cfg.precision)
        raise RuntimeError("stop here")

    monkeypatch.setattr(pnc_pack.demo, "run_demo", fake)
    res = CliRunner().invoke(cli, ["demo", "--device", "cpu", "--precision", "bf16", "--workdir", str(tmp_path)])
    assert isinstance(res.exception, RuntimeError)
    assert seen == {"device": "cpu", "precision": "bf16"}


@pytest.mark.parametrize("bench, extra", [("mnist_pnc", []), ("repair", []), ("scale", ["--parts", "paper"]),
                                         ("paper", ["--data", "digits"]), ("multi", ["--data", "digits"]),
                                         ("exemplars", ["--data", "digits"]), ("routing", []),
                                         ("similarity", ["--data", "digits"]), ("baselines_grid", ["--data", "digits"]),
                                         ("hf", []), ("distributed", ["--work", "nowhere"])])
def test_benchmarks_refuse_a_missing_device_before_any_work(bench, extra, capsys, monkeypatch, tmp_path):
    import importlib

    monkeypatch.chdir(tmp_path)  # nothing to find here: a benchmark that went on would fail otherwise
    mod = importlib.import_module(f"tools.bench.{bench}")
    with pytest.raises(SystemExit) as exc:
        mod.main(["--device", NO_SUCH, *extra])
    assert exc.value.code == 2
    assert NO_SUCH in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_plan_and_padded_data():
    from pnc_pack.data import Dataset
    from tools.bench._scale_paper import padded, parse_plan

    assert parse_plan("resnet18/mnist/S, resnet50/fashion-mnist/M") == [("resnet18", "mnist", "S"),
                                                                       ("resnet50", "fashion-mnist", "M")]
    for bad in ("resnet18/mnist", "vgg/mnist/S", "resnet18/cifar/S", "resnet18/mnist/X", " , "):
        with pytest.raises(UsageError):
            parse_plan(bad)
    X = torch.rand(3, 1, 28, 28)
    X = (X * 255).round() / 255
    ds = padded(Dataset("t", (X, torch.arange(3)), (X[:1], torch.zeros(1, dtype=torch.long)), ["a", "b", "c"]))
    Xp = ds.train[0]
    assert Xp.shape == (3, 3, 32, 32) and Xp.dtype == torch.uint8 and ds.test[0].shape == (1, 3, 32, 32)
    assert torch.equal(Xp[:, :, 2:30, 2:30].float() / 255, X.expand(-1, 3, -1, -1))
    assert Xp[:, :, :2].sum() == 0 and Xp[:, :, :, 30:].sum() == 0


TINY = dict(steps=2, retune_steps=1, masks_per_anchor=4, pool_size=64, data_fraction=0.2)


def test_phases_time_every_phase_and_put_the_builder_back(zoo, digits):
    from pnc_pack.builder import BuildConfig, api, build_clone
    from pnc_pack.builder import search as S
    from pnc_pack.zoo.pretrained import load_pretrained
    from tools.bench._phases import OverBudget, phases

    before = (api.train_position, api.source_logits, S.train, S.calibrate)
    cfg = BuildConfig(**TINY)
    dev = torch.device("cpu")
    L = load_pretrained(zoo["target"])[0].num_blocks
    with phases(dev, cfg, L) as ph:
        build_clone(zoo["target"], zoo["source"], digits, [5], seed=0, config=cfg, device="cpu")
    names = [r["phase"] for r in ph.rows]
    assert names[:3] == ["local model set", "negatives", "perturbed pool"]
    assert [n for n in names if n.startswith("position")] == [f"position R={r}" for r in range(L - 1, -1, -1)]
    assert "re-tune" in names and "calibration" in names
    steps = {r["phase"]: r["steps"] for r in ph.rows}
    assert steps["position R=0"] == 2 and steps["re-tune"] == 1 and steps["negatives"] is None
    assert all(r["s"] >= 0 and r["peak_bytes"] is None for r in ph.rows)
    assert (api.train_position, api.source_logits, S.train, S.calibrate) == before
    with pytest.raises(OverBudget):  # a deadline already past: stops after the first position
        with phases(dev, cfg, L, deadline=0.0) as ph:
            build_clone(zoo["target"], zoo["source"], digits, [5], seed=0, config=cfg, device="cpu")
    assert [r["phase"] for r in ph.rows if r["phase"].startswith("position")] == [f"position R={L - 1}"]
    assert (api.train_position, api.source_logits, S.train, S.calibrate) == before
