"""The paper's main table (PAPER.md §6.1) on a dataset we have: ``python -m tools.bench paper [OPTIONS]``.

    python -m tools.bench paper --data idx:data/mnist --seeds 0,1,2
    python -m tools.bench paper --data idx:data/fashion-mnist

Protocol (PAPER.md §4): a target zoo model trained on ``--target-classes`` (T_t), a source on ``--source-classes``;
setting S clones ``--clone-s`` (k=1), setting M ``--clone-m`` (k=3) from the source into the target, using only
``--data-fraction`` of the training images of the cloned classes (D_t, stratified, drawn with the seed). Ori = top-1
accuracy on the test images of T_t, Tar = on those of the cloned classes, both over all |T_t|+k outputs of the merged
model; Avg = (|T_t|·Ori + k·Tar)/(|T_t|+k). Rows: the paper's baselines (:mod:`tools.bench.baselines`), the three PNC
rows through the builder (:mod:`tools.bench._pnc_rows`), and PEFT LoRA rows. Each row also reports the bytes a receiver
must download given the zoo models it already holds, and the training wall time.

Zoo models are trained once per (dataset, arch, classes, epochs, seed) and cached under ``--workdir``
(``runs/bench-paper`` by default: ``<dataset>/seed<S>/{target,source}``, ordinary model folders). Several seeds
(``--seeds 0,1,2``): each seed trains its own zoo models, draws its own D_t and reports; the table shows mean ± sample
std (ddof=1). Results: ``tools/bench/results/paper-<dataset>.json`` / ``.md`` / ``-*.png``; then RESULTS.md is
regenerated (:mod:`tools.bench.report`).

Validation protocol (issue 19): ``--split val`` carves ``--val-size`` images (default 10,000, drawn with
``--val-seed``, default 0) from the *training* images and scores every row on them instead of the test split; zoo
models, D_t, Joint and every row then train on the remaining training images only (cached apart, under
``<dataset>-val<size>s<seed>``). Settings are chosen on that split; the test split only reports.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from tools.bench import add_device_option, device_of, device_record
from tools.bench._table import CLASS_SPLIT, METHOD_NAMES, METHOD_ORDER, PNC_METHODS, aggregate, judge  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


def _ints(text: str) -> list[int]:
    try:
        out = [int(t) for t in str(text).split(",") if t.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return out


def _setting(text: str) -> tuple[str, object]:
    """KEY=VALUE -> (key, value), the value parsed as JSON when it is JSON (numbers, true/false, null)."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def default_data() -> str:
    """``idx:data/mnist`` when full MNIST is there (``python tools/fetch_data.py``), else the packaged mnist5k."""
    d = ROOT / "data" / "mnist"
    if (d / "train-images-idx3-ubyte").is_file() or (d / "train-images-idx3-ubyte.gz").is_file():
        return "idx:data/mnist"
    print("paper: full MNIST not found at data/mnist (run `python tools/fetch_data.py`); "
          "using the packaged 5,000-image subset --data mnist5k", file=sys.stderr)
    return "mnist5k"


