"""The paper-scale part of ``python -m tools.bench scale`` (issue 17 item 4): ``--parts paper``.

    python -m tools.bench scale --parts paper --device cuda --threads 16     # the full plan, on a GPU
    python -m tools.bench scale --parts paper --quick --device cpu            # tiny, on the CPU (a dry run)

Full-width CIFAR-style ResNet-18 / ResNet-50 (L = 5) target (classes 0-4) and source (5-9) trained on MNIST or
Fashion-MNIST, each image replicated to 3 channels and zero-padded 28 -> 32 (3x32x32, kept as uint8); then PNC
clones S ([5]) and M ([5, 6, 7]) with the builder's *default* BuildConfig. Per build: wall time and steps/s of
each phase (:mod:`tools.bench._phases`), peak device memory, Ori/Tar/Avg beside Direct Ensemble, Continual + KD
and PEFT LoRA (:mod:`tools.bench.baselines`) on the same models and D_t, the delta's bytes against the model's,
and the test-set argmax agreement of the delta (serialised, loaded back) applied on the CPU with the clone on the
build device. ``--plan`` lists ``ARCH/DATA/SETTING`` runs in order; ``--budget-s`` stops a build whose phases
would run past it (its phases so far are still reported) and skips the runs after. Results go to
``OUT/scale-paper[-quick].json`` and ``.md``, rewritten after every run, so a run cut short keeps what it did.
``--quick`` shrinks everything (width 4, a few hundred images, a handful of steps): a smoke run, not a result.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

TARGET, SOURCE = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
SETTINGS = {"S": [5], "M": [5, 6, 7]}
FULL_PLAN = ",".join(f"{a}/{d}/{s}" for a in ("resnet18", "resnet50") for d in ("mnist", "fashion-mnist")
                     for s in ("S", "M"))
QUICK_PLAN = "resnet18/mnist/S,resnet18/mnist/M,resnet50/fashion-mnist/S"
GOAL_S = {"resnet18": 60.0, "resnet50": 180.0}  # wall seconds of one build on one H200 (issue 17)
QUICK_BUILD = {"steps": 4, "retune_steps": 2, "pool_size": 256, "masks_per_anchor": 8, "data_fraction": 0.1}
METHODS = ("ensemble", "continual_kd", "lora")


def add_args(ap) -> None:
    g = ap.add_argument_group("paper part (--parts paper)")
    g.add_argument("--plan", default=None, help=f"comma-separated ARCH/DATA/SETTING runs, in order (default "
                   f"{FULL_PLAN}; --quick: {QUICK_PLAN})")
    g.add_argument("--data-root", type=Path, default=Path("data"), help="folder holding mnist/ and fashion-mnist/")
    g.add_argument("--paper-epochs", type=int, default=2, help="training epochs of each zoo model")
    g.add_argument("--paper-batch", type=int, default=128, help="training batch size of the zoo models")
    g.add_argument("--ft-epochs", type=int, default=10, help="passes over D_t of Continual + KD and LoRA")
    g.add_argument("--agree-n", type=int, default=2000, help="test images of the CPU-apply agreement check")
    g.add_argument("--budget-s", type=float, default=None, help="stop building once this much wall time is spent")
    g.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))


def padded(dataset, limit: int | None = None):
    """The dataset at 3x32x32: each image replicated to 3 channels and zero-padded by 2 (uint8, as decoded)."""
    import torch
    import torch.nn.functional as F

    from pnc_pack.data import Dataset

    def pad(split):
        X, y = split
        if limit is not None:  # --quick: the first ``limit`` images (the idx files are in no class order)
            X, y = X[:limit], y[:limit]
        out = torch.empty((len(y), 3, 32, 32), dtype=torch.uint8)
        for s in range(0, len(y), 8192):
            x = F.pad(X[s:s + 8192].float(), (2, 2, 2, 2))
            out[s:s + 8192] = (x * 255).round().clamp_(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)
        return out, y

    return Dataset(f"{dataset.name}+pad32x3", pad(dataset.train), pad(dataset.test), dataset.class_names)


def parse_plan(text: str) -> list[tuple[str, str, str]]:
    from pnc_pack.errors import UsageError

    runs = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        parts = item.split("/")
        if len(parts) != 3 or parts[0] not in GOAL_S or parts[1] not in ("mnist", "fashion-mnist") \
                or parts[2] not in SETTINGS:
            raise UsageError(f"--plan item {item!r}: want ARCH/DATA/SETTING with ARCH in {sorted(GOAL_S)}, DATA "
                             "mnist or fashion-mnist, SETTING S or M")
        runs.append(tuple(parts))
    if not runs:
        raise UsageError("--plan names no run")
    return runs


def zoo(arch, width, ds, classes, role, args, dev, work: Path, log) -> dict:
    """Train (or reuse, within this run) the target or source; returns its folder, model, config and figures."""
    from pnc_pack.zoo.pretrained import load_pretrained, save_pretrained, weights_bytes
    from pnc_pack.zoo.training import train_model

    folder = work / f"{arch}-{ds.name.replace('/', '_').replace(':', '_')}-{role}"
    t0 = time.perf_counter()
    if not (folder / "config.json").is_file():
        model, cfg = train_model(arch, {"in_channels": 3, "image_size": 32, "width": width}, ds, classes,
                                 epochs=args.paper_epochs, batch_size=args.paper_batch, seed=args.seed, device=dev,
                                 precision=args.precision)
        save_pretrained(model, cfg, folder)
    model, cfg = load_pretrained(folder)
    info = {"classes": classes, "train_s": round(time.perf_counter() - t0, 2),
            "test_accuracy": cfg.training.get("test_accuracy"), "parameters": sum(p.numel() for p in model.parameters()),
            "model_bytes": len(weights_bytes(model))}
    log(f"scale/paper: {arch} {role} on {ds.name}: {info['train_s']} s, test acc {info['test_accuracy']}")
    return {"folder": folder, "model": model.to(dev), "cfg": cfg, "info": info}


def agreement(delta, target, source, model_dev, X, dev) -> dict:
    """Argmax agreement on X of the clone on the build device and the delta's bytes applied on the CPU."""
    import copy

    import torch

    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.format import codec

    back = codec.loads(codec.dumps(delta))  # CPU copies: model_dev shares the models it was built from
    cpu_model = ClonedNetwork.from_delta(back, copy.deepcopy(target).cpu(), [copy.deepcopy(source).cpu()]).eval()
    with torch.inference_mode():
        a = torch.cat([model_dev(X[s:s + 500].to(dev)).argmax(1).cpu() for s in range(0, len(X), 500)])
        t0 = time.perf_counter()
        b = torch.cat([cpu_model(X[s:s + 500]).argmax(1) for s in range(0, len(X), 500)])
    return {"n": int(len(X)), "agree": round(100.0 * float((a == b).float().mean()), 3), "built_on": dev.type,
            "cpu_apply_s": round(time.perf_counter() - t0, 2)}


