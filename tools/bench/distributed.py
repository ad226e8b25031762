"""Wall time of distributed builds (issue 22): source selection over 8 candidates and a 4-source build, serial
against ``--nproc N``, each a fresh ``python -m pnc_pack build`` process (start-up, torch import and the workers'
start included, as a user pays them); the deltas are compared byte for byte.

    python -m tools.bench distributed [--nproc 2] [--steps 40] [--threads 1] [--device auto]
                                      [--out tools/bench/results/distributed.json]

Models: LeNet-5s trained on scikit-learn digits (target 0-4; 8 candidates for 8,9 trained with seeds 0-7; 4
sources for {5}, {6}, {7}, {8,9}), written once under ``.bench-distributed/``. ``--device``: where every build runs
(``pnc-pack build --device``); elsewhere than on the CPU the builds also run ``--deterministic``, and byte-identity
of serial and distributed deltas is reported but not required (docs/devices.md: what CUDA reproduces).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tools.bench import add_device_option, device_of, device_record

ROOT = Path(__file__).resolve().parents[2]


def _models(work: Path) -> dict:
    from pnc_pack.data import load_dataset
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    ds = load_dataset("digits")
    want = {"target": ([0, 1, 2, 3, 4], 0), **{f"cand{i}": ([7, 8, 9], i) for i in range(8)},
            "s5": ([5, 6], 1), "s6": ([6, 7], 2), "s7": ([7, 8], 3), "s89": ([8, 9], 4)}
    for name, (classes, seed) in want.items():
        if not (work / name / "config.json").exists():
            model, config = train_model("lenet5", None, ds, classes, epochs=3, seed=seed)
            save_pretrained(model, config, work / name)
    return {n: str(work / n) for n in want}


def _run(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pnc_pack", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {' '.join(args)}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def main(argv) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench distributed")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of every process (PNC_PACK_THREADS)")
    ap.add_argument("--work", default=".bench-distributed")
    ap.add_argument("--out", default="tools/bench/results/distributed.json")
    add_device_option(ap)
    a = ap.parse_args(argv)
    dev = device_of(ap, a)
    work = ROOT / a.work
    m = _models(work)
    env = {**os.environ, "PNC_PACK_THREADS": str(a.threads), "OMP_NUM_THREADS": str(a.threads)}
    common = ["--target", m["target"], "--data", "digits", "--set", f"steps={a.steps}", "--set",
              f"retune_steps={max(1, a.steps // 4)}", "--set", "masks_per_anchor=20", "--data-fraction", "0.5",
              "--device", a.device, *(["--deterministic"] if dev.type != "cpu" else [])]
    cases = {
        "select-8": ["build", *common, *[x for i in range(8) for x in ("--source", m[f"cand{i}"])],
                     "--clone-classes", "8", "--select-source"],
        "multi-4": ["build", *common, "--source", m["s5"], "--clone-classes", "5", "--source", m["s6"],
                    "--clone-classes", "6", "--source", m["s7"], "--clone-classes", "7", "--source", m["s89"],
                    "--clone-classes", "8,9"],
    }
    rows = []
    for name, args in cases.items():
        serial, dist = work / f"{name}-serial.pncd", work / f"{name}-n{a.nproc}.pncd"
        t_s = _run([*args, "-o", str(serial), "--force"], env)
        t_d = _run([*args, "--nproc", str(a.nproc), "-o", str(dist), "--force"], env)
        same = serial.read_bytes() == dist.read_bytes()
        rows.append({"case": name, "serial_s": round(t_s, 1), f"nproc{a.nproc}_s": round(t_d, 1),
                     "speedup": round(t_s / t_d, 2), "byte_identical": same})
        print(f"{name:10s} serial {t_s:6.1f} s   --nproc {a.nproc} {t_d:6.1f} s   speed-up {t_s / t_d:4.2f}x   "
              f"same bytes: {same}")
    info = {"command": "python -m tools.bench distributed " + " ".join(argv), "cpus": os.cpu_count(),
            **device_record(dev),
            "load_before": os.getloadavg()[0], "threads": a.threads, "steps": a.steps, "rows": rows}
    out = ROOT / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=1) + "\n")
    return 0 if dev.type != "cpu" or all(r["byte_identical"] for r in rows) else 1