def slug(spec: str) -> str:
    kind, _, arg = spec.partition(":")
    if not arg:
        return kind
    name = Path(arg.rstrip("/")).name
    return (Path(name).stem if kind == "npz" else name) or kind


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench paper", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="dataset spec (default idx:data/mnist if present, else mnist5k)")
    ap.add_argument("--arch", default="lenet5")
    ap.add_argument("--target-classes", type=_ints, default=list(CLASS_SPLIT["target_classes"]))
    ap.add_argument("--source-classes", type=_ints, default=list(CLASS_SPLIT["source_classes"]))
    ap.add_argument("--clone-s", type=_ints, default=list(CLASS_SPLIT["clone_s"]), help="classes cloned in setting S")
    ap.add_argument("--clone-m", type=_ints, default=list(CLASS_SPLIT["clone_m"]), help="classes cloned in setting M")
    ap.add_argument("--data-fraction", type=float, default=0.1, help="share of the cloned classes' training data (D_t)")
    ap.add_argument("--seed", type=int, default=0)
    add_split_options(ap)
    ap.add_argument("--seeds", type=_ints, default=None, help="several seeds: mean ± std (overrides --seed)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench-paper", help="zoo-model cache")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of the zoo models and of Joint + Full Set")
    ap.add_argument("--ft-epochs", type=int, default=10, help="passes over D_t for Continual(+KD) and LoRA rows "
                    "that take the built-in settings")
    ap.add_argument("--baseline-settings", choices=("grid", "builtin"), default="grid",
                    help="settings of the fine-tuning rows: those `python -m tools.bench baselines_grid` chose on "
                         "the validation split (results/baselines-grid-<dataset>.json; built-in ones when absent), "
                         "or the built-in ones")
    ap.add_argument("--pnc-steps", type=int, default=None, help="training steps per insertion position for the "
                    "builder (default: the builder's own BuildConfig.steps)")
    ap.add_argument("--pnc-set", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                    help="a builder setting for the PNC rows (pnc_pack/builder/config.py), e.g. negatives=inversion; "
                         "repeatable")
    ap.add_argument("--zoo-label-smoothing", type=float, default=0.0)
    ap.add_argument("--methods", default=",".join(METHOD_ORDER), help="comma-separated subset of: "
                    + ",".join(METHOD_ORDER))
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    ap.add_argument("--tag", default="", help="suffix of the result files (paper-<dataset><tag>.json)")
    ap.add_argument("--reuse", action="store_true", help="reuse the stored rows of seeds already run with the "
                    "same settings (<workdir>/<dataset>/<arch>/seed<S>/paper-run.json)")
    ap.add_argument("--no-report", action="store_true", help="do not regenerate RESULTS.md")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on this 2-core machine, "
                    "shared with other work, LeNet-5 training measured 5,055 img/s with 1 thread and 280 img/s with "
                    "2, OpenMP threads spinning against other processes; 0 = torch's own default)")
    add_device_option(ap)
    args = ap.parse_args(argv)
    args.dev = device_of(ap, args)
    bad = [m for m in args.methods.split(",") if m and m not in METHOD_ORDER]
    if bad:
        ap.error(f"unknown method(s) {bad}; known: {METHOD_ORDER}")
    args.methods = [m for m in METHOD_ORDER if m in args.methods.split(",")]
    args.pnc_set = dict(args.pnc_set)
    if args.pnc_set:
        from pnc_pack.builder.config import BuildConfig
        from pnc_pack.errors import PncError

        try:
            BuildConfig.with_overrides(**args.pnc_set)
        except PncError as exc:
            ap.error(f"--pnc-set: {exc}")
    for name in ("clone_s", "clone_m"):
        extra = set(getattr(args, name)) - set(args.source_classes)
        if extra:
            ap.error(f"--{name.replace('_', '-')}: {sorted(extra)} not among --source-classes")
    if set(args.target_classes) & set(args.source_classes):
        ap.error("--target-classes and --source-classes overlap")
    if not 0.0 < args.data_fraction <= 1.0:
        ap.error("--data-fraction must be in (0, 1]")
    if args.data is None:
        args.data = default_data()
    from tools.bench.baselines_grid import chosen_settings

    args.baseline_params, args.baseline_source = (chosen_settings(slug(args.data), args.arch, args.out)
                                                  if args.baseline_settings == "grid" else ({}, "built-in settings"))
    if args.split == "val" and "val" not in args.tag:  # validation results never overwrite the test-split files
        args.tag = f"-val{args.tag}"
    return args


def add_split_options(ap) -> None:
    """--split, --val-size, --val-seed: the paper bench's, and every tool that reads its results (routing)."""
    ap.add_argument("--split", choices=("test", "val"), default="test",
                    help="score on the test split (reporting) or on a validation split carved from the training "
                         "images (tuning); with val every model trains on the rest of the training images")
    ap.add_argument("--val-size", type=int, default=10000, help="images in the validation split (--split val)")
    ap.add_argument("--val-seed", type=int, default=0, help="seed that draws the validation split (--split val)")