def one_run(arch, data, setting, args, dev, datasets, work: Path, deadline, log) -> dict:
    """Train (or reuse) the pair, build the clone with the default schedule, score it and the baselines."""
    import torch

    from pnc_pack import devices
    from pnc_pack.builder import BuildConfig, build_clone
    from pnc_pack.clone.evaluate import output_labels
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.data import fit_to_shape, select_classes, take_fraction
    from pnc_pack.format import codec
    from tools.bench import baselines as B
    from tools.bench._phases import OverBudget, phases

    ds, clone = datasets[data], SETTINGS[setting]
    width = 4 if args.quick else 64
    t = zoo(arch, width, ds, TARGET, "target", args, dev, work, log)
    s = zoo(arch, width, ds, SOURCE, "source", args, dev, work, log)
    cfg = BuildConfig(**(QUICK_BUILD if args.quick else {}))
    row = {"arch": arch, "width": width, "data": ds.name, "setting": setting, "clone": clone,
           "zoo": {"target": t["info"], "source": s["info"]}, "build_config": cfg.to_dict(),
           "schedule": "quick (reduced)" if args.quick else "builder default", "device": str(dev),
           "precision": args.precision}
    devices.peak_memory(dev, reset=True)
    t0 = time.perf_counter()
    try:
        with phases(dev, cfg, t["model"].num_blocks, deadline) as ph:
            delta = build_clone(str(t["folder"]), str(s["folder"]), ds, clone, seed=args.seed, config=cfg,
                                device=dev, precision=args.precision)
    except OverBudget as exc:
        row.update(build_s=None, phases=ph.rows, note=f"not finished: {exc}")
        log(f"scale/paper: {arch}/{data}/{setting}: {row['note']}")
        return row
    row["build_s"] = round(time.perf_counter() - t0, 2)
    row["phases"] = ph.rows
    last = devices.peak_memory(dev)  # the phase timer resets the peak per phase: the build's is their maximum
    row["peak_device_bytes"] = None if last is None else max([last] + [p["peak_bytes"] or 0 for p in ph.rows])
    if dev.type == "cpu":
        import resource

        row["process_max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    met = dict(delta.metrics)
    row.update(R=met.get("R"), R_s=met.get("R_s"), mask_density=met.get("mask_density"),
               anchors=met.get("anchors"), negatives=met.get("negatives"))
    data_bytes = codec.dumps(delta)
    row["delta_bytes"] = len(data_bytes)
    row["model_bytes"] = t["info"]["model_bytes"]
    row["delta_over_model"] = round(len(data_bytes) / t["info"]["model_bytes"], 6)
    if not args.quick and dev.type == "cuda":
        row["goal_s"] = GOAL_S[arch]
        row["goal_met"] = row["build_s"] <= GOAL_S[arch]
    shape = t["model"].input_shape
    ori_set = tuple(v for v in select_classes(*ds.test, TARGET))
    tar_set = tuple(v for v in select_classes(*ds.test, clone))
    ori_set, tar_set = (fit_to_shape(ori_set[0], shape), ori_set[1]), (fit_to_shape(tar_set[0], shape), tar_set[1])
    model = ClonedNetwork.from_delta(delta, t["model"], [s["model"]]).to(dev).eval()
    labels = output_labels(delta, t["cfg"], [s["cfg"]])
    scores = {"pnc": B.score(B.Outcome(model, labels, len(data_bytes), "the clone-delta file", row["build_s"]),
                             ori_set, tar_set, len(TARGET), len(clone))}
    both = torch.cat([ori_set[0], tar_set[0]])
    pick = torch.linspace(0, len(both) - 1, min(args.agree_n, len(both))).round().long()
    row["cpu_apply_agreement"] = agreement(delta, t["model"], s["model"], model, both[pick], dev)
    X_dt, y_dt = take_fraction(*select_classes(*ds.train, clone), cfg.data_fraction, args.seed)
    task = B.Task(t["model"], TARGET, s["model"], SOURCE, clone, fit_to_shape(X_dt, shape).to(dev), y_dt,
                  seed=args.seed)
    runs = {"ensemble": lambda: B.direct_ensemble(task),
            "continual_kd": lambda: B.continual(task, epochs=args.ft_epochs, kd=True),
            "lora": lambda: B.lora(task, epochs=args.ft_epochs, kd=False)}
    for name in METHODS:
        try:
            with devices.compute(dev, args.precision):
                out = runs[name]()
            if dev.type == "cuda":
                devices.synchronize(dev)
            scores[name] = B.score(out, ori_set, tar_set, len(TARGET), len(clone))
        except (RuntimeError, ImportError) as exc:  # a baseline that cannot run is reported, the others still are
            scores[name] = {"note": f"not run: {type(exc).__name__}: {exc}"}
    row["scores"] = {k: {x: (round(v, 3) if isinstance(v, float) else v) for x, v in sc.items()
                         if x in ("ori", "tar", "avg", "bytes", "train_s", "note")} for k, sc in scores.items()}
    t["model"].to("cpu"), s["model"].to("cpu")
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    log(f"scale/paper: {arch}/{data}/{setting}: build {row['build_s']} s, R={row['R']}, delta "
        f"{row['delta_bytes']:,} B ({100 * row['delta_over_model']:.3f}% of the model); PNC Ori/Tar/Avg "
        + "/".join(f"{scores['pnc'][k]:.2f}" for k in ("ori", "tar", "avg"))
        + f"; CPU-apply agreement {row['cpu_apply_agreement']['agree']}%")
    return row


def run(args, dev, out_dir: Path, command: str, machine: dict, log=print) -> dict:
    """Every run of the plan, in order; the results file is rewritten after each."""
    import tempfile

    from pnc_pack.data import load_dataset

    plan = parse_plan(args.plan or (QUICK_PLAN if args.quick else FULL_PLAN))
    t_start = time.perf_counter()
    deadline = None if args.budget_s is None else t_start + args.budget_s
    stem = "scale-paper-quick" if args.quick else "scale-paper"
    res = {"benchmark": "scale/paper", "command": command, "machine": machine, "device": str(dev),
           "device_name": _device_name(dev), "quick": bool(args.quick), "plan": ["/".join(p) for p in plan],
           "runs": []}
    datasets = {}
    with tempfile.TemporaryDirectory(prefix="pnc-scale-paper-") as tmp:
        for arch, data, setting in plan:
            if data not in datasets:
                raw = load_dataset(f"idx:{args.data_root / data}")
                datasets[data] = padded(raw, 600 if args.quick else None)
            if deadline is not None and time.perf_counter() > deadline:
                res["runs"].append({"arch": arch, "data": data, "setting": setting, "note": "skipped: budget spent"})
                continue
            try:
                row = one_run(arch, data, setting, args, dev, datasets, Path(tmp), deadline, log)
            except Exception as exc:  # one failed run is reported; the runs after it still run (one GPU call)
                import traceback

                traceback.print_exc()
                row = {"arch": arch, "data": data, "setting": setting, "note": f"failed: {type(exc).__name__}: {exc}"}
            res["runs"].append(row)
            res["wall_s"] = round(time.perf_counter() - t_start, 1)
            write(res, out_dir, stem)
    res["wall_s"] = round(time.perf_counter() - t_start, 1)
    write(res, out_dir, stem)
    return res


def _device_name(dev) -> str:
    import platform

    import torch

    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or platform.machine())


