"""Repair on MNIST (issue 4): a clone damaged on purpose loses accuracy; repair on a few hundred samples brings it back.

LeNet-5 target on 0-4, source on 5-9 (trained once and cached by :mod:`tools.bench.mnist_pnc`), the M clone
(5, 6, 7) built with 10% of D_t. Its adapter and classifier tensors are then damaged two ways
(:mod:`pnc_pack.clone.damage`): rounded to each of ``--bits`` bits (one scale per tensor), and perturbed with
Gaussian noise of each of ``--noise`` times each tensor's RMS. Each damaged delta is repaired the way a receiver
would, with the command line::

    pnc-pack apply damaged.pncd --repair-data idx:data/mnist --repair-samples 300 -o repaired.pncd --json

(adapter and classifier only; ``--samples`` training images stratified over the clone's 8 output classes, the
target's 0-4 included so that the new heads also learn what is *not* theirs), and the written repaired delta is
applied again and evaluated. Further repair seeds (other sample draws) go through the same
``pnc_pack.clone.repair.repair`` in-process. Ori / Tar / Avg on the whole test split, against the undamaged clone.
Writes tools/bench/results/repair.json and .md.

    python -m tools.bench repair --data idx:data/mnist --steps 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from tools.bench import add_device_option, device_of, write_result

CLONE = [5, 6, 7]


def _scores(ev: dict) -> dict:
    return {k: round(100 * ev[k], 2) for k in ("ori", "tar", "avg")}


def _cli_repair(path: Path, out: Path, data: str, samples: int, epochs: int, device: str = "cpu"
                ) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "pnc_pack", "apply", str(path), "--repair-data", data, "--repair-samples",
           str(samples), "--repair-epochs", str(epochs), "-o", str(out), "--json", "--device", device]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)["repair"], time.perf_counter() - t0


def _code_version() -> str:
    """The commit the benchmark ran at, and whether the working tree had changes (results travel with code)."""
    git = ["git", "-C", str(Path(__file__).resolve().parent)]
    try:
        head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' with uncommitted changes' if dirty else ''}" if head else "unknown"


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench repair")
    ap.add_argument("--data", default=None, help="default: idx:data/mnist if present, else mnist5k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-fraction", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=None, help="builder steps per position (default: the builder's)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the zoo models (as mnist_pnc)")
    ap.add_argument("--bits", default="4,2", help="comma-separated: one damage per bit width")
    ap.add_argument("--noise", default="0.5,1.0", help="comma-separated: one damage per noise scale (x RMS)")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repair-epochs", type=int, default=8)
    ap.add_argument("--repair-seeds", type=int, default=3, help="sample draws per damage (the first through the CLI)")
    ap.add_argument("--workdir", default="/tmp/pnc-bench-mnist")
    add_device_option(ap)
    args = ap.parse_args(argv)
    dev = device_of(ap, args)
    import torch

    from pnc_pack.api.model import apply
    from pnc_pack.builder import build_clone
    from pnc_pack.clone.damage import perturb, quantize
    from pnc_pack.clone.evaluate import evaluate_delta_model
    from pnc_pack.clone.repair import repair
    from pnc_pack.format import codec
    from tools.bench.mnist_pnc import mnist_data, zoo_models
    from tools.bench.report import machine

    torch.set_num_threads(1)
    data, ds = mnist_data(args.data)
    models = zoo_models(ds, args.workdir, args.seed, args.epochs, dev)
    work = models["target"].parent
    steps = f"steps{args.steps}" if args.steps else "default"
    delta_path = work / f"repair-M-{steps}-frac{args.data_fraction}.pncd"
    build_s = None
    if not delta_path.is_file():  # the build is deterministic: a cached delta is the same bytes
        t0 = time.perf_counter()
        extra = {"steps": args.steps} if args.steps else {}
        delta = build_clone(str(models["target"]), str(models["source"]), ds, CLONE, seed=args.seed,
                            data_fraction=args.data_fraction, device=dev, **extra)
        build_s = round(time.perf_counter() - t0, 1)
        codec.save(delta, delta_path)
    delta = codec.load(delta_path)
    good = _scores(evaluate_delta_model(apply(delta_path, device=dev), ds))
    print(f"undamaged M clone {CLONE}: {good}")
    command = "python -m tools.bench repair" + (f" --data {args.data}" if args.data else "") + \
        (f" --steps {args.steps}" if args.steps else "") + (f" --device {args.device}" if args.device != "auto" else "")
    out = {"command": command, "machine": machine(), "code": _code_version(), "data": data, "clone": CLONE,
           "device": str(dev),
           "seed": args.seed,
           "data_fraction": args.data_fraction, "builder_steps": args.steps or "default", "build_seconds": build_s,
           "repair_samples": args.samples, "repair_epochs": args.repair_epochs, "undamaged": good, "rows": []}
    out["delta_tensors"] = {**{f"adapter.{k}": list(v.shape) for k, v in delta.modules[0].adapter.items()},
                            **{f"classifier.{k}": list(v.shape) for k, v in delta.classifier.items()}}
    damages = {f"{b}-bit": quantize(delta, int(b)) for b in args.bits.split(",") if b}
    damages.update({f"noise {x}xRMS": perturb(delta, float(x), seed=args.seed) for x in args.noise.split(",") if x})
    for name, damaged in damages.items():
        slug = name.replace(" ", "").replace("-", "")
        path, fixed = work / f"repair-damaged-{slug}.pncd", work / f"repair-repaired-{slug}.pncd"
        codec.save(damaged, path)
        for seed in range(args.repair_seeds):
            if seed == 0:
                rep, secs = _cli_repair(path, fixed, data, args.samples, args.repair_epochs, str(dev))
                before, after = _scores(rep["before"]), _scores(rep["after"])
                reapplied = _scores(evaluate_delta_model(apply(fixed, device=dev), ds))
                assert reapplied == after, (reapplied, after)  # the written delta is the repaired clone
                how = "CLI (repaired delta written, re-applied)"
            else:
                t0 = time.perf_counter()
                res = repair(apply(path, device=dev), ds, epochs=args.repair_epochs, samples=args.samples, seed=seed)
                secs = time.perf_counter() - t0
                before, after = _scores(res.before), _scores(res.after)
                how = "API"
            row = {"damage": name, "repair_seed": seed, "via": how, "ori_before": before["ori"],
                   "tar_before": before["tar"], "avg_before": before["avg"], "ori_after": after["ori"],
                   "tar_after": after["tar"], "avg_after": after["avg"],
                   "avg_gap_before": round(before["avg"] - good["avg"], 2),
                   "avg_gap_after": round(after["avg"] - good["avg"], 2), "repair_s": round(secs, 1)}
            out["rows"].append(row)
            print(json.dumps(row))
    gaps = [r["avg_gap_after"] for r in out["rows"]]
    out["worst_gap_after"] = min(gaps)
    out["goal_within_1_point"] = all(g >= -1.0 for g in gaps)
    write_result("repair", out, markdown(out))
    print(markdown(out))
    return 0


def markdown(out: dict) -> str:
    """repair.md from repair.json's content."""
    good = out["undamaged"]
    lines = [f"Repair on `{out['data']}` (code {out.get('code', 'unknown')}): M clone {out['clone']}, "
             f"{out['data_fraction']:.0%} of D_t, builder steps {out['builder_steps']} (build "
             f"{out['build_seconds']} s); undamaged Ori/Tar/Avg {good['ori']}/{good['tar']}/{good['avg']}. Repair: "
             f"{out['repair_samples']} samples, {out['repair_epochs']} epochs, adapter and classifier only.", "",
             "| damage | seed | via | Avg before (vs undamaged) | Avg after (vs undamaged) | Ori/Tar before | "
             "Ori/Tar after | repair s |", "|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        lines.append(f"| {r['damage']} | {r['repair_seed']} | {r['via']} | {r['avg_before']} "
                     f"({r['avg_gap_before']:+.2f}) | {r['avg_after']} ({r['avg_gap_after']:+.2f}) | "
                     f"{r['ori_before']}/{r['tar_before']} | {r['ori_after']}/{r['tar_after']} | {r['repair_s']} |")
    lines += ["", "Damaged tensors (all the clone's own): " + ", ".join(f"{k} {v}" for k, v in
                                                             out["delta_tensors"].items()) + "; rounding uses one "
              "scale per tensor, so a tensor of one or two numbers is exact at any width."]
    lines += ["", f"Goal (Avg back within 1 point of the undamaged clone) met for every row: "
              f"{'yes' if out['goal_within_1_point'] else 'no'} (worst {out['worst_gap_after']:+.2f})."]
    return "\n".join(lines) + "\n"
