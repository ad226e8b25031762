"""Tests of the paper benchmark's entry point and report (tools/bench/paper.py, report.py) and of the scale
benchmark's pieces (tools/bench/scale.py) that need no training: flag defaults the issue names, per-seed reuse,
the verdict sentences, the three figures, RESULTS.md sections, and the payload-vs-zstd comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

from tools.bench import paper, report, scale


def test_flags_have_the_issues_defaults():
    a = paper.parse_args(["--data", "mnist5k"])
    assert a.arch == "lenet5"
    assert a.target_classes == [0, 1, 2, 3, 4] and a.source_classes == [5, 6, 7, 8, 9]
    assert a.clone_s == [5] and a.clone_m == [5, 6, 7]
    assert a.data_fraction == 0.1 and a.seed == 0 and a.seeds is None
    assert paper.parse_args(["--data", "mnist5k", "--seeds", "0,1,2"]).seeds == [0, 1, 2]
    with pytest.raises(SystemExit):
        paper.parse_args(["--data", "mnist5k", "--clone-s", "3"])  # not a source class


def test_pnc_set_passes_builder_settings_and_refuses_unknown_ones():
    from tools.bench import _pnc_rows

    a = paper.parse_args(["--data", "mnist5k", "--pnc-set", "negatives=inversion", "--pnc-set", "route_recall=0.9"])
    assert a.pnc_set == {"negatives": "inversion", "route_recall": 0.9}
    cfg = _pnc_rows.config_dict(0.1, 50, a.pnc_set)
    assert cfg["negatives"] == "inversion" and cfg["route_recall"] == 0.9 and cfg["steps"] == 50
    assert paper.seed_key(a)["pnc_config"] != paper.seed_key(paper.parse_args(["--data", "mnist5k"]))["pnc_config"]
    for bad in ("bogus=1", "negatives=nope", "noequals"):
        with pytest.raises(SystemExit):
            paper.parse_args(["--data", "mnist5k", "--pnc-set", bad])


def _run(seed, avg_pnc, avg_kd, r_losses=None):
    def row(avg):
        return {"ori": avg, "tar": avg, "avg": avg, "bytes": 1000, "bytes_note": "x", "train_s": 1.0}

    settings = {}
    for st in ("S", "M"):
        rows = {"continual_kd": row(avg_kd), "ensemble": row(avg_kd - 1), "lora": row(avg_kd + 0.5),
                "pnc": {**row(avg_pnc), "bytes": 3000, "position": 1}}
        settings[st] = {"clone": [5], "dt_samples": 10, "rows": rows,
                        "r_search": {"pnc": r_losses or {"0": 0.3, "1": 0.2, "2": 0.4}}}
    return {"seed": seed, "zoo": {"target": {"test_accuracy": 0.99}, "source": {"test_accuracy": 0.99}},
            "settings": settings}


def _result(runs, dataset="mnist", seeds=None):
    methods = ["continual_kd", "ensemble", "pnc", "lora"]
    table = paper.aggregate(runs, methods)
    return {"benchmark": "paper", "dataset": dataset, "data_spec": "mnist5k", "arch": "lenet5",
            "seeds": seeds or [r["seed"] for r in runs], "seeds_done": [r["seed"] for r in runs],
            "partial": seeds is not None and len(seeds) > len(runs),
            "command": "python -m tools.bench paper --data x",
            "settings": {"target_classes": [0, 1, 2, 3, 4], "source_classes": [5, 6, 7, 8, 9], "clone_s": [5],
                         "clone_m": [5, 6, 7], "data_fraction": 0.1, "epochs": 1, "ft_epochs": 1, "pnc_steps": None,
                         "zoo_label_smoothing": 0.0, "methods": methods, "torch_threads": 1},
            "machine": report.machine(), "definitions": {}, "runs": runs, "table": table,
            "judgement": paper.judge(table), "wall_s": 1.0, "loadavg_1min": {}}


def test_verdict_names_wins_losses_and_goals():
    res = _result([_run(0, 98.5, 90.0), _run(1, 98.1, 91.0)])
    lines = report.verdict(res)
    text = "\n".join(lines)
    assert "PNC (full) against Continual + KD: **beats** it in S" in text
    assert "against PEFT LoRA (PEFT)" in text
    assert "AvgS 98.30 ± 0.28 vs goal >= 98.0: **met**" in text
    assert "AvgM 98.30 ± 0.28 vs goal >= 97.5: **met**" in text
    assert "OriS within 1.5 of the target on every seed: **met** (largest gap 0.90, seed 1)" in text  # target 99.0
    bad = report.verdict(_result([_run(0, 90.2, 90.0)]))
    joined = "\n".join(bad)
    assert "**does NOT beat** it in S (AvgS 90.20 vs 90.50)" in joined  # PEFT above PNC is said plainly
    assert "**NOT met**" in joined
    assert "OriM within 1.5 of the target on every seed: **NOT met** (largest gap 8.80, seed 0)" in joined
    assert all("goal" not in x for x in report.verdict(_result([_run(0, 90.2, 90.0)], dataset="fashion-mnist")))


def test_label_names_non_default_and_unrecorded_builder_settings():
    from pnc_pack.builder.config import BuildConfig

    cfg = BuildConfig().to_dict()
    assert report.label({"dataset": "mnist", "pnc_config": cfg}) == "mnist"
    variant = report.label({"dataset": "mnist", "pnc_config": {**cfg, "negatives": "inversion"}})
    assert variant == "mnist [PNC rows with negatives=inversion]"
    old = {k: v for k, v in cfg.items() if k != "negatives"}  # stored by a builder without that setting
    assert report.label({"dataset": "mnist", "pnc_config": old}) == \
        "mnist [PNC rows built before the setting(s) negatives existed]"
    same = {"target_classes": [0, 1, 2, 3, 4], "source_classes": [5, 6, 7, 8, 9], "clone_s": [5], "clone_m": [5, 6, 7]}
    assert report.label({"dataset": "mnist", "pnc_config": cfg, "settings": same}) == "mnist"
    swapped = {"target_classes": [5, 6, 7, 8, 9], "source_classes": [0, 1, 2, 3, 4], "clone_s": [0], "clone_m": [0, 1, 2]}
    assert report.label({"dataset": "mnist", "pnc_config": cfg, "settings": swapped}) == \
        "mnist [classes: target [5, 6, 7, 8, 9], source [0, 1, 2, 3, 4], S clones [0], M clones [0, 1, 2]]"


def test_three_figures_and_partial_note(tmp_path):
    res = _result([_run(0, 98.0, 90.0)], seeds=[0, 1, 2])
    paths = report.write_paper(res, tmp_path)
    names = {p.name for p in paths}
    assert {"paper-mnist-accuracy.png", "paper-mnist-rsearch.png", "paper-mnist-bytes.png"} <= names
    for p in paths:
        assert p.stat().st_size > 0
    md = (tmp_path / "paper-mnist.md").read_text()
    assert "Partial result" in md and "1 seed(s) [0]" in md
    assert "paper-mnist-rsearch.png" in md


def test_results_md_renders_current_defaults_only(tmp_path):
    from pnc_pack.builder.config import BuildConfig
    from tools.bench import baselines_grid as G

    chosen = {"continual_kd": {"lr": 1e-4, "epochs": 1, "kd_weight": 10.0, "kd_T": 2.0},
              "lora": {"lr": 1e-3, "epochs": 1, "r": 4}}
    point = lambda p: {"params": p, "S": {"avg": 91.0}, "M": {"avg": 88.0}, "avg_mean": 89.5}  # noqa: E731
    grid = {"benchmark": "baselines_grid", "dataset": "mnist", "arch": "lenet5", "seed": 0, "chosen": chosen,
            "command": "python -m tools.bench baselines_grid --data x", "split": {"what": "VAL"},
            "grid": {m: [point(p)] for m, p in chosen.items()}, "cost": {"points": 2, "runs": 4, "grid_wall_s": 1}}
    (tmp_path / "baselines-grid-mnist.json").write_text(json.dumps(grid))
    assert G.chosen_settings("mnist", "lenet5", tmp_path)[0] == chosen
    assert G.chosen_settings("mnist", "resnet18", tmp_path)[0] == {}
    res = _result([_run(0, 98.0, 90.0)])
    res["pnc_config"] = BuildConfig(data_fraction=0.1).to_dict()
    res["baseline_settings"] = {"source": "the grid", "params": {m: {**G.default_params(m, 1), **p}
                                                                  for m, p in chosen.items()}}
    res["figures"] = ["paper-mnist-accuracy.png"]
    (tmp_path / "archive").mkdir()
    for name, data in (("paper-mnist", res),  # written as the bench writes them, less the figures (drawn above)
                       ("paper-mnist-inversion", {**res, "pnc_config": {**res["pnc_config"], "negatives": "x"},
                                                  "table": [r for r in res["table"] if r["method"] == "pnc"]}),
                       ("paper-mnist-val", {**res, "baseline_settings": None, "command": "VAL RUN",  # built-in
                                            "split": {"name": "val", "size": 9, "seed": 0}}),  # fine-tuning settings
                       ("archive/paper-mnist", {**res, "command": "ARCHIVED RUN"})):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / "format.json").write_text(json.dumps({"command": "python -m tools.bench format"}))
    (tmp_path / "format.md").write_text("FORMAT TABLE\n")
    md = report.write_results_md(tmp_path, tmp_path / "RESULTS.md", draw=False).read_text()
    assert "![paper-mnist-accuracy](results/paper-mnist-accuracy.png)" in md
    assert md.count("## Paper main table") == 2 and "## Paper main table — mnist (lenet5)" in md
    assert "No test-split table" not in md
    assert "## Verdict" in md and md.index("## Verdict") < md.index("## Paper main table")
    assert "a single seed [0]: no spread" in md and "| Continual + KD | lr=0.0001, epochs=1, kd_weight=10" in md
    assert "| continual_kd | lr=0.0001, epochs=1, kd_weight=10, kd_T=2 | 91.00 | 88.00 | 1 |" in md
    stale = md.split("## Not rendered")[1].split("##")[0]
    assert "paper-mnist-inversion.json`: pnc: not built with the builder's current defaults" in stale
    assert "paper-mnist-val.json" not in stale and "paper-mnist.json" not in stale
    val = md.split("## Paper main table — mnist [VALIDATION split: 9 training images, seed 0]")[1].split("\n## ")[0]
    assert "left out, not at the current settings: continual_kd: trained with" in val and "lora: trained" in val
    assert "| Continual + KD |" not in val and "| **PNC (full)** |" in val and "VAL RUN" in val
    assert "ARCHIVED RUN" not in md and "archive/paper" not in md
    assert "[format.md](results/format.md) | `python -m tools.bench format`" in md and "FORMAT TABLE" not in md
    cmds = md.split("## Commands")[1].split("```")[1]
    assert cmds.split()[:3] == ["python", "-m", "tools.bench"] and "baselines_grid --data x" in cmds
    assert "python -m tools.bench report" in cmds and "ARCHIVED" not in cmds


def test_reuse_runs_only_missing_seeds(tmp_path, monkeypatch):
    calls = []

    def fake_run_seed(args, dataset, seed, log=print):
        calls.append(seed)
        return _run(seed, 97.0, 90.0)

    monkeypatch.setattr(paper, "run_seed", fake_run_seed)
    args = paper.parse_args(["--data", "mnist5k", "--workdir", str(tmp_path), "--reuse", "--methods",
                             "continual_kd,ensemble,pnc,lora"])
    log = lambda *a: None  # noqa: E731
    paper.cached_seed(args, None, 0, log=log)
    again = paper.cached_seed(args, None, 0, log=log)
    assert calls == [0] and again["cached"]
    args.ft_epochs = 3  # another setting: the stored rows no longer apply
    paper.cached_seed(args, None, 0, log=log)
    assert calls == [0, 0]


def test_table_names_the_reused_seeds_and_their_own_wall_time():
    assert report.reused_note({"cached_seeds": [], "seed_wall_s": {"0": 5.0}}) == ""
    note = report.reused_note({"cached_seeds": [1, 2], "seed_wall_s": {"0": 5.0, "1": 700.5, "2": 710.0}})
    assert "reused for seeds [1, 2]: seed 1 700.5 s, seed 2 710.0 s" in note and "seed 0" not in note


def test_scale_compression_and_offline_share_of_a_fresh_delta(tmp_path):
    import torch

    from pnc_pack.builder.api import fresh_delta
    from pnc_pack.zoo.config import ModelConfig
    from pnc_pack.zoo.pretrained import local_ref, save_pretrained
    from pnc_pack.zoo.registry import build_model

    refs, models = [], []
    for i in range(2):
        torch.manual_seed(i)
        m = build_model("lenet5", {"num_classes": 5})
        cfg = ModelConfig("lenet5", dict(m.arch_args), [{"label": j, "name": str(j)} for j in range(5)],
                          list(m.input_shape))
        refs.append(local_ref(save_pretrained(m, cfg, tmp_path / str(i))))
        models.append(m)
    delta = fresh_delta(models[0], models[1], 1, refs[0], refs[1])
    c = scale.compression(delta)
    assert c["safetensors_zstd9_bytes"] < c["safetensors_bytes"]
    assert 0 < c["payload_zstd+bytegroup_bytes"] <= c["delta_file_bytes"]
    share = scale.offline_share(delta, models[0], models[1], tmp_path / "offline")
    assert share["delta_bytes"] == c["delta_file_bytes"] and share["delta_share_of_offline"] < scale.GOALS["lenet5"]
