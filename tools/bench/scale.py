"""Size and speed at a larger scale (issue 7, item 4): ``python -m tools.bench scale [OPTIONS]``.

    python -m tools.bench scale                       # what RESULTS.md shows
    python -m tools.bench scale --quick               # smoke run: repeat 2, tiny build

Three parts, written to ``tools/bench/results/scale.json`` (and a Markdown summary ``scale.md``):

1. **Bytes and times, random weights** (only bytes and times matter): a CIFAR-shape ResNet-18 (3x32x32, full width
   64) and LeNet-5 (1x28x28), target and source with random weights, and an *untrained* but structurally complete
   delta at position R = 2 (``pnc_pack.builder.api.fresh_delta``: identity adapter, random classifier rows, every
   second filter kept). Measured by :func:`tools.bench.loader.bench` (the loader benchmark's own code, reused): delta
   bytes against the offline cloned model (``pnc_pack.clone.export``; goals <= 0.5% for ResNet-18, <= 2% for
   LeNet-5), apply time against loading the offline model, verify time, sha256 throughput. Added here: the delta's
   compressed payload (``zstd+bytegroup`` and ``zstd``, level 9) against plain zstd (levels 3 and 9) of the same
   tensors written as one ordinary safetensors file.
2. **A real build per clone, reduced steps** (build time): a *slim* CIFAR-shape ResNet-18 (``--width``, default 16)
   target trained briefly on Fashion-MNIST classes 0-4 and a source on 5-9, images resized to 3x32x32
   (``--train-fraction`` of the training images, ``--train-epochs``); then ``build_clone`` of class 5 (setting S)
   with ``--build-steps`` steps per position, ``--retune-steps`` and D_t = ``--build-fraction`` of class 5's
   training images (the builder's defaults are 200 / 100 / 0.1: the reduced values are stated in the results). Reports build wall time, the chosen position, the delta's bytes against the offline model, the same
   compression comparison on trained values, and Ori/Tar/Avg of that quick clone (not a tuned result).
3. **The real LeNet-5 deltas of the paper benchmark** (when ``runs/bench-paper/mnist/lenet5/seed0/pnc-*/pnc.pnc``
   exist): their bytes against their offline cloned models, and the same compression comparison.

4. **Paper scale** (only with ``--parts paper``; its own files ``scale-paper[-quick].*``): full-width ResNet-18 and
   ResNet-50 on MNIST / Fashion-MNIST at 3x32x32, S and M clones with the default schedule, per-phase times, on any
   ``--device`` (:mod:`tools.bench._scale_paper`; the GPU run is ``tools/gpu/run_scale.sh``, docs/devices.md).

Times are wall clock on a shared 2-core machine (median of ``--repeat`` runs, and the best as ``*_best``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from pnc_pack.errors import UsageError
from tools.bench import _scale_paper as paper_part
from tools.bench import add_device_option, device_of

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {"resnet18": 0.005, "lenet5": 0.02}
PARTS = ("random", "paper_lenet", "build", "paper")  # paper: only when asked (tools/bench/_scale_paper.py)


def compression(delta) -> dict:
    """The delta's payload (both encodings, level 9) against plain zstd of the same tensors as one safetensors."""
    import zstandard
    from safetensors.torch import save as st_save

    from pnc_pack.clone.convert import from_raw
    from pnc_pack.format import codec
    from pnc_pack.format.payload import encode_payload

    tensors = delta.tensors()
    st = st_save({k: from_raw(v).contiguous() for k, v in tensors.items()})
    out = {"tensor_bytes": sum(len(v.data) for v in tensors.values()), "safetensors_bytes": len(st)}
    for level in (3, 9, 19):
        out[f"safetensors_zstd{level}_bytes"] = len(zstandard.ZstdCompressor(level=level).compress(st))
    for enc in ("zstd", "zstd+bytegroup"):
        out[f"payload_{enc}_bytes"] = len(encode_payload(tensors, enc)[0])
    out["delta_file_bytes"] = len(codec.dumps(delta))
    out["payload_over_safetensors_zstd9"] = round(out["payload_zstd+bytegroup_bytes"]
                                                  / out["safetensors_zstd9_bytes"], 4)
    out["payload_over_safetensors_zstd3"] = round(out["payload_zstd+bytegroup_bytes"]
                                                  / out["safetensors_zstd3_bytes"], 4)
    return out


