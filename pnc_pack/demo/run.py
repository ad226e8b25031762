"""The sender side of the demo and the orchestration of the whole run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pnc_pack.errors import PncError


@dataclass
class DemoConfig:
    data: str = "mnist5k"
    workdir: str = ".pnc-demo"
    arch: str = "lenet5"
    target_classes: tuple[int, ...] = (0, 1, 2, 3, 4)
    source_classes: tuple[int, ...] = (5, 6, 7, 8, 9)
    clone_s: tuple[int, ...] = (5,)
    clone_m: tuple[int, ...] = (5, 6, 7)
    epochs: int = 8  # zoo-model training epochs (mnist5k: 2,000 training images per 5 classes)
    seed: int = 0
    data_fraction: float | None = 0.3  # of the to-be-cloned samples (the paper: 0.3; 0.1 on full MNIST)
    hub: bool = False  # publish models, push and pull deltas through HF_ENDPOINT
    hub_namespace: str = "pnc-demo"
    build: dict = field(default_factory=dict)  # BuildConfig overrides (tests use short runs)
    device: str = "auto"  # the sender's training and builds (pnc_pack.devices); the receiver applies on the CPU
    precision: str = "fp32"
    timings: dict = field(default_factory=dict)


class _Clock:
    def __init__(self, timings: dict):
        self.timings = timings

    def __call__(self, name: str):
        clock = self

        class _T:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                clock.timings[name] = round(time.perf_counter() - self.t, 3)

        return _T()


def _train_or_reuse(cfg: DemoConfig, dataset, classes, folder: Path, progress):
    """Train a zoo model, or reuse the one cached in ``folder`` when it was trained with the same settings."""
    from pnc_pack.zoo.config import read_config
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    want = {"data": dataset.name, "classes": list(classes), "epochs": cfg.epochs, "seed": cfg.seed}
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        try:
            t = read_config(folder).training
            if all(t.get(k) == v for k, v in want.items()):
                return False
        except PncError:
            pass
    model, config = train_model(cfg.arch, None, dataset, list(classes), epochs=cfg.epochs, seed=cfg.seed,
                                progress=progress, device=cfg.device, precision=cfg.precision)
    save_pretrained(model, config, folder)
    return True


def _receiver(args: dict, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pnc_pack.demo.receiver", json.dumps(args)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise PncError(f"the receiver process failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_demo(cfg: DemoConfig, progress=None) -> dict:
    """Run the whole demo; returns the result dict (also written to WORKDIR/demo.json)."""
    from pnc_pack.api.build import build_clone
    from pnc_pack.data import load_dataset
    from pnc_pack.devices import check_precision, resolve_device
    from pnc_pack.format import codec
    from pnc_pack.format.signing import keygen, load_private_key, sign_file
    from pnc_pack.zoo.pretrained import load_pretrained
    from pnc_pack.zoo.training import evaluate, prepare_split

    check_precision(cfg.precision)
    device = str(resolve_device(cfg.device))  # a device that does not exist: UsageError before any work
    work = Path(cfg.workdir)
    work.mkdir(parents=True, exist_ok=True)
    clock = _Clock(cfg.timings)
    result: dict = {"config": {k: v for k, v in asdict(cfg).items() if k != "timings"}}

    with clock("load data"):
        dataset = load_dataset(cfg.data)
    models = work / "models"
    with clock("train target and source"):
        trained = [_train_or_reuse(cfg, dataset, cfg.target_classes, models / "target", progress),
                   _train_or_reuse(cfg, dataset, cfg.source_classes, models / "source", progress)]
    result["trained"] = any(trained)

    target_spec, source_spec = str(models / "target"), str(models / "source")
    if cfg.hub:
        from pnc_pack.hub import publish_model

        with clock("publish models to the hub"):
            t_commit = publish_model(models / "target", f"{cfg.hub_namespace}/lenet5-digits-0-4")
            s_commit = publish_model(models / "source", f"{cfg.hub_namespace}/lenet5-digits-5-9")
        target_spec = f"hf://{cfg.hub_namespace}/lenet5-digits-0-4@{t_commit}"
        source_spec = f"hf://{cfg.hub_namespace}/lenet5-digits-5-9@{s_commit}"

    key = work / "keys" / "demo"
    if not key.is_file():
        keygen(key, overwrite=True)
    private = load_private_key(key)

    clones = {}
    for name, classes in (("S", cfg.clone_s), ("M", cfg.clone_m)):
        out = work / f"clone-{name.lower()}.pncd"
        kw = dict(cfg.build) if cfg.data_fraction is None else {**cfg.build, "data_fraction": cfg.data_fraction}
        with clock(f"build clone {name}"):
            delta = build_clone(target_spec, source_spec, dataset, list(classes), seed=cfg.seed,
                                eval_data=dataset, progress=progress, device=device, precision=cfg.precision, **kw)
            codec.save(delta, out)
        with clock(f"sign clone {name}"):
            sign_file(out, private)
        clones[name] = {"path": str(out), "bytes": out.stat().st_size, "classes": list(classes),
                        "metrics": dict(delta.metrics)}
        if cfg.hub:
            from pnc_pack.hub import push

            with clock(f"push clone {name}"):
                commit = push(out, f"{cfg.hub_namespace}/clone-{name.lower()}")
            clones[name]["hub"] = f"hf://{cfg.hub_namespace}/clone-{name.lower()}@{commit}"

    # The receiver: a fresh process, an empty Hub cache, only the delta, the public key and the zoo.
    receiver_home = work / "receiver-cache"
    shutil.rmtree(receiver_home, ignore_errors=True)
    env = dict(os.environ, HF_HOME=str(receiver_home), PNC_PACK_QUIET="1")
    env.pop("HF_HUB_CACHE", None)
    for name, c in clones.items():
        args = {"delta": c.get("hub", c["path"]), "trusted_key": str(key) + ".pub", "data": cfg.data,
                "models_dir": None if cfg.hub else str(models), "workdir": str(work / f"offline-{name.lower()}")}
        with clock(f"receive clone {name} (fresh process)"):
            c["receiver"] = _receiver(args, env)

    # The unmodified zoo models, evaluated on their own classes: the "Pre-trained" reference.
    target, _ = load_pretrained(models / "target")
    source, _ = load_pretrained(models / "source")
    Xt, yt = prepare_split(*dataset.test, list(cfg.target_classes), target.input_shape)
    result["target_acc"] = evaluate(target, Xt, yt)
    for name, c in clones.items():
        Xs, ys = prepare_split(*dataset.test, list(c["classes"]), source.input_shape)
        src_cls = [cfg.source_classes.index(k) for k in c["classes"]]
        c["source_acc"] = _source_acc(source, Xs, ys, src_cls)
    model_bytes = sum((models / n / f).stat().st_size for n in ("target", "source")
                      for f in ("model.safetensors", "config.json"))
    result.update(clones=clones, zoo_bytes=model_bytes, timings=cfg.timings)
    from pnc_pack.demo.report import write_figure

    result["figure"] = str(write_figure(result, work / "demo.png"))
    (work / "demo.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    return result


def _source_acc(source, X, y, src_cls) -> float:
    """The source's accuracy on the cloned classes within its own label space (y = index in the cloned list)."""
    import torch

    with torch.no_grad():
        pred = source(X).argmax(1)
    want = torch.tensor(src_cls)[y]
    return float((pred == want).float().mean())
