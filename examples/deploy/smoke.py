"""Smoke inference on an exported clone with onnxruntime alone (no torch model, no pnc-pack network code): the
graph loads, takes a batch of the sidecar's input shape, gives one finite logit per labelled output, and classifies
the eval data's test images (preprocessed as the sidecar says: pnc_pack.data does exactly that) with an accuracy
printed as JSON. Exit 1 when any of that fails.

    python examples/deploy/smoke.py model.onnx [--data digits] [--min-acc 0.5]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--data", default=None, help="a pnc-pack dataset spec: classify its test split")
    ap.add_argument("--min-acc", type=float, default=0.5, help="fail below this accuracy on --data (a fraction)")
    args = ap.parse_args(argv)
    side = json.load(open(args.model + ".json"))
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    labels = [lab["label"] for lab in side["output"]["labels"]]
    shape = [int(s) for s in side["input"]["shape"][1:]]
    x = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    out = session.run([side["output"]["name"]], {side["input"]["name"]: x})[0]
    if out.shape != (3, len(labels)) or not np.isfinite(out).all():
        print(f"smoke: bad output {out.shape} for {len(labels)} labels", file=sys.stderr)
        return 1
    report = {"model": args.model, "outputs": len(labels), "labels": labels, "delta_sha256": side["delta_sha256"]}
    if args.data:
        import torch

        from pnc_pack.data import fit_to_shape, load_dataset

        X, y = load_dataset(args.data).test
        keep = torch.tensor([int(v) in labels for v in y.tolist()])
        X, y = fit_to_shape(X[keep], shape).numpy(), y[keep].numpy()
        pred = np.concatenate([session.run(None, {side["input"]["name"]: X[i:i + 512]})[0].argmax(1)
                               for i in range(0, len(X), 512)])
        acc = float((np.asarray(labels)[pred] == y).mean())
        report.update(samples=int(len(y)), accuracy=round(acc, 4))
        if acc < args.min_acc:
            print(f"smoke: accuracy {acc:.3f} on {args.data} below {args.min_acc}", file=sys.stderr)
            return 1
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
