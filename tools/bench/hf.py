"""Clones between transformers image classifiers (hf-* architectures) on MNIST and Fashion-MNIST, and delta size.

For each dataset (idx files under data/, ``python tools/fetch_data.py``) and each pair TARGET:SOURCE of model types:
a tiny TARGET on classes 0-4 and a tiny SOURCE on 5-9 are made by transformers from random configs (widths 8-32,
32x32 RGB through their own ``preprocessor_config.json``; ``tests/hf_models.py``) and trained on a share of the
training images (``tools.hf_example.train_folder``: Adam, seeded); then ``build_clone`` clones ``--clone`` classes
from the source into the target (the builder's defaults, changed only by ``--set``), and the clone and Direct
Ensemble (target logits beside the source's logits of the cloned classes, argmax; needs the whole source) are
evaluated on the test images of classes 0-4 and the cloned ones: Ori / Tar / Avg as everywhere
(``pnc_pack.clone.evaluate``). Delta bytes are given as a share of the target's and of both models' weights.

Then the share a delta is of a ResNet-50-sized model: an HF ResNet-50 (``ResNetConfig()``: 25.6M parameters, 224x224)
target and source (random weights: only bytes matter), and a delta of untrained parts at each insertion position R
(``builder.api.fresh_delta``: every tensor and mask a built delta has), its bytes against the target's weights.

    python -m tools.bench hf [--datasets mnist,fashion-mnist] [--pairs resnet:convnext,convnext:mobilenet_v2]
                             [--train-fraction 0.1] [--epochs 3] [--clone 5] [--set NAME=VALUE ...] [--no-r50]

Writes tools/bench/results/hf.json and hf.md (the command included).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from tools.bench import add_device_option, device_of, device_record

RESULTS = Path(__file__).parent / "results"
DATA = {"mnist": "idx:data/mnist", "fashion-mnist": "idx:data/fashion-mnist"}


def _pct(x: float) -> float:
    return round(100 * x, 2)


def make_models(work: Path, ds, types, fraction: float, epochs: int, seed: int, device=None) -> dict:
    """{(model type, half): (folder, test accuracy)} for the halves 'target' (0-4) and 'source' (5-9)."""
    from pnc_pack.data import take_fraction
    from tests.hf_models import write_hf_folder
    from tools.hf_example import train_folder

    train = take_fraction(*ds.train, fraction, seed)
    small = type(ds)(ds.name, train, ds.test, ds.class_names)
    out = {}
    for mt, half in types:
        labels = [0, 1, 2, 3, 4] if half == "target" else [5, 6, 7, 8, 9]
        kw = {"patch_size": 4} if mt.startswith("convnext") else {}  # 8x8 after the stem, as tools.hf_example
        folder = write_hf_folder(work / f"{mt}-{half}", mt, seed=seed, labels=labels, **kw)
        t0 = time.process_time()
        acc = train_folder(folder, small, labels, epochs=epochs, seed=seed, device=device)
        out[(mt, half)] = (folder, round(acc, 4), round(time.process_time() - t0, 1))
    return out


@torch.inference_mode()
def ensemble(tgt_dir: Path, src_dir: Path, ds, clone: list[int], device=None) -> dict:
    """Direct Ensemble: [target logits | source logits of the cloned classes], argmax, on the test images."""
    from pnc_pack.clone.evaluate import ori_tar_avg
    from pnc_pack.data import select_classes
    from pnc_pack.zoo.pretrained import load_pretrained

    dev = torch.device(device or "cpu")
    tgt, tcfg = load_pretrained(tgt_dir)
    src, scfg = load_pretrained(src_dir)
    tgt.to(dev), src.to(dev)
    labels = list(tcfg.labels) + clone
    X, y = select_classes(*ds.test, labels)
    cols = [scfg.labels.index(c) for c in clone]
    out = []
    for i in range(0, len(y), 1024):
        x = X[i:i + 1024]  # prepared on the CPU (Pillow), then moved
        out.append(torch.cat([tgt(tgt.prepare_images(x).to(dev)), src(src.prepare_images(x).to(dev))[:, cols]],
                             1).argmax(1).cpu())
    want = torch.tensor([labels.index(int(v)) for v in y.tolist()])
    ori, tar, avg = ori_tar_avg(torch.cat(out), want, len(tcfg.labels), len(clone))
    return {"ori": round(ori, 4), "tar": round(tar, 4), "avg": round(avg, 4)}


def resnet50_share(work: Path) -> dict:
    """Bytes of a delta at each R for an HF ResNet-50-sized target and source, against the target's weights."""
    import transformers

    from pnc_pack.builder.api import fresh_delta
    from pnc_pack.format import codec
    from pnc_pack.zoo.pretrained import load_pretrained, local_ref
    from tests.hf_models import processor

    folders = []
    for name, labels in (("r50-target", range(5)), ("r50-source", range(5, 10))):
        id2label = {i: str(c) for i, c in enumerate(labels)}
        torch.manual_seed(0)
        model = transformers.ResNetForImageClassification(transformers.ResNetConfig(id2label=id2label,
                                                                                    label2id={}))
        model.save_pretrained(work / name)
        processor("resnet", 224).save_pretrained(work / name)
        folders.append(work / name)
    tref, sref = local_ref(folders[0]), local_ref(folders[1])
    tgt, _ = load_pretrained(folders[0], tref)
    src, _ = load_pretrained(folders[1], sref)
    weights = (folders[0] / "model.safetensors").stat().st_size
    rows = {}
    for R in range(tgt.num_blocks):
        d = fresh_delta(tgt, src, R, tref, sref, clone_idx=(0,))
        n = len(codec.dumps(d))
        # a fresh adapter is the identity (zeros compress); trained floats do not: their raw bytes plus the masks
        raw = sum(len(v.data) for v in [*d.modules[0].adapter.values(), *d.classifier.values()])
        raw += sum((m.filters + 7) // 8 for m in d.modules[0].masks)
        rows[R] = {"delta_bytes": n, "share_of_target_pct": round(100 * n / weights, 4), "trained_bytes": raw,
                   "trained_share_of_target_pct": round(100 * raw / weights, 4)}
    params = sum(p.numel() for p in tgt.parameters())
    return {"params": params, "weights_bytes": weights, "per_R": rows}


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench hf")
    ap.add_argument("--datasets", default="mnist,fashion-mnist")
    ap.add_argument("--pairs", default="resnet:convnext,convnext:mobilenet_v2")
    ap.add_argument("--train-fraction", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--clone", default="5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--no-r50", action="store_true")
    ap.add_argument("--tag", default="")
    add_device_option(ap)
    args = ap.parse_args(argv)
    dev = device_of(ap, args)
    from pnc_pack.builder import build_clone
    from pnc_pack.cli._build_opts import parse_settings
    from pnc_pack.data import load_dataset
    from pnc_pack.format import codec

    overrides = parse_settings(args.sets)
    clone = [int(c) for c in args.clone.split(",")]
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    types = sorted({(t, "target") for t, _ in pairs} | {(s, "source") for _, s in pairs})
    out = {"command": "python -m tools.bench hf " + " ".join(shlex.quote(a) for a in argv), "clone": clone,
           **device_record(dev), "train_fraction": args.train_fraction, "epochs": args.epochs, "seed": args.seed,
           "settings": {k: str(v) for k, v in overrides.items()}, "threads": torch.get_num_threads(), "rows": []}
    with tempfile.TemporaryDirectory(prefix="pnc-bench-hf-") as tmp:
        work = Path(tmp)
        for name in args.datasets.split(","):
            ds = load_dataset(DATA[name])
            models = make_models(work / name, ds, types, args.train_fraction, args.epochs, args.seed, dev)
            out.setdefault("models", {})[name] = {f"{mt}-{half}": {"test_acc": acc, "train_cpu_s": cpu}
                                                  for (mt, half), (_, acc, cpu) in models.items()}
            for t, s in pairs:
                tdir, sdir = models[(t, "target")][0], models[(s, "source")][0]
                c0 = time.process_time()
                delta = build_clone(str(tdir), str(sdir), ds, clone, seed=args.seed, eval_data=ds, device=dev,
                                    **overrides)
                cpu = round(time.process_time() - c0, 1)
                e, n = delta.metrics["eval"], len(codec.dumps(delta))
                tb, sb = ((d / "model.safetensors").stat().st_size for d in (tdir, sdir))
                row = {"dataset": name, "target": f"hf-{t}", "source": f"hf-{s}",
                       "pnc": {k: e[k] for k in ("ori", "tar", "avg")}, "ensemble": ensemble(tdir, sdir, ds, clone, dev),
                       "R": delta.metrics["R"], "mask_density": delta.metrics["mask_density"], "delta_bytes": n,
                       "target_bytes": tb, "source_bytes": sb, "share_of_target_pct": round(100 * n / tb, 3),
                       "share_of_both_pct": round(100 * n / (tb + sb), 3), "build_cpu_s": cpu}
                out["rows"].append(row)
                print(json.dumps(row), flush=True)
                write(out, args.tag)  # a partial result after each row: a long run cut short keeps what it did
        if not args.no_r50:
            out["resnet50"] = resnet50_share(work)
            print(json.dumps(out["resnet50"]), flush=True)
    write(out, args.tag)
    print(report(out))
    return 0


def write(out: dict, tag: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"hf{tag}.json").write_text(json.dumps(out, indent=1) + "\n")
    (RESULTS / f"hf{tag}.md").write_text(report(out))


def report(out: dict) -> str:
    lines = ["# Clones between transformers image classifiers (hf-*)", "",
             f"`{out['command']}` ({out['threads']} thread(s), {out.get('device', 'CPU')}; seed {out['seed']}; models trained "
             f"{out['epochs']} epochs on {_pct(out['train_fraction'])}% of the training images of their classes; "
             f"clone of class(es) {out['clone']}; builder settings: "
             f"{out['settings'] or 'the defaults'}). Accuracies in %.", "",
             "| data | target <- source | target acc | source acc | PNC Ori | Tar | Avg | Ensemble Ori | Tar | Avg "
             "| R | delta | % of target | % of both | build CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        m = out["models"][r["dataset"]]
        ta, sa = m[f"{r['target'][3:]}-target"]["test_acc"], m[f"{r['source'][3:]}-source"]["test_acc"]
        p, e = r["pnc"], r["ensemble"]
        lines.append(f"| {r['dataset']} | {r['target']} <- {r['source']} | {_pct(ta)} | {_pct(sa)} | "
                     f"{_pct(p['ori'])} | {_pct(p['tar'])} | {_pct(p['avg'])} | {_pct(e['ori'])} | {_pct(e['tar'])} "
                     f"| {_pct(e['avg'])} | {r['R']} | {r['delta_bytes']} B | {r['share_of_target_pct']} | "
                     f"{r['share_of_both_pct']} | {r['build_cpu_s']} |")
    if "resnet50" in out:
        r5 = out["resnet50"]
        lines += ["", f"ResNet-50-sized HF target and source ({r5['params']:,} parameters, "
                      f"{r5['weights_bytes']:,} bytes of weights; random weights, a delta of untrained parts: "
                      "its bytes are a built delta's): delta bytes and share of the target by insertion position "
                      "R (goal: at most 0.05%). The untrained adapter is the identity, whose zeros compress; a "
                      "trained delta's floats do not, so 'trained' counts its adapter and classifier floats raw plus "
                      "the mask bits (the bound a trained delta's payload approaches).", "",
                      "| R | delta bytes (untrained) | % of target | trained bytes | % of target |",
                      "|---|---|---|---|---|"]
        lines += [f"| {R} | {v['delta_bytes']:,} | {v['share_of_target_pct']} | {v['trained_bytes']:,} | "
                  f"{v['trained_share_of_target_pct']} |" for R, v in r5["per_R"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
