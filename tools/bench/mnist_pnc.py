"""The paper's MNIST protocol for the PNC builder (issue: builder): S clones class 5, M clones 5,6,7.

LeNet-5 target trained on 0-4, source on 5-9 (cached in --workdir), 10% of D_t, evaluation on the test set.
Reports Ori/Tar/Avg for S and M, the unmodified models' accuracy, chosen R and held-out loss per R, mask density,
delta size and build wall time. Writes tools/bench/results/mnist_pnc.json and .md.

    python -m tools.bench mnist_pnc --data idx:data/mnist
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from tools.bench import add_device_option, device_dir, device_of

RESULTS = Path(__file__).parent / "results"


def mnist_data(spec: str | None):
    """(spec, dataset): ``spec``, or full MNIST at data/mnist when present, else the 5k subset (said aloud)."""
    from pnc_pack.data import load_dataset

    data = spec or ("idx:data/mnist" if Path("data/mnist").is_dir() else "mnist5k")
    if spec is None and data == "mnist5k":
        print("full MNIST not found at data/mnist (run python tools/fetch_data.py): using the 5k subset")
    return data, load_dataset(data)


def zoo_models(ds, workdir: str, seed: int, epochs: int, device=None) -> dict:
    """{"target": folder, "source": folder}: LeNet-5 on 0-4 and on 5-9, trained once and cached in ``workdir``."""
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    work = Path(workdir) / ds.name.replace("/", "_") / f"seed{seed}{device_dir(device)}"
    models = {}
    for name, classes in (("target", [0, 1, 2, 3, 4]), ("source", [5, 6, 7, 8, 9])):
        folder = work / name
        if not (folder / "model.safetensors").is_file():
            model, config = train_model("lenet5", None, ds, classes, epochs=epochs, seed=seed, device=device)
            save_pretrained(model, config, folder)
        models[name] = folder
    return models


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench mnist_pnc")
    ap.add_argument("--data", default=None, help="default: idx:data/mnist if present, else mnist5k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-fraction", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/pnc-bench-mnist")
    add_device_option(ap)
    args = ap.parse_args(argv)
    dev = device_of(ap, args)
    from pnc_pack.builder import build_clone
    from pnc_pack.format import codec
    from pnc_pack.zoo.pretrained import load_pretrained
    from pnc_pack.zoo.training import evaluate, prepare_split

    data, ds = mnist_data(args.data)
    models = zoo_models(ds, args.workdir, args.seed, args.epochs, dev)
    out = {"data": data, "device": str(dev), "seed": args.seed, "data_fraction": args.data_fraction, "rows": {}}
    tgt, _ = load_pretrained(models["target"])
    Xt, yt = prepare_split(*ds.test, [0, 1, 2, 3, 4], tgt.input_shape)
    out["target_acc"] = round(evaluate(tgt, Xt, yt), 4)
    for name, classes in (("S", [5]), ("M", [5, 6, 7])):
        t0, c0 = time.perf_counter(), time.process_time()
        delta = build_clone(str(models["target"]), str(models["source"]), ds, classes, seed=args.seed,
                            eval_data=ds, data_fraction=args.data_fraction, device=dev)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        m, e = delta.metrics, delta.metrics["eval"]
        out["rows"][name] = {"classes": classes, "ori": e["ori"], "tar": e["tar"], "avg": e["avg"], "R": m["R"],
                             "loss_per_R": {r: v["total"] for r, v in m["loss_per_R"].items()},
                             "mask_density": m["mask_density"], "delta_bytes": len(codec.dumps(delta)),
                             "build_seconds": round(secs, 1),
                             "build_cpu_seconds": round(cpu, 1)}
        print(name, json.dumps(out["rows"][name]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mnist_pnc.json").write_text(json.dumps(out, indent=2, sort_keys=True))
    lines = [f"MNIST protocol on `{data}`, seed {args.seed}, {args.data_fraction:.0%} of D_t; target alone on 0-4: "
             f"{100 * out['target_acc']:.2f}%", "", "| clone | Ori | Tar | Avg | R | loss per R | mask density | "
             "delta bytes | build s (wall / CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in out["rows"].items():
        lines.append(f"| {name} {r['classes']} | {100 * r['ori']:.1f} | {100 * r['tar']:.1f} | {100 * r['avg']:.1f} | "
                     f"{r['R']} | {r['loss_per_R']} | {r['mask_density']:.3f} | {r['delta_bytes']} | "
                     f"{r['build_seconds']} / {r.get('build_cpu_seconds', '-')} |")
    lines += ["", f"Load average when it ended: {os.getloadavg()[0]:.1f} (2 cores; a higher load stretches wall time, "
              "not CPU time; torch runs single-threaded here when OMP_NUM_THREADS=1)"]
    (RESULTS / "mnist_pnc.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
