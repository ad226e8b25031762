"""Several sources in one clone, and choosing a source: a Table 3-style sweep (SUPP §1.2) on MNIST.

Setting: a LeNet-5 target on classes 0,1; four functionalities F1..F4 = {2,3}, {4,5}, {6,7}, {8,9}. For each F_j
the zoo offers three candidate sources trained on F_j plus the next pair (so cloning F_j is a *partial* clone):
a LeNet-5, a plain CNN (width 8) and a LeNet-5 trained on 1% of the data for one epoch.

1. Source selection (SUPP Eqs. 6-8): the candidates of each F_j are scored by the similarity of their local model
   sets to the target's on D_t (ZEST-aligned), with the local models regressing log-probabilities (the default),
   raw logits (as ZEST), logits with the intercept kept, or probabilities (as LIME), over ``--draws`` draws of
   anchors and masks; then every candidate is built and evaluated alone with the target (Avg on the test set).
   Agreement = the chosen candidate gives the best clone (chance: 1/3); as two candidates can give clones within
   noise of each other, the Avg points lost against the best candidate's clone are reported too.
2. Table 3 sweep: the clone with P = 1..4 sources (the LeNet-5 candidate of F_1..F_P), composed
   (``pnc_pack.format.compose``): accuracy per functionality (Acc-1 = the target's own classes), Avg over all
   classes, where misclassified images go, and the delta size as sources are added.
3. Removal: the P=4 clone minus its last module against the P=3 clone (logits, predictions, bytes), and each
   module's accuracy alone with the target against its accuracy among the four.

Zoo models and built deltas are cached in ``--workdir`` (a delta's key covers its inputs and the builder's code).
Writes tools/bench/results/multi.json and multi.md (``--out NAME``: multi-NAME.*); then ``python -m tools.bench
report`` adds them to RESULTS.md.

    python -m tools.bench multi --data idx:data/mnist
    python -m tools.bench multi --data idx:data/fashion-mnist --out fashion
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tools.bench import add_device_option, device_dir, device_of, device_record

RESULTS = Path(__file__).parent / "results"
TARGET = [0, 1]
FUNCS = [[2, 3], [4, 5], [6, 7], [8, 9]]
CANDIDATES = {  # name: (arch, arch args, training settings beyond --epochs)
    "lenet5": ("lenet5", {}, {}),
    "plaincnn": ("plaincnn", {"width": 8, "image_size": 28}, {}),
    "lenet5-1%data": ("lenet5", {}, {"epochs": 1, "data_fraction": 0.01}),
}
SWEEP_SOURCE = "lenet5"  # the Table 3 sweep uses this candidate for every functionality (as Table 3: one architecture)


def zoo_model(work: Path, name: str, arch: str, arch_args: dict, ds, classes, seed: int, train: dict) -> Path:
    """A trained zoo model folder, cached in ``work`` (deterministic for the same settings and thread count)."""
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    folder = work / name
    if not (folder / "model.safetensors").is_file():
        model, config = train_model(arch, arch_args or None, ds, classes, seed=seed, **train)
        save_pretrained(model, config, folder)
    return folder


def own_accuracy(folder: Path, ds, classes, device=None) -> float:
    """The pretrained model alone on the test images of ``classes``, within its own label space."""
    import torch

    from pnc_pack.clone.evaluate import predict
    from pnc_pack.zoo.pretrained import load_pretrained
    from pnc_pack.zoo.training import prepare_split

    model, cfg = load_pretrained(folder)
    model.to(device or "cpu")
    X, y = prepare_split(*ds.test, cfg.labels, model.input_shape)
    keep = torch.tensor([cfg.labels[int(v)] in classes for v in y.tolist()])
    pred = predict(model, X[keep])
    return round(float((pred == y[keep]).float().mean()), 6)


def _score(delta, ds, device=None) -> dict:
    from pnc_pack.api.model import apply
    from pnc_pack.clone.evaluate import evaluate_delta_model

    return evaluate_delta_model(apply(delta, device=device), ds, detail=True)


VARIANTS = {  # select_source(output=..., intercept=..., rule=...)
    "logprob": {"output": "logprob"},  # the default: the paper's rule, local models on log-probabilities
    "logits (ZEST)": {"output": "logits"},
    "logits + intercept": {"output": "logits", "intercept": True},
    "prob (LIME)": {"output": "prob"},
    "D_t accuracy": {"rule": "accuracy"},  # not the paper's: the source's own accuracy on D_t
    "competent": {"rule": "competent"},  # the most similar (logprob) within 2 points of the best D_t accuracy
}


def builder_digest() -> str:
    """sha256 over the builder's sources: a cached delta is reused only if the builder has not changed."""
    import hashlib

    import pnc_pack.builder as b

    h = hashlib.sha256()
    for f in sorted(Path(b.__file__).parent.glob("*.py")):
        if f.name not in ("multi.py", "select.py"):  # not used by build_clone
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cached_build(work: Path, folder: Path, target: Path, ds, F, cfg, seed: int, device=None):
    """build_clone, cached in ``work`` under a key of every input (and the builder's code)."""
    import hashlib

    from pnc_pack.builder import build_clone
    from pnc_pack.format import codec
    from pnc_pack.refs import sha256_file

    key = hashlib.sha256(json.dumps([sha256_file(folder / "model.safetensors").sha256,
                                     sha256_file(target / "model.safetensors").sha256, F, seed, cfg.to_dict(),
                                     builder_digest()], sort_keys=True).encode()).hexdigest()[:16]
    path = work / "deltas" / f"{folder.name}-{key}.pncd"
    if path.is_file():
        return codec.load(path), None
    t0 = time.perf_counter()
    d = build_clone(str(target), str(folder), ds, F, seed=seed, config=cfg, device=device)
    dt = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    codec.save(d, path)
    return d, dt


