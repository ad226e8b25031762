"""Loader and size benchmark at ResNet-18 scale (random weights: only bytes and times matter here).

Measures, for a full-width CIFAR ResNet-18 target and source (and LeNet-5 for comparison):
- delta bytes against the offline cloned model (goal: <= 0.5% for ResNet-18, <= 2% for LeNet-5);
- apply time on a warm cache (pin check + reconstruct) divided by the time to load the exported offline model
  (goal <= 1.5);
- sha256 throughput of the reference check (goal >= 1 GB/s): ``sha256_file`` on one weights file (the check of
  verify, pinning and the Hub cache), the apply path's read-and-hash of one file (``read_file``) and of both models'
  files (``read_models``, what apply does: in two threads at ResNet-18 size), the same read without the hash, and
  hashlib on bytes already in memory (the CPU's ceiling; OpenSSL uses SHA-NI where /proc/cpuinfo lists ``sha_ni``).
  Times are the median of ``--repeat`` runs and, as ``*_best``, the fastest (the machine is shared);
- peak memory of a process applying the delta, against the size of the two pretrained models (goal < 2x).

    python -m tools.bench loader [--repeat 15]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_PEAK = """
import sys, json
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
import torch, pnc_pack.api.model, pnc_pack.zoo.pretrained, pnc_pack.format.codec  # the baseline counts the code
base = hwm()
m = pnc_pack.api.model.apply(sys.argv[1])
print(json.dumps({"baseline_kib": base, "peak_kib": hwm()}))
"""


def _times(fn, repeat: int) -> tuple[float, float]:
    """(best, median) wall seconds of ``repeat`` calls: the best is what the code does on a free core, the median
    what it did on the machine as it was (2 cores, shared with other jobs here)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def bench(arch: str, args: dict, repeat: int, work: Path) -> dict:
    import torch

    from pnc_pack.api.model import apply
    from pnc_pack.builder.api import fresh_delta
    from pnc_pack.clone.export import export_cloned, load_cloned
    from pnc_pack.format import codec
    from pnc_pack.refs import sha256_file
    from pnc_pack.verification import verify
    from pnc_pack.zoo.config import ModelConfig
    from pnc_pack.zoo.pretrained import local_ref, read_file, read_models, save_pretrained
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
    apply_s = _times(lambda: apply(path), repeat)
    offline = work / arch / "offline"
    offline_bytes = export_cloned(apply(path), offline)
    load_s = _times(lambda: load_cloned(offline), repeat)
    verify_s = _times(lambda: verify(path), repeat)
    models_bytes = sum((f / n).stat().st_size for f in folders.values() for n in ("model.safetensors", "config.json"))
    weights = folders["target"] / "model.safetensors"
    size = weights.stat().st_size
    ref = local_ref(folders["target"])
    jobs = [(folders["target"], delta.target), (folders["source"], delta.modules[0].source)]
    blob = weights.read_bytes()
    gbps = {  # (bytes, seconds): GB/s
        "sha256_in_memory": (size, _times(lambda: hashlib.sha256(blob).digest(), repeat)),
        "sha256_file": (size, _times(lambda: sha256_file(weights), repeat)),
        "read_and_hash_one_file": (size, _times(lambda: read_file(weights, ref, "model.safetensors", 1 << 40),
                                                repeat)),
        "read_no_hash_one_file": (size, _times(lambda: read_file(weights, None, "model.safetensors", 1 << 40),
                                               repeat)),
        "apply_read_and_hash_both_models": (models_bytes, _times(lambda: read_models(jobs), repeat)),
    }
    peak = json.loads(subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True,
                                     check=True).stdout)
    row = {
        "arch": arch, "arch_args": args, "delta_bytes": delta_bytes, "offline_bytes": offline_bytes,
        "delta_share_of_offline": round(delta_bytes / offline_bytes, 5), "models_bytes": models_bytes,
        "apply_s": round(apply_s[1], 4), "load_offline_s": round(load_s[1], 4),
        "apply_over_load": round(apply_s[1] / load_s[1], 3), "apply_best_s": round(apply_s[0], 4),
        "load_offline_best_s": round(load_s[0], 4), "apply_over_load_best": round(apply_s[0] / load_s[0], 3),
        "verify_s": round(verify_s[1], 4),
        "apply_peak_extra_mib": round((peak["peak_kib"] - peak["baseline_kib"]) / 1024, 1),
        "peak_over_models": round((peak["peak_kib"] - peak["baseline_kib"]) * 1024 / models_bytes, 3),
    }
    for name, (n, (best, med)) in gbps.items():
        row[f"{name}_gb_per_s"] = round(n / med / 1e9, 3)
        row[f"{name}_best_gb_per_s"] = round(n / best / 1e9, 3)
    return row


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench loader")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, a in (("lenet5", {"num_classes": 5}), ("resnet18", {"num_classes": 5, "width": 64})):
            rows.append(bench(arch, a, args.repeat, Path(tmp)))
            print(json.dumps(rows[-1]))
    from tools.bench import write_result
    from tools.bench.report import machine

    cpu_flags = next((ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")), "").split()
    out = {"command": "python -m tools.bench loader" + (f" --repeat {args.repeat}" if args.repeat != 15 else ""),
           "machine": machine(), "load_average_before": load_before, "openssl": ssl.OPENSSL_VERSION,
           "cpu_sha_ni": "sha_ni" in cpu_flags, "rows": rows}
    write_result("loader", out, markdown(out))
    print(markdown(out))
    return 0


def markdown(out: dict) -> str:
    """loader.md from loader.json's content: the issue's three goals, then the sha256 measurements."""
    lines = [f"Loader benchmark (`{out['command']}`); load average before: {out.get('load_average_before')} on 2 "
             f"shared cores; {out.get('openssl')}, CPU SHA-NI: {'yes' if out.get('cpu_sha_ni') else 'no'}. Times: "
             "median of the runs (best in brackets).", "",
             "| model | delta / offline | apply s | load offline s | apply / load (goal <= 1.5) | peak RSS of apply / "
             "models (goal < 2) |", "|---|---|---|---|---|---|"]
    for r in out["rows"]:
        lines.append(f"| {r['arch']} ({r['models_bytes'] / 1e6:.1f} MB of models) | "
                     f"{100 * r['delta_share_of_offline']:.3f}% | {r['apply_s']} ({r['apply_best_s']}) | "
                     f"{r['load_offline_s']} ({r['load_offline_best_s']}) | "
                     f"{r['apply_over_load']} ({r['apply_over_load_best']}) | {r['peak_over_models']} "
                     f"(+{r['apply_peak_extra_mib']} MiB) |")
    lines += ["", "Peak RSS is the growth of a fresh process's high-water mark over its state after importing the "
              "code; for LeNet-5 it is the loader's fixed cost (threads, lazy imports), not its 0.5 MB of weights."]
    names = {"sha256_in_memory": "hashlib on bytes in memory (the CPU's ceiling)",
             "sha256_file": "`sha256_file`: the reference check of verify / pinning / the Hub cache",
             "read_and_hash_one_file": "apply's read of one file into fresh memory, hashed as read",
             "read_no_hash_one_file": "the same read without the hash",
             "apply_read_and_hash_both_models": "apply's read and hash of both models (threads above 8 MiB)"}
    lines += ["", "sha256 throughput, GB/s (goal >= 1), median (best):", "",
              "| measurement | " + " | ".join(r["arch"] for r in out["rows"]) + " |",
              "|---|" + "---|" * len(out["rows"])]
    for key, label in names.items():
        lines.append(f"| {label} | " + " | ".join(f"{r[key + '_gb_per_s']} ({r[key + '_best_gb_per_s']})"
                                                  for r in out["rows"]) + " |")
    return "\n".join(lines) + "\n"
