"""Exemplars of the target's classes (issue 19 item 6): accuracy of the M clone against N, on the VALIDATION split.

    python -m tools.bench exemplars [--data idx:data/fashion-mnist,idx:data/mnist] [--ns 0,5,20,100] [--seed 0]

Per dataset: the validation split of ``tools.bench paper --split val`` (``--val-size`` training images drawn with
``--val-seed``; the test split is never loaded), the LeNet-5 target on 0-4 and source on 5-9 trained on the rest
(the same cache as ``paper --split val``: ``runs/bench-paper/<data>-val<size>s<seed>/lenet5/seed<S>``), then the
M clone (5, 6, 7; default builder) with N = 0 (data-free, the default) and each N of ``--ns`` real training
images per target class as negatives (``build_clone(exemplars=..., exemplars_per_class=N)``; drawn from the same
training images the zoo models trained on, never from the validation images). One seed, modest size: the machine
is shared (2 cores). Writes tools/bench/results/exemplars<TAG>.json, .md and .png (Avg, Ori, Tar against N).
``--no-exemplar-calibration``: the exemplars as negatives only (the routing calibration keeps its fixed recall).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tools.bench import RESULTS, add_device_option, device_dir, device_of, device_record, write_result

ROOT = Path(__file__).resolve().parents[2]


def draw(path, out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(out["datasets"]), figsize=(4.6 * len(out["datasets"]), 3.8), squeeze=False)
    for ax, (name, d) in zip(axes[0], out["datasets"].items()):
        rows = d["rows"]
        ns = [r["n"] for r in rows]
        xs = list(range(len(ns)))
        for key, style in (("avg", "o-"), ("ori", "s--"), ("tar", "^:")):
            ax.plot(xs, [100 * r[key] for r in rows], style, label=key.capitalize() + "M")
        ax.set_xticks(xs, [("0 (data-free)" if n == 0 else str(n)) for n in ns])
        ax.set_xlabel("exemplars per target class (N)")
        ax.set_ylabel("accuracy on the validation split (%)")
        ax.set_title(f"{name}: M clone (5,6,7), seed {out['seed']}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(out: dict, name: str = "exemplars") -> None:
    """results/NAME.md and NAME.png from ``out`` (also from a partial NAME.json: ``render(json.load(...))``)."""
    draw(RESULTS / f"{name}.png", out)
    split, secs = out["split"], out.get("seconds", "unfinished run:")
    lines = [f"# Exemplars of the target's classes: M clone {out['clone']} against N, VALIDATION split", "",
             f"Command: `{out['command']}` ({secs} s, one seed ({out['seed']}), on the shared 2-core machine). Split: "
             f"{split['size']} training images drawn with seed {split['seed']}; models, D_t and exemplars come from "
             f"the other training images; the test split is not loaded. Figure: `{name}.png`. Calibration from "
             f"held-out exemplars: {out['exemplar_calibration']}.",
             "", "| data | N per class | OriM | TarM | AvgM | R | negatives (of them exemplar copies) | build s |",
             "|---|---|---|---|---|---|---|---|"]
    for data, d in out["datasets"].items():
        for r in d["rows"]:
            lines.append(f"| {data} | {r['n'] or '0 (data-free)'} | {100 * r['ori']:.2f} | {100 * r['tar']:.2f} | "
                         f"{100 * r['avg']:.2f} | {r['R']} | {r['negatives']} ({r['negatives_exemplars']}) | "
                         f"{r['build_s']} |")
    write_result(name, out, "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench exemplars")
    ap.add_argument("--data", default="idx:data/fashion-mnist,idx:data/mnist")
    ap.add_argument("--ns", default="0,5,20,100")
    ap.add_argument("--clone", default="5,6,7")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-size", type=int, default=10000)
    ap.add_argument("--val-seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=5, help="zoo models' epochs (paper's default)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench-paper")
    ap.add_argument("--no-exemplar-calibration", action="store_true",
                    help="exemplars as negatives only; the calibration keeps its fixed recall")
    ap.add_argument("--tag", default="", help="results/exemplars<TAG>.*")
    add_device_option(ap)
    args = ap.parse_args(argv)
    dev = device_of(ap, args)
    from pnc_pack.builder import build_clone
    from pnc_pack.data import load_dataset
    from tools.bench.paper import slug, validation_split, zoo_model

    ns, clone = [int(v) for v in args.ns.split(",")], [int(v) for v in args.clone.split(",")]
    cmd = "python -m tools.bench exemplars " + " ".join(argv)
    out = {"command": cmd.strip(), **device_record(dev), "seed": args.seed, "split": {"name": "val", "size": args.val_size,
           "seed": args.val_seed}, "clone": clone, "datasets": {}}
    extra = {"exemplar_calibration": False} if args.no_exemplar_calibration else {}
    out["exemplar_calibration"] = not args.no_exemplar_calibration
    name = f"exemplars{args.tag}"
    t0 = time.perf_counter()
    for spec in args.data.split(","):
        ds = validation_split(load_dataset(spec), args.val_size, args.val_seed)
        wd = (args.workdir / f"{slug(spec)}-val{args.val_size}s{args.val_seed}" / "lenet5"
              / f"seed{args.seed}{device_dir(dev)}")
        t_dir, _, t_cfg, _ = zoo_model(wd, "target", ds, spec, "lenet5", [0, 1, 2, 3, 4], args.epochs, args.seed, 0.0,
                                       device=dev)
        s_dir, *_ = zoo_model(wd, "source", ds, spec, "lenet5", [5, 6, 7, 8, 9], args.epochs, args.seed, 0.0,
                              device=dev)
        d = out["datasets"][slug(spec)] = {"spec": spec, "target_val_acc": t_cfg.training.get("test_accuracy"),
                                           "rows": []}
        for n in ns:
            t1 = time.perf_counter()
            delta = build_clone(str(t_dir), str(s_dir), ds, clone, seed=args.seed, eval_data=ds, device=dev,
                                **(dict(exemplars=ds, exemplars_per_class=n, **extra) if n else {}))
            e, m = delta.metrics["eval"], delta.metrics
            row = {"n": n, "ori": e["ori"], "tar": e["tar"], "avg": e["avg"], "R": m["R"],
                   "negatives": m["negatives"], "negatives_exemplars": m.get("negatives_exemplars", 0),
                   "per_class": e["per_class"], "build_s": round(time.perf_counter() - t1, 1),
                   "exemplars_sha256": delta.provenance.get("exemplars", {}).get("sha256"),
                   "calibration": m.get("calibration")}
            d["rows"].append(row)
            print(f"{slug(spec)} N={n}: Ori {100 * e['ori']:.2f} Tar {100 * e['tar']:.2f} Avg {100 * e['avg']:.2f} "
                  f"(R={m['R']}, {row['build_s']} s)", flush=True)
            write_result(name, out)  # partial results survive an interrupted run
    out["seconds"] = round(time.perf_counter() - t0, 1)
    render(out, name)
    print(json.dumps({k: v for k, v in out.items() if k != "datasets"}))
    return 0