def load_split(args):
    """The dataset of ``args.data`` as ``args.split`` asks: as is, or its validation split as the test split."""
    from pnc_pack.data import load_dataset

    dataset = load_dataset(args.data)
    return validation_split(dataset, args.val_size, args.val_seed) if args.split == "val" else dataset


def data_key(args) -> str:
    """The cache folder name of the data the rows train on: the dataset, or its training images less validation."""
    return slug(args.data) + ("" if args.split == "test" else f"-val{args.val_size}s{args.val_seed}")


def seed_dir(args, seed: int) -> Path:
    """Where one seed's zoo models, deltas and rows are cached: apart per kind of device (``tools.bench.device_dir``)."""
    from tools.bench import device_dir

    return args.workdir / data_key(args) / args.arch / f"seed{seed}{device_dir(args.dev)}"


def validation_split(dataset, size: int, seed: int):
    """``dataset`` with ``size`` of its training images (drawn by a keyed hash of ``seed``) as its test split and
    the rest as its training split; the original test split is dropped, so nothing downstream can score on it."""
    from dataclasses import replace

    import torch

    from pnc_pack.data.dataset import keyed_order
    from pnc_pack.errors import UsageError

    X, y = dataset.train
    if not 0 < size < len(y):
        raise UsageError(f"--val-size must be in 1..{len(y) - 1}, got {size}")
    order = torch.from_numpy(keyed_order(len(y), seed, "validation"))
    val, rest = order[:size].sort().values, order[size:].sort().values
    return replace(dataset, name=f"{dataset.name}-val{size}s{seed}", train=(X[rest], y[rest]), test=(X[val], y[val]))


# -- zoo models ---------------------------------------------------------------------------------------------------
def zoo_model(workdir: Path, role: str, dataset, spec: str, arch: str, classes, epochs: int, seed: int,
              label_smoothing: float, log=print, device=None):
    """(folder, model, config, train_s): trained once, then loaded from ``workdir/role`` when settings match."""
    from pnc_pack.devices import resolve_device
    from pnc_pack.zoo.config import read_config
    from pnc_pack.zoo.pretrained import load_pretrained, save_pretrained
    from pnc_pack.zoo.training import train_model

    folder = workdir / role
    times = workdir / f"{role}.train_s.json"
    dev = resolve_device(device)  # a model trained elsewhere than on the CPU records it, and is cached apart
    want = {"data": dataset.name, "classes": list(classes), "epochs": epochs, "seed": seed,
            "label_smoothing": float(label_smoothing), "device": None if dev.type == "cpu" else dev.type}
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        cfg = read_config(folder)
        if cfg.arch == arch and all(cfg.training.get(k) == v for k, v in want.items()):
            model, cfg = load_pretrained(folder)
            train_s = json.loads(times.read_text())["train_s"] if times.is_file() else None
            log(f"  zoo {role}: cached {folder} (test acc {cfg.training.get('test_accuracy')})")
            return folder, model, cfg, train_s
    t0 = time.perf_counter()
    model, cfg = train_model(arch, None, dataset, list(classes), epochs=epochs, seed=seed,
                             label_smoothing=label_smoothing, device=device)
    train_s = round(time.perf_counter() - t0, 3)
    save_pretrained(model, cfg, folder)
    from pnc_pack.fsutil import atomic_write

    atomic_write(times, json.dumps({"train_s": train_s}).encode())
    log(f"  zoo {role}: trained in {train_s:.1f}s, test acc {cfg.training.get('test_accuracy')}")
    return folder, model, cfg, train_s