def offline_share(delta, target, source, work: Path) -> dict:
    """Delta file bytes against the offline cloned model (exported folder: weights + config)."""
    from pnc_pack.clone.export import export_cloned
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.format import codec

    model = ClonedNetwork.from_delta(delta, target, [source])
    offline = export_cloned(model, work)
    n = len(codec.dumps(delta))
    return {"delta_bytes": n, "offline_bytes": offline, "delta_share_of_offline": round(n / offline, 5)}


# -- part 1 ---------------------------------------------------------------------------------------------------------
def part_random(repeat: int, work: Path, log=print) -> list[dict]:
    from pnc_pack.format import codec
    from tools.bench.loader import bench

    rows = []
    for arch, a in (("lenet5", {"num_classes": 5}), ("resnet18", {"num_classes": 5, "width": 64})):
        t0 = time.perf_counter()
        row = bench(arch, a, repeat, work)
        row["compression"] = compression(codec.load(work / arch / "clone.pncd"))
        row["goal_share"] = GOALS[arch]
        row["goal_met"] = row["delta_share_of_offline"] <= GOALS[arch]
        row["weights"] = "random (untrained), delta from fresh_delta at R=2"
        rows.append(row)
        log(f"scale: {arch} random: delta {row['delta_bytes']:,} B = {100 * row['delta_share_of_offline']:.3f}% of "
            f"offline {row['offline_bytes']:,} B; apply {row['apply_s'] * 1e3:.1f} ms vs load "
            f"{row['load_offline_s'] * 1e3:.1f} ms; verify {row['verify_s'] * 1e3:.2f} ms; sha256 "
            f"{row['sha256_file_gb_per_s']} GB/s ({time.perf_counter() - t0:.0f}s)")
    return rows


# -- part 2 ---------------------------------------------------------------------------------------------------------
def part_build(args, work: Path, dev, log=print) -> dict:
    import torch

    from pnc_pack.builder import BuildConfig, build_clone
    from pnc_pack.clone.evaluate import output_labels
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.data import fit_to_shape, load_dataset, select_classes
    from pnc_pack.zoo.pretrained import load_pretrained, save_pretrained
    from pnc_pack.zoo.training import train_model
    from tools.bench import baselines as B

    dataset = load_dataset(args.data)
    arch_args = {"in_channels": 3, "image_size": 32, "width": args.width}
    folders, zoo = {}, {}
    for role, classes in (("target", [0, 1, 2, 3, 4]), ("source", [5, 6, 7, 8, 9])):
        t0 = time.perf_counter()
        model, cfg = train_model("resnet18", arch_args, dataset, classes, epochs=args.train_epochs, seed=args.seed,
                                 data_fraction=args.train_fraction, device=dev)
        folders[role] = save_pretrained(model, cfg, work / role)
        zoo[role] = {"classes": classes, "train_s": round(time.perf_counter() - t0, 1),
                     "test_accuracy": cfg.training.get("test_accuracy"),
                     "parameters": sum(p.numel() for p in model.parameters())}
        log(f"scale: slim resnet18 {role} trained in {zoo[role]['train_s']}s, test acc "
            f"{zoo[role]['test_accuracy']}")
    cfg = BuildConfig(steps=args.build_steps, retune_steps=args.retune_steps, data_fraction=args.build_fraction)
    t0, c0 = time.perf_counter(), time.process_time()
    delta = build_clone(str(folders["target"]), str(folders["source"]), dataset, [5], seed=args.seed, config=cfg,
                        device=dev)
    build_s, build_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    target, t_cfg = load_pretrained(folders["target"])
    source, s_cfg = load_pretrained(folders["source"])
    met = dict(delta.metrics)
    out = {"arch": "resnet18", "arch_args": arch_args, "data": args.data, "zoo": zoo, "clone": [5],
           "build_config": {"steps": args.build_steps, "retune_steps": args.retune_steps,
                            "defaults": {"steps": BuildConfig().steps, "retune_steps": BuildConfig().retune_steps},
                            "data_fraction": cfg.data_fraction},
           "build_s": round(build_s, 1), "build_cpu_s": round(build_cpu_s, 1), "positions_searched": len(met.get("loss_per_R") or {}),
           "R": met.get("R"), "R_s": met.get("R_s"), "mask_density": met.get("mask_density"),
           "loss_per_R": {str(k): (v.get("total") if isinstance(v, dict) else v)
                          for k, v in (met.get("loss_per_R") or {}).items()}}
    out.update(offline_share(delta, target, source, work / "offline"))
    out["goal_share"] = GOALS["resnet18"]
    out["goal_met"] = out["delta_share_of_offline"] <= GOALS["resnet18"]
    out["compression"] = compression(delta)
    Xo, yo = select_classes(*dataset.test, [0, 1, 2, 3, 4])
    Xt, yt = select_classes(*dataset.test, [5])
    shape = target.input_shape
    model = ClonedNetwork.from_delta(delta, target, [source])
    with torch.no_grad():
        sc = B.score(B.Outcome(model, output_labels(delta, t_cfg, [s_cfg]), out["delta_bytes"], "", build_s, {}),
                     (fit_to_shape(Xo, shape), yo), (fit_to_shape(Xt, shape), yt), 5, 1)
    out["accuracy_quick_build"] = {k: round(sc[k], 2) for k in ("ori", "tar", "avg")}
    log(f"scale: slim resnet18 build of class 5: {out['build_s']}s ({args.build_steps} steps/position, "
        f"{out['positions_searched']} positions), R={out['R']}, delta {out['delta_bytes']:,} B = "
        f"{100 * out['delta_share_of_offline']:.3f}% of offline; Ori/Tar/Avg {out['accuracy_quick_build']}")
    return out