def write(res: dict, out_dir: Path, stem: str) -> None:
    from pnc_pack.fsutil import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / f"{stem}.json", (json.dumps(res, indent=2, sort_keys=True) + "\n").encode())
    atomic_write(out_dir / f"{stem}.md", markdown(res).encode())


def _mib(b) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f} MiB"


def markdown(res: dict) -> str:
    label = ("QUICK CPU smoke run (tiny widths, data and steps: not a result)" if res["quick"] and
             res["device"] == "cpu" else ("QUICK run (reduced: not a result)" if res["quick"] else
                                          "full run, the builder's default schedule"))
    out = [f"**Paper scale, {label}**: device `{res['device']}` ({res['device_name']}); `{res['command']}`; "
           f"{res.get('wall_s', '?')} s in all.", "",
           "| run | build s | goal | R | peak device memory | delta bytes | model bytes | delta / model | "
           "CPU-apply argmax agreement |", "|" + "---|" * 9]
    for r in res["runs"]:
        name = f"{r['arch']} w{r.get('width', '?')} {r['data']} {r['setting']}"
        if r.get("build_s") is None:
            out.append(f"| {name} | - | | | | | | | {r.get('note', '')} |")
            continue
        goal = ("-" if "goal_s" not in r else f"<= {r['goal_s']:.0f} s: {'met' if r['goal_met'] else 'NOT met'}")
        peak = _mib(r.get("peak_device_bytes")) if r.get("peak_device_bytes") is not None else \
            f"(CPU; process max RSS {_mib(r.get('process_max_rss_bytes'))})"
        a = r["cpu_apply_agreement"]
        out.append(f"| {name} | {r['build_s']} | {goal} | {r['R']} | {peak} | {r['delta_bytes']:,} | "
                   f"{r['model_bytes']:,} | {100 * r['delta_over_model']:.3f}% | {a['agree']}% of {a['n']} "
                   f"(built on {a['built_on']}) |")
    out += ["", "Phases (wall s; steps/s where the phase trains; peak device memory during the phase):", "",
            "| run | phase | s | steps | steps/s | peak |", "|---|---|---|---|---|---|"]
    for r in res["runs"]:
        for p in r.get("phases") or []:
            out.append(f"| {r['arch']} {r['data']} {r['setting']} | {p['phase']} | {p['s']} | {p['steps'] or ''} | "
                       f"{p['steps_per_s'] or ''} | {_mib(p['peak_bytes'])} |")
    out += ["", "Accuracy on the test split (%), same models and D_t for every row:", "",
            "| run | method | Ori | Tar | Avg | bytes | train s |", "|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        for m, sc in (r.get("scores") or {}).items():
            if "note" in sc:
                out.append(f"| {r['arch']} {r['data']} {r['setting']} | {m} | {sc['note']} | | | | |")
                continue
            out.append(f"| {r['arch']} {r['data']} {r['setting']} | {m} | {sc['ori']:.2f} | {sc['tar']:.2f} | "
                       f"{sc['avg']:.2f} | {sc['bytes'] if sc['bytes'] is not None else '-'} | {sc['train_s']} |")
    out += ["", "Zoo models (test accuracy on their own classes; training time):", ""]
    seen = set()
    for r in res["runs"]:
        for role, z in (r.get("zoo") or {}).items():
            key = (r["arch"], r["data"], role)
            if key not in seen:
                seen.add(key)
                out.append(f"- {r['arch']} {r['data']} {role} {z['classes']}: {z['parameters']:,} parameters, "
                           f"{z['model_bytes']:,} B, test acc {z['test_accuracy']}, {z['train_s']} s")
    return "\n".join(out) + "\n"
