"""Where a clone's routing errors go, and what other operating points would give: a diagnostic for the builder.

For each single-module clone delta, on the test split of ``--data`` (or, with ``--split val``, on the paper bench's
validation split, for choosing a recall without looking at the test split):
- the unmodified target's accuracy on its own classes (the reference of the issue's "Ori within 1.5" band);
- the errors by class at the delta's own operating point: old-class images routed to a cloned class (old class ->
  cloned class), cloned-class images left to the target (cloned class -> old class), and cloned-class images
  given another cloned class;
- Ori / Tar / Avg (PAPER.md §4) when the cloned classes' biases are shifted to other held-out recalls, as the
  builder's calibration does (``pnc_pack.builder.search.calibrate``): the held-out D_t anchors are drawn again
  exactly as the builder drew them (``pnc_pack.builder.api.split_d_t`` with the data fraction, holdout share and
  seed in the delta's provenance), so the row at the builder's own recall gives the delta's own numbers back.

Nothing is retrained: this asks "what would the same clone do at another operating point", which is how the
recall defaults were chosen (docs/builder-notes.md). By default it reads the paper benchmark's PNC deltas:

    python -m tools.bench routing --data idx:data/mnist --seeds 0,1,2 --setting M
    python -m tools.bench routing --data idx:data/mnist --split val --seeds 0,1,2 --setting M
    python -m tools.bench routing --data idx:data/mnist path/to/clone.pncd ...

Writes tools/bench/results/routing-<data>-<setting>.json and .md (``--out NAME``: routing-NAME.*).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from tools.bench.report import BAND  # the builder issue's "Ori within 1.5 points of the unmodified target"

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = HERE / "results"
RECALLS = (0.93, 0.95, 0.96, 0.97, 0.98, 0.99)


def _scores(pred: torch.Tensor, want: torch.Tensor, n_old: int, k: int) -> dict:
    from pnc_pack.clone.evaluate import ori_tar_avg

    old = want < n_old
    ori, tar, avg = ori_tar_avg(pred, want, n_old, k)
    return {"ori": round(100 * ori, 2), "tar": round(100 * tar, 2), "avg": round(100 * avg, 2),
            "old_routed_new": round(100 * float((pred[old] >= n_old).float().mean()), 2),
            "new_routed_new": round(100 * float((pred[~old] >= n_old).float().mean()), 2)}


def analyse(delta, dataset, recalls=RECALLS, *, source=None, target=None, band: float = BAND, device=None) -> dict:
    """The diagnostic of one delta (a CloneDelta or a path) on ``dataset``'s test split (see the module's docs;
    for ``--split val`` the paper bench's validation split stands in as the test split)."""
    from pnc_pack.api.model import apply
    from pnc_pack.api.specs import open_delta
    from pnc_pack.builder.api import split_d_t
    from pnc_pack.builder.config import BuildConfig
    from pnc_pack.builder.search import recall_shift, routing_margin
    from pnc_pack.clone.evaluate import labelled_split, predict
    from pnc_pack.clone.evaluate import logits as outputs
    from pnc_pack.errors import UsageError

    d = open_delta(delta)
    if len(d.modules) != 1:
        raise UsageError(f"routing: single-module deltas only, this one has {len(d.modules)} modules")
    prov = d.provenance or {}
    if "config" not in prov or "seed" not in prov or "clone_classes" not in prov:
        raise UsageError("routing: the delta's provenance lacks the builder's config, seed or classes")
    cfg = BuildConfig(**{k: prov["config"][k] for k in ("data_fraction", "holdout") if k in prov["config"]})
    cloned = apply(d, source=source, target=target, device=device)
    labels, n_old = cloned.output_labels, int(d.classifier_args["num_old"])
    k = len(labels) - n_old
    classes = [int(c) for c in prov["clone_classes"]]
    anchors, _, _, ho, _ = split_d_t(dataset, classes, cfg, int(prov["seed"]), cloned.input_shape)
    X, want = labelled_split(cloned, dataset, "test")
    logits = outputs(cloned, X)
    m_ho = routing_margin(outputs(cloned, anchors[ho]), n_old)
    target_acc = float((predict(cloned.detach(), X[want < n_old]) == want[want < n_old]).float().mean())
    own = prov["config"].get("route_recall" if k == 1 else "route_recall_multi")
    rows = []
    for r, shift in [("as built", 0.0)] + [(r, recall_shift(m_ho, r)) for r in recalls]:
        adj = logits.clone()
        adj[:, n_old:] -= shift
        row = {"recall": r, "held_out_routed_new": round(100 * float((m_ho - shift > 0).float().mean()), 2),
               **_scores(adj.argmax(1), want, n_old, k)}
        rows.append({**row, "ori_in_band": row["ori"] >= 100 * target_acc - band})
    pred = logits.argmax(1)
    errors = {}
    for name, sel in (("old -> cloned", (want < n_old) & (pred >= n_old)),
                      ("cloned -> old", (want >= n_old) & (pred < n_old)),
                      ("cloned -> other cloned", (want >= n_old) & (pred >= n_old) & (pred != want))):
        pairs = {}
        for a, b in zip(want[sel].tolist(), pred[sel].tolist()):
            key = f"{labels[a]}->{labels[b]}"
            pairs[key] = pairs.get(key, 0) + 1
        errors[name] = dict(sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])))
    return {"clone_classes": classes, "R": d.modules[0].target_position, "seed": prov["seed"],
            "builder_recall": own, "target_acc": round(100 * target_acc, 2), "test_images": int(len(want)),
            "old_test_images": int((want < n_old).sum()),
            "held_out_anchors": int(len(ho)), "rows": rows, "errors": errors}