# -- part 3 ---------------------------------------------------------------------------------------------------------
def part_paper_lenet(work: Path, log=print) -> list[dict]:
    from pnc_pack.format import codec
    from pnc_pack.zoo.pretrained import load_pretrained

    rows = []
    seed_dir = ROOT / "runs" / "bench-paper" / "mnist" / "lenet5" / "seed0"
    for setting in ("S", "M"):
        path = seed_dir / f"pnc-{setting}" / "pnc.pnc"
        if not path.is_file():
            continue
        delta = codec.load(path)
        target, _ = load_pretrained(seed_dir / "target")
        source, _ = load_pretrained(seed_dir / "source")
        row = {"setting": setting, "file": str(path.relative_to(ROOT)), "R": delta.metrics.get("R"),
               "mask_density": delta.metrics.get("mask_density")}
        row.update(offline_share(delta, target, source, work / f"lenet-{setting}"))
        row["goal_share"] = GOALS["lenet5"]
        row["goal_met"] = row["delta_share_of_offline"] <= GOALS["lenet5"]
        row["compression"] = compression(delta)
        rows.append(row)
        log(f"scale: paper LeNet-5 delta {setting}: {row['delta_bytes']:,} B = "
            f"{100 * row['delta_share_of_offline']:.3f}% of offline {row['offline_bytes']:,} B")
    return rows


