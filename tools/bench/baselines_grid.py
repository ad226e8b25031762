"""Settings of the paper table's fine-tuning baselines, chosen on a validation split: ``python -m tools.bench
baselines_grid [OPTIONS]``.

    python -m tools.bench baselines_grid --data idx:data/mnist --seed 0

The zoo models, D_t and the validation split are those of ``python -m tools.bench paper --split val`` (the same
cache): ``--val-size`` training images drawn with ``--val-seed`` are scored, every model trains on the rest. Each
baseline of :data:`tools.bench.baselines_grid.TUNABLE` is run at every point of its small grid (:data:`GRID`) in settings
S and M; the point with the highest mean of AvgS and AvgM on the validation split is chosen (ties: the earlier
point). Written to ``results/baselines-grid-<dataset>.json`` (+ ``.md``): every point's Ori/Tar/Avg and the two
forgetting diagnostics (``ori_to_new``, ``ori_old_only``: see :func:`tools.bench.baselines.score`), the chosen
settings, the grid's cost (wall seconds, points). ``python -m tools.bench paper`` reads the chosen settings from
there (``--baseline-settings grid``, the default) and records them beside its table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from pathlib import Path

from tools.bench import add_device_option, device_dir, device_of, device_record

RESULTS = Path(__file__).resolve().parent / "results"

# The settings a tuned baseline may take (tools/bench/baselines_grid.py chooses them on a validation split); the
# built-in values (:func:`default_params`) are the ones used when no grid result is at hand (epochs: the bench's --ft-epochs).
TUNABLE = {"continual": ("lr", "epochs"), "continual_kd": ("lr", "epochs", "kd_weight", "kd_T"),
           "lora": ("lr", "epochs", "r"), "lora_kd": ("lr", "epochs", "r", "kd_weight", "kd_T"),
           "continual_kd_neg": ("lr", "epochs", "kd_weight", "kd_T"),
           "lora_kd_neg": ("lr", "epochs", "r", "kd_weight", "kd_T")}


def default_params(method: str, ft_epochs: int) -> dict:
    """The built-in settings of a fine-tuning baseline."""
    from tools.bench.baselines import KD_T, KD_WEIGHT, LORA_R

    base = {"lr": 5e-3 if method.startswith("lora") else 1e-3, "epochs": ft_epochs}
    if method.startswith("lora"):
        base["r"] = LORA_R
    if "kd" in method:
        base.update(kd_weight=KD_WEIGHT, kd_T=KD_T)
    return {k: base[k] for k in TUNABLE[method]}


def run_method(task, method: str, params: dict):
    """One fine-tuning baseline with the given settings (a full set: see :func:`default_params`)."""
    from tools.bench.baselines import continual, lora

    kd, neg = "kd" in method, method.endswith("_neg")
    p = dict(params)
    if method.startswith("lora"):
        return lora(task, epochs=int(p.pop("epochs")), kd=kd, negatives=neg, **p)
    return continual(task, epochs=int(p.pop("epochs")), kd=kd, negatives=neg, **p)


# A handful of points per baseline (a first round without lr 3e-4 / LoRA 3e-4 and 3 epochs found the best points on
# the grid's edge; the second round added them, reusing the first round's points). The built-in settings (lr 1e-3 / LoRA 5e-3, 10 epochs, KD weight 1 at T = 2,
# r = 8) are in every grid, so the table says what tuning bought.
GRID = {
    "continual": {"lr": [1e-4, 3e-4, 1e-3], "epochs": [1, 3, 10]},
    "continual_kd": {"lr": [1e-4, 3e-4, 1e-3], "epochs": [1, 3, 10], "kd_weight": [1.0, 10.0], "kd_T": [2.0, 4.0]},
    "lora": {"lr": [3e-4, 1e-3, 5e-3], "epochs": [1, 3, 10], "r": [4, 8]},
    "lora_kd": {"lr": [3e-4, 1e-3, 5e-3], "epochs": [1, 3, 10], "r": [8], "kd_weight": [1.0, 10.0], "kd_T": [2.0]},
    "continual_kd_neg": {"lr": [1e-4, 1e-3], "epochs": [1, 10], "kd_weight": [1.0], "kd_T": [2.0]},
    "lora_kd_neg": {"lr": [1e-3, 5e-3], "epochs": [1, 10], "r": [8], "kd_weight": [1.0], "kd_T": [2.0]},
}


def points(method: str) -> list[dict]:
    g = GRID[method]
    return [dict(zip(g, vals)) for vals in itertools.product(*g.values())]


def choose(rows: list[dict]) -> dict:
    """The row with the highest mean of AvgS and AvgM (the first of equals)."""
    return max(rows, key=lambda r: (r["avg_mean"], -rows.index(r)))


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench baselines_grid", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="idx:data/mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-size", type=int, default=10000)
    ap.add_argument("--val-seed", type=int, default=0)
    ap.add_argument("--methods", default=",".join(GRID), help="comma-separated subset of: " + ",".join(GRID))
    ap.add_argument("--workdir", type=Path, default=None, help="zoo-model cache (default: the paper bench's)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    add_device_option(ap)
    args = ap.parse_args(argv)
    args.dev = device_of(ap, args)
    args.methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in args.methods if m not in GRID]
    if bad:
        ap.error(f"unknown method(s) {bad}; known: {list(GRID)}")
    return args


def tasks(pargs, dataset, log=print):
    """({setting: (task, ori_set, tar_set)}, zoo record) on the validation split, as ``paper --split val`` has them."""
    from pnc_pack.data import fit_to_shape, select_classes, take_fraction
    from tools.bench import baselines as B
    from tools.bench import paper

    seed, dev = pargs.seed, pargs.dev
    wd = paper.seed_dir(pargs, seed)
    zoo = {}
    for role, classes in (("target", pargs.target_classes), ("source", pargs.source_classes)):
        folder, model, cfg, _ = paper.zoo_model(wd, role, dataset, pargs.data, pargs.arch, classes, pargs.epochs,
                                                seed, pargs.zoo_label_smoothing, log, dev)
        zoo[role] = (model.to(dev), cfg.training.get("test_accuracy"))
    target, source = zoo["target"][0], zoo["source"][0]
    shape = target.input_shape
    Xo, yo = select_classes(*dataset.test, pargs.target_classes)
    ori = (fit_to_shape(Xo, shape), yo)
    out = {}
    for setting, clone in (("S", pargs.clone_s), ("M", pargs.clone_m)):
        Xd, yd = take_fraction(*select_classes(*dataset.train, clone), pargs.data_fraction, seed)
        Xt, yt = select_classes(*dataset.test, clone)
        task = B.Task(target, list(pargs.target_classes), source, list(pargs.source_classes), list(clone),
                      fit_to_shape(Xd, shape).to(dev), yd, seed)
        out[setting] = (task, ori, (fit_to_shape(Xt, shape), yt))
    return out, {r: {"val_accuracy": acc} for r, (_, acc) in zoo.items()}


def _key(method: str, params: dict) -> str:
    return method + json.dumps(params, sort_keys=True)


def run_grid(settings: dict, methods, log=print, done: dict | None = None, after=None) -> dict:
    """{method: [row per point]} with each point's S and M scores on the validation split; a point in ``done``
    ({_key: row}, from an earlier run on the same split, models and D_t) is taken from there, not run again;
    ``after(grid)`` is called after each method (the partial result is written, so a stopped run keeps it)."""
    import torch

    from tools.bench import baselines as B

    grid = {}
    for m in methods:
        grid[m] = []
        for p in points(m):
            if _key(m, p) in (done or {}):
                grid[m].append({**done[_key(m, p)], "reused": True})
                continue
            row = {"params": p}
            for st, (task, ori, tar) in settings.items():
                torch.manual_seed(task.seed)
                sc = B.score(run_method(task, m, p), ori, tar, len(task.target_labels), task.k)
                row[st] = {k: sc.get(k) for k in ("ori", "tar", "avg", "ori_to_new", "ori_old_only", "train_s",
                                                   "loss")}
            row["avg_mean"] = round(sum(row[st]["avg"] for st in settings) / len(settings), 3)
            grid[m].append(row)
            log(f"  {m:<16} {json.dumps(p):<62} " + "  ".join(
                f"{st}: Ori {row[st]['ori']:6.2f} Tar {row[st]['tar']:6.2f} Avg {row[st]['avg']:6.2f} "
                f"->new {row[st]['ori_to_new']:5.1f}" for st in settings))
        if after is not None:
            after(grid)
    return grid


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    import torch

    from pnc_pack.data import load_dataset
    from tools.bench import paper

    torch.set_num_threads(1)
    pargs = paper.parse_args(["--data", args.data, "--split", "val", "--val-size", str(args.val_size),
                              "--val-seed", str(args.val_seed), "--seed", str(args.seed), "--device", str(args.dev)]
                             + (["--workdir", str(args.workdir)] if args.workdir else []))
    t0 = time.perf_counter()
    dataset = paper.validation_split(load_dataset(args.data), args.val_size, args.val_seed)
    settings, zoo = tasks(pargs, dataset, log=print)
    t1 = time.perf_counter()
    old = _earlier(args.out / f"baselines-grid-{stem_of(args.data, pargs.dev)}.json", pargs, args.seed)
    done = {_key(m, r["params"]): {k: v for k, v in r.items() if k != "reused"}
            for m, rows in (old.get("grid") or {}).items() for r in rows}
    cmd = "python -m tools.bench baselines_grid " + " ".join(shlex.quote(a) for a in argv)

    def result(grid, partial):
        return _result(args, pargs, old, {**grid}, zoo, cmd, time.perf_counter() - t1, t1 - t0, partial)

    grid = run_grid(settings, args.methods, log=lambda *a: print(*a, flush=True), done=done,
                    after=lambda g: write(result(g, True), args.out))
    out = result(grid, False)
    path = write(out, args.out)
    print(f"baselines_grid: chosen {json.dumps(out['chosen'])}; grid {out['cost']['grid_wall_s']:.0f} s in all; "
          f"wrote {path}")
    return 0


def _result(args, pargs, old, grid, zoo, cmd, wall, setup, partial) -> dict:
    from tools.bench import paper, report

    for m, rows in (old.get("grid") or {}).items():  # methods not asked for this time keep their earlier rows
        grid.setdefault(m, rows)
    walls = [*((old.get("cost") or {}).get("wall_s_per_invocation") or
               ([old["cost"]["grid_wall_s"]] if old.get("cost") else [])), round(wall, 1)]
    chosen = {m: choose(rows)["params"] for m, rows in grid.items()}
    return {"benchmark": "baselines_grid", "dataset": paper.slug(args.data), "data_spec": args.data,
            **device_record(pargs.dev),
           "arch": pargs.arch, "seed": args.seed, "split": paper.split_info(pargs),
           "command": cmd,
           "criterion": "highest mean of AvgS and AvgM on the validation split (ties: the earlier point)",
           "settings": {"target_classes": pargs.target_classes, "source_classes": pargs.source_classes,
                        "clone_s": pargs.clone_s, "clone_m": pargs.clone_m, "data_fraction": pargs.data_fraction,
                        "zoo_epochs": pargs.epochs},
           "zoo": zoo, "grid_spec": {**(old.get("grid_spec") or {}), **{m: GRID[m] for m in args.methods}},
           "grid": grid, "chosen": chosen, "cost": {
               "points": sum(len(v) for v in grid.values()), "runs": 2 * sum(len(v) for v in grid.values()),
               "grid_wall_s": round(sum(walls), 1), "wall_s_per_invocation": walls,
               "train_s_sum": round(sum(r[st]["train_s"] or 0 for v in grid.values() for r in v for st in "SM"), 1),
               "setup_wall_s": round(setup, 1), "torch_threads": 1}, "partial": partial,
           "commands": [*(old.get("commands") or ([old["command"]] if old.get("command") else [])), cmd],
           "machine": report.machine()}


def _earlier(path: Path, pargs, seed: int) -> dict:
    """An earlier result of this grid on the same split, zoo seed and classes (its points are reused), else {}."""
    from tools.bench import paper

    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    same = (old.get("split") == json.loads(json.dumps(paper.split_info(pargs))) and old.get("seed") == seed
            and old.get("arch") == pargs.arch and (old.get("settings") or {}).get("clone_m") == pargs.clone_m
            and (old.get("settings") or {}).get("data_fraction") == pargs.data_fraction
            and old.get("device") == device_record(pargs.dev).get("device"))
    return old if same else {}


def write(out: dict, folder: Path) -> Path:
    from pnc_pack.fsutil import atomic_write
    from tools.bench import _grid_md

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"baselines-grid-{stem_of(out['dataset'], out.get('device'))}"
    atomic_write(folder / f"{stem}.json", (json.dumps(out, indent=1, sort_keys=True) + "\n").encode())
    atomic_write(folder / f"{stem}.md", _grid_md.grid_markdown(out).encode())
    return folder / f"{stem}.json"


def stem_of(data: str, device=None) -> str:
    """The results' name after ``baselines-grid-``: the data's slug, with ``-cuda`` etc. for a grid run elsewhere
    than on the CPU (the paper bench reads the CPU grid's choice)."""
    from tools.bench import paper

    return paper.slug(data) + device_dir(device)


def chosen_settings(dataset: str, arch: str, folder: Path = RESULTS) -> tuple[dict, str]:
    """({method: settings}, where they come from) for the paper bench: the grid's choice for this dataset and
    architecture when its result is there, else ({}, a sentence saying the built-in settings are used)."""
    path = Path(folder) / f"baselines-grid-{dataset}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        if data.get("arch") == arch and isinstance(data.get("chosen"), dict):
            split = data.get("split") or {}
            return data["chosen"], (f"chosen on the validation split ({split.get('size')} training images, seed "
                                    f"{split.get('seed')}; zoo seed {data.get('seed')}) by `{data.get('command')}` "
                                    f"(results/{path.name})")
    return {}, f"built-in settings (no results/baselines-grid-{dataset}.json for {arch})"
