"""The receiver side of the demo, run as ``python -m pnc_pack.demo.receiver ARGS_JSON`` in a fresh process.

It knows only what a receiver would: the delta (a file or an ``hf://`` spec), a trusted public key, where the zoo
models are (a folder, or the Hub), and a dataset to evaluate on. It prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def receive(delta: str, *, trusted_key: str | None, models_dir: str | None, data: str, workdir: str) -> dict:
    from pnc_pack.api.model import apply
    from pnc_pack.api.specs import locate_model, open_delta
    from pnc_pack.clone.convert import state_digest
    from pnc_pack.clone.evaluate import evaluate_delta_model
    from pnc_pack.clone.export import export_cloned
    from pnc_pack.data import load_dataset
    from pnc_pack.verification import verify
    from pnc_pack.zoo.pretrained import load_pretrained

    out: dict = {"delta": delta}
    t = time.perf_counter()
    d = open_delta(delta)  # for hf:// this pulls through the (empty) Hub cache
    report = verify(d, trusted_keys=[trusted_key] if trusted_key else (), require_signature=bool(trusted_key))
    out["verify"] = {"ok": report.ok, "seconds": time.perf_counter() - t}
    if not report.ok:
        out["error"] = "verification failed"
        return out
    t = time.perf_counter()
    cloned = apply(d, models_dir=models_dir, trusted_keys=[trusted_key] if trusted_key else ())
    out["apply"] = {"seconds": time.perf_counter() - t}
    t = time.perf_counter()
    ds = load_dataset(data)
    out["eval"] = evaluate_delta_model(cloned, ds)
    out["eval"]["seconds"] = time.perf_counter() - t
    exp = Path(workdir) / "offline"
    out["export"] = {"bytes": export_cloned(cloned, exp)}
    # Detach: the target must come back exactly as the pinned file holds it.
    reference, _ = load_pretrained(locate_model(d.target, None, models_dir), d.target)
    restored = cloned.detach()
    out["detach"] = {"restored": state_digest(restored), "pinned": state_digest(reference)}
    out["detach"]["identical"] = out["detach"]["restored"] == out["detach"]["pinned"]
    return out


def main(argv: list[str]) -> int:
    args = json.loads(argv[0])
    with tempfile.TemporaryDirectory() as tmp:
        result = receive(args["delta"], trusted_key=args.get("trusted_key"), models_dir=args.get("models_dir"),
                         data=args["data"], workdir=args.get("workdir") or tmp)
    print(json.dumps(result, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