def markdown(res: dict) -> str:
    from tools.bench.report import machine_line

    def pct(x):
        return f"{100 * x:.3f}%"

    out = [f"Machine: {machine_line(res['machine'])}; torch threads {res['torch_threads']}. The machine is shared: "
           "times are wall clock, and the 1-minute load average is given per part.", ""]
    for part, r in (res.get("part_runs") or {}).items():
        if r:
            out.append(f"- part `{part}`: `{r['command']}` — {r['wall_s']} s, load average {r['loadavg_1min']['start']}"
                       f" -> {r['loadavg_1min']['end']}")
    out.append("")
    rep = ((res.get("part_runs") or {}).get("random") or {}).get("repeat", res.get("repeat"))
    out += ["**Bytes and times, random weights** (fresh_delta at R=2; times median of "
            f"{rep} runs):", "",
            "| model | delta bytes | offline model bytes | delta / offline | goal | apply ms | load offline ms | "
            "apply / load | verify ms | sha256 file GB/s | apply read+hash GB/s |", "|" + "---|" * 11]
    for r in res.get("random", []):
        out.append(f"| {r['arch']} {r['arch_args']} | {r['delta_bytes']:,} | {r['offline_bytes']:,} | "
                   f"{pct(r['delta_share_of_offline'])} | <= {pct(r['goal_share'])}: "
                   f"{'met' if r['goal_met'] else 'NOT met'} | {r['apply_s'] * 1e3:.1f} | "
                   f"{r['load_offline_s'] * 1e3:.1f} | {r['apply_over_load']} | {r['verify_s'] * 1e3:.2f} | "
                   f"{r['sha256_file_gb_per_s']} | {r['apply_read_and_hash_both_models_gb_per_s']} |")
    out.append("")
    comp = [(f"{r['arch']} random", r["compression"]) for r in res.get("random", [])]
    if res.get("build"):
        b = res["build"]
        z = b["zoo"]
        out += [f"**Build per clone, slim ResNet-18** (width {b['arch_args']['width']}, 3x32x32, {b['data']} resized; "
                f"target {z['target']['parameters']:,} parameters, test acc {z['target']['test_accuracy']} after "
                f"{z['target']['train_s']} s of training; source test acc {z['source']['test_accuracy']}): clone "
                f"class {b['clone']} with **{b['build_config']['steps']} steps per position and "
                f"{b['build_config']['retune_steps']} re-tune steps (defaults "
                f"{b['build_config']['defaults']['steps']} / {b['build_config']['defaults']['retune_steps']}: "
                f"reduced)**, D_t = {b['build_config']['data_fraction']:g}: build time **{b['build_s']} s** wall"
                + (f" ({b['build_cpu_s']} s CPU)" if b.get("build_cpu_s") is not None else
                   " (CPU time not recorded in this run; the wall time was taken with this process getting about a "
                   "quarter of a core on the shared machine)")
                + " for "
                f"{b['positions_searched']} positions, R* = {b['R']}, mask density {b['mask_density']}; delta "
                f"{b['delta_bytes']:,} B = **{pct(b['delta_share_of_offline'])}** of the offline model "
                f"({b['offline_bytes']:,} B; goal <= {pct(b['goal_share'])}: "
                f"{'met' if b['goal_met'] else 'NOT met'}). Ori/Tar/Avg of this quick clone: "
                + " / ".join(f"{b['accuracy_quick_build'][k]:.2f}" for k in ("ori", "tar", "avg"))
                + " (reduced steps and data: not a tuned result).", ""]
        comp.append(("resnet18 slim built", b["compression"]))
    for r in res.get("paper_lenet", []):
        out.append(f"- Paper-benchmark LeNet-5 delta (MNIST seed 0, setting {r['setting']}, R={r['R']}, mask density "
                   f"{r['mask_density']}): {r['delta_bytes']:,} B = **{pct(r['delta_share_of_offline'])}** of the "
                   f"offline model ({r['offline_bytes']:,} B; goal <= {pct(r['goal_share'])}: "
                   f"{'met' if r['goal_met'] else 'NOT met'}).")
        comp.append((f"lenet5 paper {r['setting']}", r["compression"]))
    if res.get("paper_lenet"):
        out.append("")
    out += ["**Compressed payload vs plain zstd of the same tensors as one safetensors file** (bytes; the payload "
            "holds classifier and adapter tensors, the masks live in the header):", "",
            "| delta | tensor bytes | safetensors | zstd -3 | zstd -9 | zstd -19 | payload zstd (9) | "
            "payload zstd+bytegroup (9) | payload / zstd -9 | whole delta file |", "|" + "---|" * 10]
    for name, c in comp:
        out.append(f"| {name} | {c['tensor_bytes']:,} | {c['safetensors_bytes']:,} | {c['safetensors_zstd3_bytes']:,} | "
                   f"{c['safetensors_zstd9_bytes']:,} | {c['safetensors_zstd19_bytes']:,} | "
                   f"{c['payload_zstd_bytes']:,} | {c['payload_zstd+bytegroup_bytes']:,} | "
                   f"{c['payload_over_safetensors_zstd9']} | {c['delta_file_bytes']:,} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench scale", description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="timing repeats (median and best reported)")
    ap.add_argument("--data", default="idx:data/fashion-mnist", help="training data of the slim ResNet-18 build")
    ap.add_argument("--width", type=int, default=16, help="ResNet-18 base width of the build part (full: 64)")
    ap.add_argument("--train-epochs", type=int, default=1)
    ap.add_argument("--train-fraction", type=float, default=0.2, help="share of the training images for the zoo")
    ap.add_argument("--build-steps", type=int, default=20, help="builder steps per position (default there: 200)")
    ap.add_argument("--retune-steps", type=int, default=10, help="builder re-tune steps (default there: 100)")
    ap.add_argument("--build-fraction", type=float, default=0.02, help="D_t share of the build (paper: 0.3 on "
                    "CIFAR; reduced so that the LIME surrogate, 100 masks per anchor, fits a shared CPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", default="random,paper_lenet,build", help="comma-separated parts to run; the others "
                    "are kept from an existing scale.json (each part records its own command); 'paper' (the paper-scale "
                    "part, its own files scale-paper[-quick].*) runs only when named")
    ap.add_argument("--quick", action="store_true", help="smoke run: repeat 2, width 8, 5%% data, 5 steps (the paper "
                    "part: its own tiny version)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    add_device_option(ap)
    paper_part.add_args(ap)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    dev = device_of(ap, args)
    if args.quick:
        args.repeat, args.width, args.train_fraction, args.build_steps, args.retune_steps = 2, 8, 0.05, 5, 5
        args.build_fraction = 0.005
    import torch

    from pnc_pack.fsutil import atomic_write
    from tools.bench.report import machine

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = {"benchmark": "scale", "command": "python -m tools.bench scale" + "".join(" " + shlex.quote(a)
                                                                                    for a in argv),
           "machine": machine(), "repeat": args.repeat, "torch_threads": torch.get_num_threads()}
    parts = [x for x in args.parts.split(",") if x]
    bad = sorted(set(parts) - set(PARTS))
    if bad:
        ap.error(f"unknown part(s) {bad}; known: {PARTS}")
    if "paper" in parts:  # its own files (scale-paper[-quick].json/.md), its own command line
        try:
            paper_part.parse_plan(args.plan or "resnet18/mnist/S")
        except UsageError as exc:
            ap.error(str(exc))
        paper_part.run(args, dev, args.out, res["command"], res["machine"])
        parts.remove("paper")
        if not parts:
            return 0
    stem = "scale-quick" if args.quick else "scale"
    old = args.out / f"{stem}.json"
    if set(parts) != set(PARTS) and old.is_file():  # keep the parts not run now, with the commands that made them
        prev = json.loads(old.read_text())
        for part in PARTS:
            if part not in parts and part in prev:
                res[part] = prev[part]
                res.setdefault("part_runs", {})[part] = prev.get("part_runs", {}).get(part)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for part in parts:
            tp, lp = time.perf_counter(), os.getloadavg()[0]
            if part == "random":
                res["random"] = part_random(args.repeat, work / "random")
            elif part == "paper_lenet":
                res["paper_lenet"] = part_paper_lenet(work / "paper")
            else:
                res["build"] = part_build(args, work / "build", dev)
            res.setdefault("part_runs", {})[part] = {
                "command": res["command"], "wall_s": round(time.perf_counter() - tp, 1),
                "loadavg_1min": {"start": round(lp, 2), "end": round(os.getloadavg()[0], 2)},
                "repeat": args.repeat}
    cmds = list(dict.fromkeys(r["command"] for r in res["part_runs"].values() if r))
    res["command"] = " && ".join(cmds)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    res["loadavg_1min"] = {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)}
    md = markdown(res)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / f"{stem}.json", (json.dumps(res, indent=2, sort_keys=True) + "\n").encode())
    atomic_write(args.out / f"{stem}.md", md.encode())
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
