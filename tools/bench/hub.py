"""Benchmark: what a receiver downloads for a clone delta vs the whole models, and push / pull wall times.

    python -m tools.bench hub [--archs lenet5,resnet18] [--repeat 3] [--out tools/bench/results/hub.json]

Everything goes through the real huggingface_hub client and our loopback Hub-compatible server
(tests/hub/server.py, 127.0.0.1 only), which counts the body bytes it sends for file downloads. Per architecture:

1. a publisher publishes a target and a source model folder (``publish_model``) and pushes a clone delta;
2. a receiver with an empty cache pulls the delta and fetches both pinned models (``pull`` + ``fetch_models``):
   bytes downloaded for the delta and for the models, wall times;
3. the same receiver pulls a *second* delta over the same models (warm model cache): now only the delta travels;
4. ``pnc-pack pull`` as a fresh process (the command a deployment pipeline runs), cold cache, wall time.

The delta is synthetic: the shapes a real one has for that architecture (bit masks over every mask point of the
cloned source blocks R..L, a 1x1 adapter over the last masked layer, a linear classifier over target + adapter
features) and random float32 values, which compress like trained weights. For a transfer benchmark the shapes are
what matter, and a synthetic delta keeps it fast and data-free (the builder needs data and training time).
``delta_kind`` in the results says so.
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
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tools" / "bench" / "results" / "hub.json"
TOKEN = "hf_bench"
ARCH_ARGS = {
    "lenet5": {"num_classes": 5, "in_channels": 1, "image_size": 28},
    "resnet18": {"num_classes": 5, "in_channels": 3, "image_size": 32},
    "plaincnn": None,
}


@contextmanager
def _env(**kw):
    old = {k: os.environ.get(k) for k in kw}
    os.environ.update({k: str(v) for k, v in kw.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _make_model(arch: str, folder: Path, names: list[str], seed: int):
    import torch

    from pnc_pack.zoo import build_model
    from pnc_pack.zoo.config import ModelConfig
    from pnc_pack.zoo.pretrained import save_pretrained

    torch.manual_seed(seed)
    args = dict(ARCH_ARGS[arch])
    args["num_classes"] = len(names)
    model = build_model(arch, args)
    cfg = ModelConfig(arch=arch, arch_args=model.arch_args, classes=[{"label": i, "name": n} for i, n in
                                                                      enumerate(names)],
                      input_shape=list(model.input_shape), training={"seed": seed})
    save_pretrained(model, cfg, folder)
    return model


def _synthetic_delta(tref, sref, target_model, source_model, seed: int):
    """A delta with the shapes of a real one for these models (see the module docstring)."""
    from pnc_pack.format import testing
    from pnc_pack.format.delta import CloneDelta, LabelEntry

    L_s, L_t = source_model.num_blocks, target_model.num_blocks
    R = max(0, L_s - 2)
    filters = tuple(n for _, n in source_model.mask_points(R, L_s))
    width = filters[-1]
    module = testing.make_module(0, source=sref, filters=filters, width=width, target_position=min(R, L_t - 1),
                                 source_blocks=L_s, source_position=R, seed=seed, classes=(0, 1))
    feat = target_model.head.in_features
    labels = [LabelEntry("target", c, f"t{c}") for c in range(5)] + [LabelEntry("source:0", c, f"s{c}")
                                                                     for c in (0, 1)]
    n_out = len(labels)
    return CloneDelta(
        target=tref, target_blocks=L_t, modules=(module,), classifier_kind="linear",
        classifier_args={"in_features": feat + width, "num_outputs": n_out},
        classifier={"weight": testing.random_tensor("F32", (n_out, feat + width), seed=seed + 1),
                    "bias": testing.random_tensor("F32", (n_out,), seed=seed + 2)},
        labels=tuple(labels), provenance={"builder": "tools/bench/hub.py synthetic", "seed": seed},
        metrics={"note": "synthetic delta: shapes of a real one, random values"},
    )


def _median(xs):
    return round(statistics.median(xs), 4)


def bench_arch(arch: str, hub, work: Path, repeat: int) -> dict:
    import pnc_pack.hub as H
    from pnc_pack.format import codec

    models = work / "models"
    tmodel = _make_model(arch, models / f"{arch}-target", [str(i) for i in range(5)], seed=0)
    smodel = _make_model(arch, models / f"{arch}-source", [str(i) for i in range(5, 10)], seed=1)
    size = {k: sum((models / f"{arch}-{k}" / n).stat().st_size for n in H.MODEL_FILES) for k in ("target", "source")}

    out: dict = {"arch": arch, "model_bytes": size}
    with _env(HF_HOME=work / f"{arch}-publisher"):
        t0 = time.perf_counter()
        H.publish_model(models / f"{arch}-target", f"bench/{arch}-target")
        H.publish_model(models / f"{arch}-source", f"bench/{arch}-source")
        out["publish_two_models_s"] = round(time.perf_counter() - t0, 4)
        tref = H.resolve_model(f"hf://bench/{arch}-target").ref
        sref = H.resolve_model(f"hf://bench/{arch}-source@main").ref
        deltas = [_synthetic_delta(tref, sref, tmodel, smodel, seed) for seed in range(repeat + 1)]
        out["delta_kind"] = "synthetic"
        out["delta_file_bytes"] = len(codec.dumps(deltas[0]))
        push_times = []
        for i, d in enumerate(deltas):
            t0 = time.perf_counter()
            H.push(d, f"bench/{arch}-clone-{i}")
            push_times.append(time.perf_counter() - t0)
        out["push_s_median"] = _median(push_times)

    # cold receivers: empty cache, pull + fetch both models
    cold_pull, cold_fetch, cold_bytes = [], [], []
    for r in range(repeat):
        with _env(HF_HOME=work / f"{arch}-cold-{r}"):
            hub.reset_stats()
            t0 = time.perf_counter()
            delta = H.pull(f"bench/{arch}-clone-0").delta
            t1 = time.perf_counter()
            delta_bytes = hub.bytes_sent("resolve-get")
            H.fetch_models(delta.refs)
            t2 = time.perf_counter()
            cold_pull.append(t1 - t0)
            cold_fetch.append(t2 - t1)
            cold_bytes.append((delta_bytes, hub.bytes_sent("resolve-get") - delta_bytes))
    out["cold"] = {"delta_download_bytes": cold_bytes[0][0], "model_download_bytes": cold_bytes[0][1],
                   "pull_s_median": _median(cold_pull), "fetch_models_s_median": _median(cold_fetch)}

    # warm models: the receiver already has both models; another delta over them travels alone
    warm_pull, warm_bytes, warm_files = [], [], []
    with _env(HF_HOME=work / f"{arch}-cold-0"):
        for i in range(1, repeat + 1):
            hub.reset_stats()
            t0 = time.perf_counter()
            delta = H.pull(f"bench/{arch}-clone-{i}").delta
            H.fetch_models(delta.refs)
            warm_pull.append(time.perf_counter() - t0)
            warm_bytes.append(hub.bytes_sent("resolve-get"))
            warm_files.append(len(codec.dumps(delta)))
    out["warm_models"] = {"download_bytes": warm_bytes[0], "delta_file_bytes": warm_files[0],
                          "pull_and_fetch_s_median": _median(warm_pull)}

    # the command, as a fresh process with a cold cache
    cli = []
    for r in range(repeat):
        env = {**os.environ, "HF_HOME": str(work / f"{arch}-cli-{r}")}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pnc_pack", "pull", f"bench/{arch}-clone-0"], env=env, check=True,
                       capture_output=True)
        cli.append(time.perf_counter() - t0)
    out["cli_pull_cold_s_median"] = _median(cli)

    whole = size["target"] + size["source"]
    out["whole_models_bytes"] = whole
    out["delta_vs_whole_models"] = round(out["delta_file_bytes"] / whole, 6)
    out["offline_model_bytes"] = None  # a standalone exported cloned model: not available in this build
    return out


def main(argv) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench hub", description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default="lenet5,resnet18")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    import huggingface_hub

    from tests.hub import server

    results = {"benchmark": "hub", "command": "python -m tools.bench hub " + " ".join(argv),
               "machine": {"python": platform.python_version(), "platform": platform.platform(),
                           "cpus": os.cpu_count(), "huggingface_hub": huggingface_hub.__version__},
               "server": "tests/hub/server.py on 127.0.0.1 (loopback), real huggingface_hub client",
               "archs": {}}
    with tempfile.TemporaryDirectory(prefix="pnc-bench-hub-") as tmp, server.FakeHub(tokens={TOKEN: True}) as hub:
        with _env(HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, HF_HUB_DISABLE_PROGRESS_BARS="1", PNC_PACK_QUIET="1",
                  HF_HUB_DISABLE_TELEMETRY="1"):
            os.environ.pop("HF_HUB_OFFLINE", None)
            for arch in [a for a in args.archs.split(",") if a]:
                r = bench_arch(arch, hub, Path(tmp), args.repeat)
                results["archs"][arch] = r
                print(f"{arch}: delta {r['delta_file_bytes']} B vs models {r['whole_models_bytes']} B "
                      f"({100 * r['delta_vs_whole_models']:.3f}%); cold receiver downloads "
                      f"{r['cold']['delta_download_bytes'] + r['cold']['model_download_bytes']} B, warm "
                      f"{r['warm_models']['download_bytes']} B; push {r['push_s_median']} s, pull cold "
                      f"{r['cold']['pull_s_median']} s, CLI pull {r['cli_pull_cold_s_median']} s")
    from pnc_pack.fsutil import atomic_write

    atomic_write(args.out, (json.dumps(results, indent=2, sort_keys=True) + "\n").encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