# -- one seed -----------------------------------------------------------------------------------------------------
def run_seed(args, dataset, seed: int, log=print) -> dict:
    import torch

    from pnc_pack.data import fit_to_shape, select_classes, take_fraction
    from tools.bench import _pnc_rows as pnc_rows
    from tools.bench import baselines as B

    wd = seed_dir(args, seed)
    t_dir, target, t_cfg, t_s = zoo_model(wd, "target", dataset, args.data, args.arch, args.target_classes,
                                          args.epochs, seed, args.zoo_label_smoothing, log, args.dev)
    s_dir, source, s_cfg, s_s = zoo_model(wd, "source", dataset, args.data, args.arch, args.source_classes,
                                          args.epochs, seed, args.zoo_label_smoothing, log, args.dev)
    target, source = target.to(args.dev), source.to(args.dev)  # the data stays on the CPU, moved per batch
    shape = target.input_shape
    Xo, yo = select_classes(*dataset.test, args.target_classes)
    ori_set = (fit_to_shape(Xo, shape), yo)
    out = {"seed": seed, "zoo": {
        "target": {"folder": str(t_dir), "test_accuracy": t_cfg.training.get("test_accuracy"), "train_s": t_s},
        "source": {"folder": str(s_dir), "test_accuracy": s_cfg.training.get("test_accuracy"), "train_s": s_s}},
        "settings": {}}
    for setting, clone in (("S", args.clone_s), ("M", args.clone_m)):
        log(f"seed {seed} setting {setting}: clone {clone} ({args.data_fraction:g} of their training data)")
        Xd, yd = select_classes(*dataset.train, clone)
        Xd, yd = take_fraction(Xd, yd, args.data_fraction, seed)
        Xt, yt = select_classes(*dataset.test, clone)
        tar_set = (fit_to_shape(Xt, shape), yt)
        task = B.Task(target, list(args.target_classes), source, list(args.source_classes), list(clone),
                      fit_to_shape(Xd, shape).to(args.dev), yd, seed)
        base = [m for m in args.methods if m not in PNC_METHODS]
        torch.manual_seed(seed)
        rows = B.run_all(task, dataset, args.arch, ori_set, tar_set, ft_epochs=args.ft_epochs,
                         joint_epochs=args.epochs, joint_label_smoothing=args.zoo_label_smoothing,
                         methods=base, log=log, params=args.baseline_params, device=args.dev)
        pnc = [m for m in args.methods if m in PNC_METHODS]
        r_search = {}
        if pnc:
            rows_p, r_search = pnc_rows.run(task, t_dir, s_dir, dataset, args.data_fraction, ori_set, tar_set,
                                            variants=pnc, steps=args.pnc_steps, workdir=wd / f"pnc-{setting}",
                                            log=log, settings=args.pnc_set, device=args.dev)
            rows.update(rows_p)
        out["settings"][setting] = {"clone": list(clone), "dt_samples": int(len(yd)), "rows": rows,
                                    "r_search": r_search}
    return out


def seed_key(args) -> dict:
    """Everything a seed's rows depend on besides the seed: a cached seed is reused only when all of it matches."""
    from tools.bench import _pnc_rows as pnc_rows

    return {"data": args.data, "arch": args.arch, "target_classes": args.target_classes,
            "source_classes": args.source_classes, "clone_s": args.clone_s, "clone_m": args.clone_m,
            "data_fraction": args.data_fraction, "epochs": args.epochs, "ft_epochs": args.ft_epochs,
            "pnc_steps": args.pnc_steps, "zoo_label_smoothing": args.zoo_label_smoothing, "methods": args.methods,
            "pnc_config": pnc_rows.config_dict(args.data_fraction, args.pnc_steps, args.pnc_set),
            **({"baseline_params": args.baseline_params} if args.baseline_params else {}),
            **device_record(args.dev),
            **({} if args.split == "test" else {"split": split_info(args)})}


def split_info(args) -> dict:
    """Which images the rows are scored on (recorded in every result)."""
    if args.split == "test":
        return {"name": "test", "what": "the dataset's test split"}
    return {"name": "val", "size": args.val_size, "seed": args.val_seed,
            "what": f"{args.val_size} training images drawn with seed {args.val_seed} (keyed hash); every model "
                    "trains on the remaining training images"}


def cached_seed(args, dataset, seed: int, log=print) -> dict:
    """run_seed, or its stored rows (``<workdir>/.../seed<S>/paper-run.json``) when ``--reuse`` and the key matches.

    Every finished seed is stored, so ``--seeds 0,1,2 --reuse`` after ``--seeds 0`` only runs seeds 1 and 2.
    """
    from pnc_pack.fsutil import atomic_write

    path = seed_dir(args, seed) / f"paper-run{args.tag}.json"
    key = json.loads(json.dumps(seed_key(args)))
    if args.reuse and path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            log(f"seed {seed}: reusing the stored rows of {path}")
            return {**stored["run"], "cached": True}
        log(f"seed {seed}: stored rows at {path} were made with other settings; running again")
    t0 = time.perf_counter()
    run = run_seed(args, dataset, seed, log=log)
    run["wall_s"] = round(time.perf_counter() - t0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"key": key, "run": run}, indent=1).encode())
    return run