def selection_round(j, work, ds, target, cfg, args, log) -> tuple[dict, list]:
    """Functionality j: score the candidates (every variant), build each, compare. Returns (row, deltas)."""
    from pnc_pack.builder.select import score_variants, select_source
    from pnc_pack.format import codec

    F = FUNCS[j]
    classes = F + FUNCS[(j + 1) % len(FUNCS)]
    dev = args.dev
    folders = [zoo_model(work, f"F{j + 1}-{name}", arch, a, ds, classes, args.seed,
                         {"epochs": args.epochs, "device": dev, **kw}) for name, (arch, a, kw) in CANDIDATES.items()]
    t0 = time.perf_counter()
    select_source(target, folders, ds, F, seed=args.seed, config=cfg, max_anchors=args.max_anchors, device=dev)
    t_sel = time.perf_counter() - t0  # what --select-source costs
    draws = [score_variants(target, folders, ds, F, VARIANTS, seed=args.seed + k, config=cfg,
                            max_anchors=args.max_anchors, device=dev) for k in range(args.draws)]
    scores = {v: draws[0][v].scores for v in VARIANTS}  # the first draw (seed) is the one shown
    deltas, cands, t_build = [], [], 0.0
    for i, (name, folder) in enumerate(zip(CANDIDATES, folders)):
        d, dt = cached_build(work, folder, target, ds, F, cfg, args.seed, dev)
        t_build += dt or 0.0
        e = _score(d, ds, dev)
        deltas.append(d)
        cands.append({"candidate": name, "source_acc": own_accuracy(folder, ds, F, dev),
                      "dt_acc": draws[0]["logprob"].details[i]["dt_accuracy"],
                      **{f"sim {v}": round(scores[v][i], 4) for v, kw in VARIANTS.items() if "rule" not in kw},
                      "ori": e["ori"], "tar": e["tar"],
                      "avg": e["avg"], "R": d.modules[0].target_position, "delta_bytes": len(codec.dumps(d)),
                      "build_s": None if dt is None else round(dt, 1)})
        log(f"  F{j + 1} {name:<14} sim " + " ".join(f"{scores[v][i]:+.4f}" for v, kw in VARIANTS.items()
                                                    if "rule" not in kw) +
            f"  D_t acc {cands[-1]['dt_acc']:.4f}  source {cands[-1]['source_acc']:.4f}  clone Ori {e['ori']:.4f} Tar {e['tar']:.4f} Avg {e['avg']:.4f}"
            f"  R={cands[-1]['R']}" + (f"  {dt:.0f}s" if dt else "  (cached)"))
    avgs = [c["avg"] for c in cands]
    best = max(range(len(cands)), key=lambda i: (avgs[i], -i))
    order = lambda vals: sorted(range(len(vals)), key=lambda i: -vals[i])  # noqa: E731
    row = {"functionality": f"F{j + 1} {F}", "best_clone": cands[best]["candidate"],
           **{f"chosen {v}": "/".join(cands[d[v].best]["candidate"] for d in draws) for v in VARIANTS},
           **{f"agree {v}": sum(d[v].best == best for d in draws) for v in VARIANTS},
           **{f"same ranking {v}": sum(order(d[v].scores) == order(avgs) for d in draws) for v in VARIANTS},
           **{f"lost {v}": round(sum(avgs[best] - avgs[d[v].best] for d in draws), 6) for v in VARIANTS},
           "select_s": round(t_sel, 1), "build_all_s": round(t_build, 1) if t_build else None, "candidates": cands}
    return row, deltas