def markdown(out: dict) -> str:
    lines = [f"Routing diagnostic on `{out['data']}`. Command: `{out['command']}`", "",
             "Per delta: the clone at its own operating point ('as built'), then the same clone with the cloned "
             "classes' biases shifted so that the given share of its held-out D_t anchors is routed new (nothing "
             "retrained). Accuracies in %; 'old routed new' = old-class test images given a cloned class; band = "
             f"Ori within {out['band']} of the target.", ""]
    for item in out["deltas"]:
        a = item["analysis"]
        lines += [f"**{item['name']}**: classes {a['clone_classes']}, R={a['R']}, seed {a['seed']}, target "
                  f"{a['target_acc']}% on its classes, builder recall {a['builder_recall']}, "
                  f"{a['held_out_anchors']} held-out anchors.", "",
                  "| held-out recall | held-out routed new | Ori | Tar | Avg | old routed new | cloned routed new "
                  "| band |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in a["rows"]:
            lines.append(f"| {r['recall']} | {r['held_out_routed_new']} | {r['ori']} | {r['tar']} | {r['avg']} | "
                         f"{r['old_routed_new']} | {r['new_routed_new']} | {'in' if r['ori_in_band'] else 'OUT'} |")
        lines.append("")
        for name, pairs in a["errors"].items():
            shown = ", ".join(f"{p} {n}" for p, n in list(pairs.items())[:8]) or "none"
            lines.append(f"- errors {name} (true->predicted, test images): {shown}")
        lines.append("")
    return "\n".join(lines)


def _recalls(text: str) -> list[float]:
    try:
        out = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated shares, got {text!r}") from None
    if not out or not all(0 < r <= 1 for r in out):
        raise argparse.ArgumentTypeError(f"recalls must be in (0, 1], got {text!r}")
    return out


def main(argv=None) -> int:
    from pnc_pack.errors import PncError
    from tools.bench import add_device_option, device_of, device_record, paper

    ap = argparse.ArgumentParser(prog="python -m tools.bench routing")
    ap.add_argument("deltas", nargs="*", type=Path, help="clone deltas (default: the paper benchmark's PNC deltas)")
    ap.add_argument("--data", default=None, help="the dataset the deltas were built on (default: as the paper bench)")
    ap.add_argument("--seeds", type=paper._ints, default=[0, 1, 2])
    ap.add_argument("--setting", choices=("S", "M"), default="M")
    ap.add_argument("--row", default="pnc", help="which of the paper bench's PNC rows (pnc, pnc_no_local, ...)")
    ap.add_argument("--arch", default="lenet5")
    paper.add_split_options(ap)
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench-paper")
    ap.add_argument("--recalls", type=_recalls, default=list(RECALLS), help="held-out recalls, e.g. 0.95,0.97")
    ap.add_argument("--band", type=float, default=BAND)
    ap.add_argument("--out", default=None)
    add_device_option(ap)
    args = ap.parse_args(argv)
    args.dev = device_of(ap, args)
    args.data = args.data or paper.default_data()
    if args.deltas:
        paths = list(args.deltas)
    else:
        paths = [paper.seed_dir(args, s) / f"pnc-{args.setting}" / f"{args.row}.pnc" for s in args.seeds]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        ap.error(f"no delta at {', '.join(missing)} (run `python -m tools.bench paper` first, or name deltas)")
    try:
        dataset = paper.load_split(args)
        analyses = [analyse(p, dataset, args.recalls, band=args.band, device=args.dev) for p in paths]
    except PncError as exc:
        print(f"routing: {exc}", file=sys.stderr)
        return 1
    out = {"command": "python -m tools.bench routing " + " ".join(argv if argv is not None else []),
           "data": args.data, "band": args.band, **device_record(args.dev),
           "deltas": [{"name": str(p.resolve().relative_to(ROOT)) if p.resolve().is_relative_to(ROOT) else str(p),
                       "analysis": a} for p, a in zip(paths, analyses)]}
    stem = f"routing-{args.out}" if args.out else f"routing-{paper.data_key(args)}-{args.setting}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(out))
    print(markdown(out))
    return 0
