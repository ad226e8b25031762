"""Loader and size benchmark at ResNet-18 scale (random weights: only bytes and times matter here).

Measures, for a full-width CIFAR ResNet-18 target and source (and LeNet-5 for comparison):
- delta bytes against the offline cloned model (goal: <= 0.5% for ResNet-18, <= 2% for LeNet-5);
- apply time on a warm cache (pin check + reconstruct) divided by the time to load the exported offline model
  (goal <= 1.5);
- sha256 throughput of the reference check (goal >= 1 GB/s);
- peak memory of a process applying the delta, against the size of the two pretrained models (goal < 2x).

    python -m tools.bench loader [--arch resnet18] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

_PEAK = """
import sys, json
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
import torch, pnc_pack.clone.apply, pnc_pack.zoo.pretrained, pnc_pack.format.codec  # the baseline counts the code
base = hwm()
m = pnc_pack.clone.apply.apply(sys.argv[1])
print(json.dumps({"baseline_kib": base, "peak_kib": hwm()}))
"""


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(arch: str, args: dict, repeat: int, work: Path) -> dict:
    import torch

    from pnc_pack.build.api import fresh_delta
    from pnc_pack.clone.apply import apply
    from pnc_pack.clone.export import export_cloned, load_cloned
    from pnc_pack.format import codec
    from pnc_pack.refs import sha256_file
    from pnc_pack.verification import verify
    from pnc_pack.zoo.config import ModelConfig
    from pnc_pack.zoo.pretrained import local_ref, save_pretrained
    from pnc_pack.zoo.registry import build_model

    folders = {}
    for i, name in enumerate(("target", "source")):
        torch.manual_seed(i)
        model = build_model(arch, args)
        cfg = ModelConfig(arch, dict(model.arch_args), [{"label": j + 5 * i, "name": str(j + 5 * i)}
                                                         for j in range(model.num_classes)], list(model.input_shape))
        folders[name] = save_pretrained(model, cfg, work / arch / name)
    t, s = build_model(arch, args), build_model(arch, args)
    delta = fresh_delta(t, s, 2, local_ref(folders["target"]), local_ref(folders["source"]))
    path = work / arch / "clone.pncd"
    delta_bytes = codec.save(delta, path)
    apply(path)  # warm the page cache
    apply_s = _median_time(lambda: apply(path), repeat)
    offline = work / arch / "offline"
    offline_bytes = export_cloned(apply(path), offline)
    load_s = _median_time(lambda: load_cloned(offline), repeat)
    verify_s = _median_time(lambda: verify(path), repeat)
    weights = folders["target"] / "model.safetensors"
    size = weights.stat().st_size
    hash_s = _median_time(lambda: sha256_file(weights), repeat)
    peak = json.loads(subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True,
                                     check=True).stdout)
    models_bytes = sum((f / n).stat().st_size for f in folders.values() for n in ("model.safetensors", "config.json"))
    return {
        "arch": arch, "arch_args": args, "delta_bytes": delta_bytes, "offline_bytes": offline_bytes,
        "delta_share_of_offline": round(delta_bytes / offline_bytes, 5), "models_bytes": models_bytes,
        "apply_s": round(apply_s, 4), "load_offline_s": round(load_s, 4), "apply_over_load": round(apply_s / load_s, 3),
        "verify_s": round(verify_s, 4), "sha256_gb_per_s": round(size / hash_s / 1e9, 3),
        "apply_peak_extra_mib": round((peak["peak_kib"] - peak["baseline_kib"]) / 1024, 1),
        "peak_over_models": round((peak["peak_kib"] - peak["baseline_kib"]) * 1024 / models_bytes, 3),
    }


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench loader")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, a in (("lenet5", {"num_classes": 5}), ("resnet18", {"num_classes": 5, "width": 64})):
            rows.append(bench(arch, a, args.repeat, Path(tmp)))
            print(json.dumps(rows[-1]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "loader.json").write_text(json.dumps({"rows": rows}, indent=2, sort_keys=True))
    return 0
