"""The builder's CPU speed (issue 17 item 3): ``python -m tools.bench speed [OPTIONS]``.

    OMP_NUM_THREADS=1 python -m tools.bench speed --data idx:data/mnist

LeNet-5 target (0-4) and source (5-9) trained once and cached in ``--workdir`` (3 epochs, the seed); then, each in
a fresh Python process (as a ``pnc-pack build`` / ``train`` run would be): the S build (clone 5) and the M build
(clone 5,6,7) with the default BuildConfig on the CPU, and the joint models the paper's table compares them with
(one LeNet-5 trained from scratch on every training image of 0-5, resp. 0-7, for the same epochs). Each process
reports, per phase, wall seconds and CPU seconds (its own process time): start-up (imports and data), the local
model set, the negatives, the perturbed pool, each insertion position, the re-tune, the final held-out loss, the
calibration; the builds also the sha256 of the delta's bytes (to compare code versions: same bytes, same delta).
Goal: a build in at most a third of its joint model's training, S <= 20 s and M <= 25 s on one idle thread.
``--pythonpath DIR`` times another checkout's ``pnc_pack`` (e.g. ``git archive`` of an older commit) with this
script. The machine is shared: the load average before and after each process is recorded, and a phase whose wall
time is well above its CPU time ran on a busy machine. Results: tools/bench/results/speed[-TAG].json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLONES = {"S": [5], "M": [5, 6, 7]}
TARGET, SOURCE = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class _Phases:
    """Wraps the builder's phase functions (module attributes, restored afterwards); nested calls are part of the
    outer phase. ``rows``: [{phase, wall_s, cpu_s}] in the order they ran."""

    def __init__(self):
        self.rows, self.depth, self.saved = [], 0, []

    def wrap(self, module, attr: str, name_of):
        fn = getattr(module, attr, None)
        if fn is None:
            return

        def timed(*a, **kw):
            if self.depth:
                return fn(*a, **kw)
            self.depth += 1
            w0, c0 = _clock()
            try:
                return fn(*a, **kw)
            finally:
                self.depth -= 1
                w1, c1 = _clock()
                self.rows.append({"phase": name_of(*a, **kw), "wall_s": round(w1 - w0, 3), "cpu_s": round(c1 - c0, 3)})

        self.saved.append((module, attr, fn))
        setattr(module, attr, timed)

    def restore(self):
        for module, attr, fn in reversed(self.saved):
            setattr(module, attr, fn)


def _merge(rows: list[dict]) -> list[dict]:
    """Consecutive rows of the same phase as one (the local model set is two calls, the negatives several)."""
    out: list[dict] = []
    for r in rows:
        if out and out[-1]["phase"] == r["phase"]:
            out[-1] = {"phase": r["phase"], "wall_s": round(out[-1]["wall_s"] + r["wall_s"], 3),
                       "cpu_s": round(out[-1]["cpu_s"] + r["cpu_s"], 3)}
        else:
            out.append(dict(r))
    return out


def child_build(data: str, models: Path, classes: list[int], seed: int, w_start, c_start) -> dict:
    import hashlib

    from pnc_pack.builder import api as A
    from pnc_pack.builder import build_clone
    from pnc_pack.builder import search as S
    from pnc_pack.data import load_dataset
    from pnc_pack.format import codec

    ds = load_dataset(data)
    w, c = _clock()
    rows = [{"phase": "start-up (imports, data)", "wall_s": round(w - w_start, 3), "cpu_s": round(c - c_start, 3)}]
    ph = _Phases()
    ph.wrap(A, "source_logits", lambda *a, **k: "local model set")
    ph.wrap(A, "fit_local_models", lambda *a, **k: "local model set")
    for name in ("make_negatives", "patch_masked"):
        ph.wrap(A, name, lambda *a, **k: "negatives")
    ph.wrap(A, "pool", lambda *a, **k: "perturbed pool")
    ph.wrap(A, "train_position", lambda p, cfg, seed, R, *a, **k: f"position R={R}")
    ph.wrap(S, "train", lambda *a, **k: "re-tune")
    ph.wrap(S, "held_out_loss", lambda *a, **k: "final held-out loss")
    ph.wrap(S, "calibrate", lambda *a, **k: "calibration")
    w0, c0 = _clock()
    try:
        delta = build_clone(str(models / "target"), str(models / "source"), ds, classes, seed=seed, device="cpu")
    finally:
        ph.restore()
    w1, c1 = _clock()
    rows += _merge(ph.rows)
    rest = {"wall_s": round(w1 - w0 - sum(r["wall_s"] for r in rows[1:]), 3),
            "cpu_s": round(c1 - c0 - sum(r["cpu_s"] for r in rows[1:]), 3)}
    rows.append({"phase": "other (D_t split, loading models, packing)", **rest})
    m = delta.metrics
    return {"phases": rows, "build_wall_s": round(w1 - w0, 3), "build_cpu_s": round(c1 - c0, 3),
            "delta_sha256": hashlib.sha256(codec.dumps(delta)).hexdigest(), "R": m["R"],
            "mask_density": m["mask_density"], "final_held_out_total": m["final_held_out"]["total"]}


def child_joint(data: str, classes: list[int], seed: int, epochs: int, w_start, c_start) -> dict:
    from pnc_pack.data import load_dataset
    from pnc_pack.zoo.training import train_model

    ds = load_dataset(data)
    w, c = _clock()
    rows = [{"phase": "start-up (imports, data)", "wall_s": round(w - w_start, 3), "cpu_s": round(c - c_start, 3)}]
    _model, cfg = train_model("lenet5", None, ds, classes, epochs=epochs, seed=seed, device="cpu")
    w1, c1 = _clock()
    rows.append({"phase": f"training ({epochs} epochs)", "wall_s": round(w1 - w, 3), "cpu_s": round(c1 - c, 3)})
    return {"phases": rows, "train_wall_s": round(w1 - w, 3), "train_cpu_s": round(c1 - c, 3),
            "test_accuracy": cfg.training.get("test_accuracy")}


def _child(argv) -> int:
    w_start, c_start = _clock()  # the interpreter's own start-up is not in here (about 0.1 s)
    if os.environ.get("PNC_SPEED_CODE"):  # ahead of the working directory, which python -m puts first
        sys.path.insert(0, os.environ["PNC_SPEED_CODE"])
    kind, data, classes, seed, epochs, models = argv[0], argv[1], json.loads(argv[2]), int(argv[3]), int(argv[4]), argv[5]
    if kind == "build":
        out = child_build(data, Path(models), classes, seed, w_start, c_start)
    else:
        out = child_joint(data, classes, seed, epochs, w_start, c_start)
    w, c = _clock()
    import torch

    import pnc_pack

    out.update(process_wall_s=round(w - w_start, 3), process_cpu_s=round(c - c_start, 3),
               threads=int(torch.get_num_threads()), pnc_pack_from=str(Path(pnc_pack.__file__).parent))
    print("SPEED-RESULT " + json.dumps(out))
    return 0


def _models(data: str, workdir: Path, seed: int, epochs: int) -> Path:
    """target/ and source/ LeNet-5 folders, trained once per (data, seed, epochs) and cached."""
    from pnc_pack.data import load_dataset
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    work = workdir / data.replace("/", "_").replace(":", "_") / f"seed{seed}-e{epochs}"
    ds = None
    for name, classes in (("target", TARGET), ("source", SOURCE)):
        if not (work / name / "model.safetensors").is_file():
            ds = ds or load_dataset(data)
            print(f"speed: training the {name} LeNet-5 on {classes} (once; cached in {work})", flush=True)
            model, config = train_model("lenet5", None, ds, classes, epochs=epochs, seed=seed, device="cpu")
            save_pretrained(model, config, work / name)
    return work


def _run(args, kind: str, classes: list[int], models: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PNC_PACK_QUIET="1",
               PNC_SPEED_CODE=str(Path(args.pythonpath).resolve()) if args.pythonpath else "")
    cmd = [sys.executable, "-m", "tools.bench", "speed", "_child", kind, args.data, json.dumps(classes),
           str(args.seed), str(args.epochs), str(models)]
    load0 = os.getloadavg()[0]
    w0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - w0
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("SPEED-RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"speed: {kind} {classes} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    out = json.loads(lines[-1].removeprefix("SPEED-RESULT "))
    out.update(classes=classes, subprocess_wall_s=round(wall, 3), load_before=round(load0, 2),
               load_after=round(os.getloadavg()[0], 2))
    return out


def _markdown(out: dict) -> str:
    lines = [f"# Builder speed on the CPU ({out['tag']})", "",
             f"`{out['command']}`; code: {out['code']}; {out['threads']} thread(s); data `{out['data']}`, seed "
             f"{out['seed']}, zoo and joint models {out['epochs']} epochs. Seconds, wall / CPU (process time).", "",
             "| run | total (process) | work (build / training) | a third of joint's training | "
             "delta sha256 (first 16) | load avg before / after |", "|---|---|---|---|---|---|"]
    for name, r in out["runs"].items():
        work = (r.get("build_wall_s"), r.get("build_cpu_s")) if "build_wall_s" in r else (r["train_wall_s"],
                                                                                         r["train_cpu_s"])
        joint = out["runs"].get(f"joint {name}")
        third = f"{joint['train_wall_s'] / 3:.1f} / {joint['train_cpu_s'] / 3:.1f}" if joint else "-"
        lines.append(f"| {name} {r['classes']} | {r['process_wall_s']:.1f} / {r['process_cpu_s']:.1f} | "
                     f"{work[0]:.1f} / {work[1]:.1f} | {third} | {r.get('delta_sha256', '-')[:16]} | "
                     f"{r['load_before']} / {r['load_after']} |")
    for name, r in out["runs"].items():
        lines += ["", f"{name} {r['classes']}, per phase:", "", "| phase | wall s | CPU s |", "|---|---|---|"]
        lines += [f"| {p['phase']} | {p['wall_s']:.2f} | {p['cpu_s']:.2f} |" for p in r["phases"]]
    lines += ["", out["machine_note"]]
    return "\n".join(lines) + "\n"


def main(argv):
    if argv and argv[0] == "_child":
        return _child(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m tools.bench speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="idx:data/mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=3, help="zoo and joint models' training epochs")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--runs", default="S,M,joint S,joint M", help="which of S, M, joint S, joint M, comma-separated")
    ap.add_argument("--workdir", default="/tmp/pnc-bench-speed")
    ap.add_argument("--pythonpath", default=None, help="a folder holding another checkout's pnc_pack to time")
    ap.add_argument("--tag", default=None, help="results/speed-TAG.json (default: results/speed.json)")
    args = ap.parse_args(argv)
    want = [r.strip() for r in args.runs.split(",") if r.strip()]
    bad = [r for r in want if r not in ("S", "M", "joint S", "joint M")]
    if bad:
        ap.error(f"unknown runs {bad}: use S, M, joint S, joint M")
    models = _models(args.data, Path(args.workdir), args.seed, args.epochs)
    out = {"command": "python -m tools.bench speed " + " ".join(argv), "data": args.data, "seed": args.seed,
           "epochs": args.epochs, "threads": args.threads, "tag": args.tag or "this checkout",
           "code": args.pythonpath or "this checkout", "cpu_count": os.cpu_count(), "runs": {}}
    for name in want:
        if name.startswith("joint"):
            setting = name.split()[1]
            r = _run(args, "joint", TARGET + CLONES[setting], models)
        else:
            r = _run(args, "build", CLONES[name], models)
        out["runs"][name] = r
        work = r.get("build_cpu_s", r.get("train_cpu_s"))
        print(f"{name}: process {r['process_wall_s']:.1f} s wall / {r['process_cpu_s']:.1f} s CPU; "
              f"work {work:.1f} s CPU; load {r['load_before']} -> {r['load_after']}", flush=True)
    busy = [n for n, r in out["runs"].items() if r["process_wall_s"] > 1.15 * r["process_cpu_s"]
            or max(r["load_before"], r["load_after"]) > 1.5]
    out["machine_busy"] = bool(busy)
    out["machine_note"] = (f"The machine was busy during {', '.join(busy)} (wall well above CPU, or load average above "
                           f"1.5 on {out['cpu_count']} cores): read the CPU column; busy cores also slow CPU time "
                           "somewhat (shared caches)." if busy else "The machine was idle (wall close to CPU time).")
    from tools.bench import write_result

    name = "speed" + (f"-{args.tag}" if args.tag else "")
    write_result(name, out, _markdown(out))
    print(_markdown(out))
    return 0