def baseline_settings(args) -> dict:
    """The settings each fine-tuning row of this run took, and where they come from."""
    from tools.bench import baselines_grid as G

    rows = {m: {**G.default_params(m, args.ft_epochs), **args.baseline_params.get(m, {})}
            for m in G.TUNABLE if m in args.methods}
    return {"source": args.baseline_source, "params": rows}


def _loadavg():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _log(*a):
    print(*a, flush=True)


def main(argv=None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    import torch

    from tools.bench import report

    seeds = args.seeds if args.seeds is not None else [args.seed]
    load_start = _loadavg()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    dataset = load_split(args)
    _log(f"paper: {dataset!r}, arch {args.arch}, seeds {seeds}, torch threads {torch.get_num_threads()}")
    from tools.bench import _pnc_rows as pnc_rows
    from tools.bench import baselines as B

    defs = {**B.DEFINITIONS, **pnc_rows.definitions()}
    runs = []
    for s in seeds:
        runs.append(cached_seed(args, dataset, s, log=_log))
        if len(runs) < len(seeds):  # partial results after every seed but the last: a killed run keeps its seeds
            partial = _result(args, argv, seeds, runs, defs, t0, load_start, dataset)
            report.write_paper(partial, args.out, tag=args.tag)
            _log(f"paper: wrote the partial table of seeds {partial['seeds_done']} of {seeds}")
    result = _result(args, argv, seeds, runs, defs, t0, load_start, dataset)
    paths = report.write_paper(result, args.out, tag=args.tag)
    print(report.paper_table_md(result))
    print(result["judgement"]["summary"])
    print(f"paper: {result['wall_s']:.0f}s in all; wrote " + ", ".join(str(p) for p in paths))
    if not args.no_report and args.out.resolve() == RESULTS.resolve():
        print(f"paper: regenerated {report.write_results_md()}")
    return 0


def _result(args, argv, seeds, runs, defs, t0, load_start, dataset) -> dict:
    import torch

    from tools.bench import _pnc_rows as pnc_rows
    from tools.bench import report

    table = aggregate(runs, args.methods)
    return {
        "benchmark": "paper", "dataset": slug(args.data), "data_spec": args.data, "dataset_repr": repr(dataset),
        "arch": args.arch, "seeds": seeds, "seeds_done": [r["seed"] for r in runs], "split": split_info(args),
        "partial": len(runs) < len(seeds),
        "command": "python -m tools.bench paper " + " ".join(shlex.quote(a) for a in
                                                             (sys.argv[1:] if argv is None else argv)),
        "settings": {"target_classes": args.target_classes, "source_classes": args.source_classes,
                     "clone_s": args.clone_s, "clone_m": args.clone_m, "data_fraction": args.data_fraction,
                     "epochs": args.epochs, "ft_epochs": args.ft_epochs, "pnc_steps": args.pnc_steps,
                     "zoo_label_smoothing": args.zoo_label_smoothing, "methods": args.methods,
                     "torch_threads": torch.get_num_threads()},
        "pnc_config": pnc_rows.config_dict(args.data_fraction, args.pnc_steps, args.pnc_set),
        "baseline_settings": baseline_settings(args),
        "machine": report.machine(),
        "definitions": {m: defs[m] for m in args.methods if m in defs},
        "runs": runs, "table": table, "judgement": judge(table),
        "wall_s": round(time.perf_counter() - t0, 1),
        "loadavg_1min": {"start": load_start, "end": _loadavg()},
        "seed_wall_s": {str(r["seed"]): r.get("wall_s") for r in runs},
        "cached_seeds": [r["seed"] for r in runs if r.get("cached")],
    }


if __name__ == "__main__":
    sys.exit(main())
