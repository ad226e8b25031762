"""Benchmark of the clone-delta format: `pnc-pack verify` wall time, save/load throughput, payload compression.

    python -m tools.bench format [--runs N] [--quick]

1. ``pnc-pack verify`` on a ~1 MB delta, in a fresh process each time (interpreter start included): median of N.
2. ``dumps``/``loads`` throughput on a ~16 MB delta (MB of tensor data per second), both payload encodings.
3. Compressed payload size of real-ish weights: an MLP (64-512-512-10) trained briefly on sklearn digits with torch,
   its parameters as F32, F16 and BF16 tensors; the canonical safetensors blob compressed by zstd at levels 3, 9
   and 19, plain vs byte-grouped (the ``zstd+bytegroup`` encoding). Also at initialisation (untrained).
Writes tools/bench/results/format.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "format.json"


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "pnc-pack"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pnc_pack"]


def _delta_of_size(nbytes: int, seed: int = 0):
    import dataclasses

    from pnc_pack.format.testing import make_delta, random_tensor

    d = make_delta(1, seed=seed)
    n_out = len(d.labels)
    cols = max(1, nbytes // (4 * n_out))
    classifier = {"weight": random_tensor("F32", (n_out, cols), seed=seed), "bias": d.classifier["bias"]}
    return dataclasses.replace(d, classifier=classifier, classifier_args={"in_features": cols, "num_outputs": n_out})


def bench_verify(runs: int) -> dict:
    from pnc_pack.format import codec

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one-mb.pncd"
        size = codec.save(_delta_of_size(1 << 20), path)
        cmd = _cli() + ["verify", str(path)]
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True)
            times.append(time.perf_counter() - t)
            if out.returncode != 0:
                raise SystemExit(f"verify failed: {out.stderr.decode()}")
        base = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            base.append(time.perf_counter() - t)
    return {"file_bytes": size, "command": " ".join(["pnc-pack", "verify", "FILE"]), "runs": runs,
            "median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "python_startup_median_s": round(statistics.median(base), 4)}


def bench_throughput(mb: int, reps: int) -> dict:
    from pnc_pack.format import codec

    d = _delta_of_size(mb << 20, seed=1)
    raw = sum(t.nbytes for t in d.tensors().values())
    out = {"tensor_bytes": raw}
    for enc in ("zstd+bytegroup", "zstd"):
        save_t, load_t = [], []
        for _ in range(reps):
            t = time.perf_counter()
            data = codec.dumps(d, encoding=enc)
            save_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            codec.loads(data)
            load_t.append(time.perf_counter() - t)
        out[enc] = {"file_bytes": len(data), "save_MBps": round(raw / 1e6 / statistics.median(save_t), 1),
                    "load_MBps": round(raw / 1e6 / statistics.median(load_t), 1)}
    return out


def _trained_mlp(epochs: int):
    import torch
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    model = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                torch.nn.ReLU(), torch.nn.Linear(512, 10))
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    acc = (model(x).argmax(1) == y).float().mean().item()
    return init, {k: v.detach().clone() for k, v in model.state_dict().items()}, acc


def _raw(state, dtype_name: str):
    import torch

    from pnc_pack.format.delta import RawTensor

    td = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype_name]
    return {k: RawTensor(dtype_name, tuple(v.shape), v.to(td).contiguous().view(torch.uint8).numpy().tobytes())
            for k, v in state.items()}


def bench_compression(epochs: int) -> dict:
    from pnc_pack.format.payload import compress, encode_blob, group_bytes

    init, trained, acc = _trained_mlp(epochs)
    out = {"model": "MLP 64-512-512-10 on sklearn digits", "epochs": epochs, "train_accuracy": round(acc, 4),
           "rows": []}
    for label, state in (("trained", trained), ("init", init)):
        for dt in ("F32", "F16", "BF16"):
            blob, layout = encode_blob(_raw(state, dt))
            grouped = group_bytes(blob, layout)
            for level in (3, 9, 19):
                t = time.perf_counter()
                plain = len(compress(blob, level))
                tp = time.perf_counter() - t
                t = time.perf_counter()
                bg = len(compress(grouped, level))
                tg = time.perf_counter() - t
                out["rows"].append({"weights": label, "dtype": dt, "level": level, "raw": len(blob),
                                    "zstd": plain, "zstd+bytegroup": bg,
                                    "ratio_zstd": round(plain / len(blob), 4),
                                    "ratio_bytegroup": round(bg / len(blob), 4),
                                    "bytegroup_saving": round(1 - bg / plain, 4),
                                    "ms_zstd": round(tp * 1000, 1), "ms_bytegroup": round(tg * 1000, 1)})
    return out


def main(argv) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench format")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="fewer runs, smaller throughput delta, fewer epochs")
    args = ap.parse_args(argv)
    import zstandard

    runs = 5 if args.quick else args.runs
    result = {
        "env": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
                "zstd": zstandard.ZSTD_VERSION, "zstandard": zstandard.__version__,
                "loadavg_1min_at_start": round(os.getloadavg()[0], 2)},
        "verify_1mb": bench_verify(runs),
        "throughput": bench_throughput(4 if args.quick else 16, 3 if args.quick else 5),
        "compression": bench_compression(3 if args.quick else 20),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    result["env"]["loadavg_1min_at_end"] = round(os.getloadavg()[0], 2)
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    v = result["verify_1mb"]
    print(f"load average {result['env']['loadavg_1min_at_start']} -> {result['env']['loadavg_1min_at_end']} "
          f"on {result['env']['cpus']} CPUs (other work on the machine inflates wall times)")
    print(f"pnc-pack verify on a {v['file_bytes']} B delta: median {v['median_s'] * 1000:.0f} ms "
          f"(min {v['min_s'] * 1000:.0f}, max {v['max_s'] * 1000:.0f}; python -c pass: "
          f"{v['python_startup_median_s'] * 1000:.0f} ms; {v['runs']} runs)")
    t = result["throughput"]
    for enc in ("zstd+bytegroup", "zstd"):
        print(f"{enc:<15} {t['tensor_bytes'] / 1e6:.1f} MB of tensors: save {t[enc]['save_MBps']} MB/s, "
              f"load {t[enc]['load_MBps']} MB/s, file {t[enc]['file_bytes']} B")
    c = result["compression"]
    print(f"\n{c['model']}, {c['epochs']} epochs (train acc {c['train_accuracy']}): compressed payload / raw")
    print(f"{'weights':<8} {'dtype':<5} {'lvl':>3} {'raw':>9} {'zstd':>9} {'bytegroup':>9} {'saving':>7} "
          f"{'ms':>6} {'ms bg':>6}")
    for r in c["rows"]:
        print(f"{r['weights']:<8} {r['dtype']:<5} {r['level']:>3} {r['raw']:>9} {r['zstd']:>9} "
              f"{r['zstd+bytegroup']:>9} {r['bytegroup_saving']:>7.1%} {r['ms_zstd']:>6} {r['ms_bytegroup']:>6}")
    print(f"\nwrote {RESULTS}")
    return 0