def sweep(chosen, ds, log, device=None) -> tuple[list, dict]:
    """Table 3: P = 1..len(chosen) sources composed; and removal of the last one."""
    import torch

    from pnc_pack.api.model import apply
    from pnc_pack.data import fit_to_shape
    from pnc_pack.format import codec
    from pnc_pack.format.compose import compose, remove

    rows = []
    for P in range(1, len(chosen) + 1):
        d = compose(chosen[:P])
        e = _score(d, ds, device)
        accs = {f"Acc-{i + 1}": f["acc"] for i, f in enumerate(e["functionalities"])}
        misrouted = {f"F{i}->other modules": round(sum(v for k, v in e["routing"][f"module {i - 1}"].items()
                                                       if k not in ("target", f"module {i - 1}")), 4)
                     for i in range(1, P + 1)}
        rows.append({"sources": P, **accs, "Avg": e["avg"], "Ori": e["ori"], "Tar": e["tar"],
                     "delta_bytes": len(codec.dumps(d)), "target_to_modules": round(1 - e["routing"]["target"]["target"], 4),
                     **misrouted})
        log(f"  P={P}: " + "  ".join(f"{k} {v:.4f}" for k, v in accs.items()) + f"  Avg {e['avg']:.4f}  "
            f"{rows[-1]['delta_bytes']} bytes")
    full = compose(chosen)
    minus_last = apply(remove(full, [len(chosen) - 1]), device=device)
    before = apply(compose(chosen[:-1]), device=device)
    X = fit_to_shape(ds.test[0], before.input_shape).to(device or "cpu")
    with torch.inference_mode():
        a, b = minus_last(X), before(X)
    removal = {"max_abs_logit_diff": float((a - b).abs().max()), "prediction_agreement": float((a.argmax(1) == b.argmax(1)).float().mean()),
               "bytes_identical": codec.dumps(remove(full, [len(chosen) - 1])) == codec.dumps(compose(chosen[:-1])),
               "test_images": int(len(X))}
    return rows, removal


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench multi")
    ap.add_argument("--data", default=None, help="default: idx:data/mnist if present, else mnist5k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2, help="zoo models' training epochs")
    ap.add_argument("--data-fraction", type=float, default=0.1, help="share of D_t used (the paper: 0.1 on MNIST)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--retune-steps", type=int, default=20)
    ap.add_argument("--masks-per-anchor", type=int, default=20)
    ap.add_argument("--pool-size", type=int, default=4000)
    ap.add_argument("--max-anchors", type=int, default=200)
    ap.add_argument("--draws", type=int, default=3, help="draws of anchors and masks B for the selection scores")
    ap.add_argument("--workdir", default="/tmp/pnc-bench-multi")
    ap.add_argument("--out", default=None, help="write results/multi-OUT.json instead of results/multi.json")
    add_device_option(ap)
    args = ap.parse_args(argv)
    args.dev = device_of(ap, args)
    from pnc_pack.builder import BuildConfig
    from pnc_pack.data import load_dataset
    from tools.bench.report import machine

    t_all = time.perf_counter()
    data = args.data or ("idx:data/mnist" if Path("data/mnist").is_dir() else "mnist5k")
    ds = load_dataset(data)
    work = (Path(args.workdir) / ds.name.replace("/", "_").replace(":", "_")
            / f"seed{args.seed}-e{args.epochs}{device_dir(args.dev)}")
    cfg = BuildConfig(data_fraction=args.data_fraction, steps=args.steps, retune_steps=args.retune_steps,
                      masks_per_anchor=args.masks_per_anchor, pool_size=args.pool_size)
    target = zoo_model(work, "target", "lenet5", {}, ds, TARGET, args.seed, {"epochs": args.epochs, "device": args.dev})
    print(f"target LeNet-5 on {TARGET}: {own_accuracy(target, ds, TARGET, args.dev):.4f}")
    sel_rows, modules = [], []
    for j in range(len(FUNCS)):
        row, deltas = selection_round(j, work, ds, target, cfg, args, print)
        sel_rows.append(row)
        modules.append(deltas[list(CANDIDATES).index(SWEEP_SOURCE)])
    print(f"Table 3 sweep (every module from the {SWEEP_SOURCE} candidate):")
    rows, removal = sweep(modules, ds, print, args.dev)
    alone = [{"functionality": r["functionality"], "source": SWEEP_SOURCE,
              "acc_alone": r["candidates"][list(CANDIDATES).index(SWEEP_SOURCE)]["tar"],
              "acc_among_all": rows[-1][f"Acc-{j + 2}"]} for j, r in enumerate(sel_rows)]
    n = len(sel_rows)
    out = {"command": "python -m tools.bench multi" + (f" --data {args.data}" if args.data else "")
           + (f" --out {args.out}" if args.out else ""),
           **device_record(args.dev),
           "machine": machine(), "data": data, "seed": args.seed, "target_classes": TARGET,
           "functionalities": FUNCS, "zoo_epochs": args.epochs, "max_anchors": args.max_anchors,
           "candidates": {k: {"arch": a, "arch_args": aa, **kw} for k, (a, aa, kw) in CANDIDATES.items()},
           "build": {k: v for k, v in cfg.to_dict().items() if k in ("data_fraction", "steps", "retune_steps",
                                                                      "masks_per_anchor", "pool_size")},
           "target_acc": own_accuracy(target, ds, TARGET, args.dev), "sweep_source": SWEEP_SOURCE,
           "selection_draws": args.draws,
           "selection_agreement": {v: f"{sum(r[f'agree {v}'] for r in sel_rows)}/{n * args.draws}" for v in VARIANTS},
           "selection_same_ranking": {v: f"{sum(r[f'same ranking {v}'] for r in sel_rows)}/{n * args.draws}"
                                      for v in VARIANTS},
           "selection_avg_lost": {v: round(100 * sum(r[f"lost {v}"] for r in sel_rows) / (n * args.draws), 2)
                                  for v in VARIANTS},
           "selection_agreement_rate": round(sum(r["agree logprob"] for r in sel_rows) / (n * args.draws), 4),
           "chance_rate": round(1 / len(CANDIDATES), 4), "sweep": rows, "removal": removal, "alone_vs_all": alone,
           "selection": [{k: v for k, v in r.items() if k != "candidates"} for r in sel_rows],
           "candidate_clones": [{"functionality": r["functionality"], **c} for r in sel_rows for c in r["candidates"]],
           "wall_s": round(time.perf_counter() - t_all, 1)}
    RESULTS.mkdir(exist_ok=True)
    stem = "multi" if args.out is None else f"multi-{args.out}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(out))
    print(markdown(out))
    return 0


def markdown(out: dict) -> str:
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}"  # noqa: E731
    b = out["build"]
    lines = [f"Several sources in one clone on `{out['data']}`, seed {out['seed']}: LeNet-5 target on "
             f"{out['target_classes']} ({pct(out['target_acc'])}%), functionalities {out['functionalities']}; builder "
             f"steps {b['steps']}, retune {b['retune_steps']}, {b['masks_per_anchor']} masks per anchor, pool "
             f"{b['pool_size']}, {b['data_fraction']:.0%} of D_t; wall {out['wall_s']} s.", "",
             f"**Table 3 sweep** (accuracy in %; Acc-1 = the target's classes, Acc-(j+1) = functionality F_j, every "
             f"module from the {out['sweep_source']} candidate; 'to other modules' = share of F_j's images predicted as "
             "another module's class):", ""]
    P = len(out["sweep"])
    head = (["sources"] + [f"Acc-{i}" for i in range(1, P + 2)] + ["Avg", "target imgs to modules"]
            + [f"F{i} to other modules" for i in range(1, P + 1)] + ["delta bytes"])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in out["sweep"]:
        cells = [str(r["sources"])] + [pct(r[f"Acc-{i}"]) if f"Acc-{i}" in r else "" for i in range(1, P + 2)]
        cells += [pct(r["Avg"]), pct(r["target_to_modules"])]
        cells += [pct(r[f"F{i}->other modules"]) if f"F{i}->other modules" in r else "" for i in range(1, P + 1)]
        lines.append("| " + " | ".join(cells + [str(r["delta_bytes"])]) + " |")
    rm = out["removal"]
    lines += ["", f"Removing the last module of the {P}-source clone: max |logit difference| against the {P - 1}-source "
              f"clone {rm['max_abs_logit_diff']}, predictions identical on {pct(rm['prediction_agreement'])}% of "
              f"{rm['test_images']} test images, delta bytes identical: {rm['bytes_identical']}.", "",
              "| functionality | source | alone with the target | among all four |", "|---|---|---|---|"]
    lines += [f"| {a['functionality']} | {a['source']} | {pct(a['acc_alone'])} | {pct(a['acc_among_all'])} |"
              for a in out["alone_vs_all"]]
    lines += ["", f"**Source selection** (chance {pct(out['chance_rate'])}%; {out['selection_draws']} draws of anchors "
              "and masks per functionality): the chosen source gives the best clone in " +
              ", ".join(f"{a} ({v})" for v, a in out["selection_agreement"].items()) + " trials; the scores rank "
              "all three candidates as their clones rank in " +
              ", ".join(f"{a} ({v})" for v, a in out["selection_same_ranking"].items()) + "; the chosen clone's Avg is "
              "below the best candidate's by, on average over the trials (percentage points; 0: always the best): " +
              ", ".join(f"{a:.2f} ({v})" for v, a in out["selection_avg_lost"].items()) + ". Scores below: the "
              "first draw.", ""]
    variants = list(out["selection_agreement"])
    sims = [k[4:] for k in out["candidate_clones"][0] if k.startswith("sim ")]
    head = ["functionality", "candidate", "source acc (test)", "on D_t"] + [f"sim {v}" for v in sims] + ["clone Ori", "Tar", "Avg",
                                                                                          "R", "build s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in out["candidate_clones"]:
        lines.append("| " + " | ".join([c["functionality"], c["candidate"], pct(c["source_acc"]), pct(c["dt_acc"])]
                                       + [f"{c[f'sim {v}']:+.4f}" for v in sims]
                                       + [pct(c["ori"]), pct(c["tar"]), pct(c["avg"]), str(c["R"]),
                                          str(c["build_s"] if c["build_s"] is not None else "cached")]) + " |")
    head = ["functionality", "best clone"] + [f"chosen {v} (per draw)" for v in variants] + ["select s",
                                                                                            "build all s"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([r["functionality"], r["best_clone"]] + [r[f"chosen {v}"] for v in variants]
                                + [str(r["select_s"]), str(r["build_all_s"])]) + " |" for r in out["selection"]]
    return "\n".join(lines) + "\n"
