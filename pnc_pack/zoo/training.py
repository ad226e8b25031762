"""Train a zoo model on some classes of a dataset: the pretrained models PNC clones from and into.

``train_model`` is an explicit loop (minGPT style): Adam, cross-entropy (optional label smoothing), a fixed number
of epochs, per-epoch shuffles drawn from a generator seeded with ``seed``. Output ``i`` of the model is label
``classes[i]`` of the dataset. The result is deterministic: the same inputs and seed give the same
``model.safetensors`` bytes on the same machine and torch build (``torch.manual_seed`` for the initialisation,
``torch.use_deterministic_algorithms(True, warn_only=True)`` while training, no data-loader workers).

Determinism holds on the same machine, torch build *and thread count*: CPU reductions are split by thread, so
``OMP_NUM_THREADS=1`` and ``=2`` give different (equally good) bytes.

Defaults and what they give (measured, ``OMP_NUM_THREADS=1``, 2-core CPU shared with other jobs):

- ``pnc-pack train --arch lenet5 --data idx:data/mnist --classes 0,1,2,3,4 --epochs 3``: test accuracy 0.9967
  (5,139 images) in 11.2 s; classes 5-9: 0.9866 in 9.9 s.
- ``--data mnist5k`` (2,000 training images for 5 classes) needs more epochs: 15 epochs 0.982
  (5.3 s); 5 epochs gave 0.952 (2 threads).
- Label smoothing is off by default: on full MNIST 0-4 (3 epochs) ``label_smoothing=0.1`` kept the accuracy
  (0.9967) but made the model under-confident (15-bin ECE 0.090 vs 0.003, test NLL 0.103 vs 0.010), which is worse
  for distilling from it later.

Images are fitted to the model's input shape with :func:`pnc_pack.data.fit_to_shape` (bilinear resize, channel
repeat/mean): e.g. LeNet-5 (28x28) trains on the 8x8 digits upsampled. Unless ``arch_args`` says otherwise,
``num_classes`` is ``len(classes)`` and ``in_channels`` is the dataset's channel count (when the architecture takes
that argument); ``image_size`` keeps the architecture's default.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from pnc_pack.errors import BuildError, DataError, UsageError
from pnc_pack.version import __version__
from pnc_pack.zoo.base import ZooModel
from pnc_pack.zoo.config import ModelConfig
from pnc_pack.zoo.optim import make_adam
from pnc_pack.zoo.registry import build_model, check_arch_args, get_arch

DEFAULTS = {"epochs": 3, "seed": 0, "batch_size": 64, "lr": 1e-3, "weight_decay": 0.0, "label_smoothing": 0.0,
            "data_fraction": 1.0}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The checked device (``auto``/None: cuda when available, else cpu; :func:`pnc_pack.devices.resolve_device`)."""
    from pnc_pack.devices import resolve_device

    return resolve_device(device)


def check_classes(classes: Sequence[int], num_classes: int) -> list[int]:
    out = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_classes:
            raise DataError(f"class {c!r} is not a label of this dataset (0..{num_classes - 1})")
        if c in out:
            raise DataError(f"class {c} is listed twice")
        out.append(c)
    if not out:
        raise DataError("no classes given")
    return out


def prepare_split(X: torch.Tensor, y: torch.Tensor, classes: Sequence[int], input_shape, fraction: float = 1.0,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples of ``classes``, relabelled to output positions and fitted to ``input_shape`` (or prepared by the
    model given there: its ``prepare_images``, e.g. an hf-* model's image processor)."""
    from pnc_pack.data import fit_to_shape, relabel, select_classes, take_fraction

    X, y = select_classes(X, y, classes)
    if fraction != 1.0:
        X, y = take_fraction(X, y, fraction, seed)
    if hasattr(input_shape, "prepare_images"):
        return input_shape.prepare_images(X), relabel(y, classes)
    return fit_to_shape(X, input_shape), relabel(y, classes)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
             device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of ``model`` on (X, y) (labels = output positions); the model's mode is restored."""
    if len(y) == 0:
        return float("nan")
    dev = next(model.parameters()).device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=dev)
    for s in range(0, len(y), batch_size):
        out = model(X[s:s + batch_size].to(dev))
        correct += (out.argmax(1) == y[s:s + batch_size].to(dev)).sum()
    model.train(was_training)
    return int(correct) / len(y)


def _complete_args(arch: str, arch_args: Mapping[str, Any] | None, n_classes: int, channels: int) -> dict:
    args = check_arch_args(arch_args)
    params = inspect.signature(get_arch(arch)).parameters
    if "num_classes" in args and args["num_classes"] != n_classes:
        raise UsageError(f"arch arg num_classes={args['num_classes']} but {n_classes} classes were asked for")
    if "num_classes" in params:
        args["num_classes"] = n_classes
    if "in_channels" in params and "in_channels" not in args:
        args["in_channels"] = channels
    return args


def train_model(arch: str, arch_args: Mapping[str, Any] | None, dataset, classes: Sequence[int], *,
                epochs: int = DEFAULTS["epochs"], seed: int = DEFAULTS["seed"],
                batch_size: int = DEFAULTS["batch_size"], lr: float = DEFAULTS["lr"],
                weight_decay: float = DEFAULTS["weight_decay"], label_smoothing: float = DEFAULTS["label_smoothing"],
                data_fraction: float = DEFAULTS["data_fraction"], device: str | torch.device | None = None,
                precision: str = "fp32", progress=None, on_epoch: Callable[[int, float], None] | None = None,
                ) -> tuple[ZooModel, ModelConfig]:
    """Train ``arch`` on ``classes`` of ``dataset`` (a Dataset or a spec string); returns ``(model, config)``.

    The model comes back on the CPU, in eval mode, with ``requires_grad`` off (like ``load_pretrained``); the
    config records the data spec, classes, settings, per-epoch mean training loss, test accuracy (on the test split
    of those classes) and library versions. Save both with ``save_pretrained(model, config, folder)``.
    ``device``: auto (cuda when available), cpu, cuda or cuda:N; ``precision``: fp32 or bf16 autocast. The data
    moves to the device once; a step never waits on the host (losses are read once per epoch).
    """
    from pnc_pack.data import Dataset, load_dataset
    from pnc_pack.devices import check_precision, compute, out_of_memory

    if isinstance(dataset, str):
        dataset = load_dataset(dataset)
    if not isinstance(dataset, Dataset):
        raise UsageError(f"dataset must be a Dataset or a spec string, got {type(dataset).__name__}")
    for name, v, lo in (("epochs", epochs, 0), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise UsageError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise UsageError(f"lr must be a positive number, got {lr!r}")
    if not (isinstance(label_smoothing, (int, float)) and 0.0 <= label_smoothing < 1.0):
        raise UsageError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    classes = check_classes(list(classes), dataset.num_classes)
    args = _complete_args(arch, arch_args, len(classes), dataset.input_shape[0])

    dev, precision = pick_device(device), check_precision(precision)
    torch.manual_seed(seed)
    model = build_model(arch, args)
    X, y = prepare_split(*dataset.train, classes, model, data_fraction, seed)
    Xt, yt = prepare_split(*dataset.test, classes, model)
    if len(y) < 2:
        raise DataError(f"{dataset.name}: only {len(y)} training samples of classes {classes}")

    model.to(dev)
    X, y = X.to(dev), y.to(dev)
    opt = make_adam([{"params": list(model.parameters()), "lr": float(lr)}], dev, float(weight_decay))
    gen = torch.Generator().manual_seed(seed)
    n = len(y)
    steps = n // batch_size + (1 if n % batch_size >= 2 else 0)  # a last batch of 1 would break BatchNorm
    history: list[float] = []
    was_det = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    task = progress.add(f"train {arch} on {dataset.name}", total=epochs * steps) if progress is not None else None
    try:
        model.train()
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=gen).to(dev)  # drawn on the CPU generator, moved once
            step_losses, sizes = [], []
            for i in range(steps):
                idx = perm[i * batch_size:(i + 1) * batch_size]
                with out_of_memory(dev, f"training {arch}"), compute(dev, precision):
                    loss = F.cross_entropy(model(X[idx]), y[idx], label_smoothing=float(label_smoothing))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step_losses.append(loss.detach())
                sizes.append(len(idx))
                if task is not None:
                    progress.advance(task)
            values = torch.stack(step_losses).float().tolist() if step_losses else []
            bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
            if bad:
                raise BuildError(f"training {arch} diverged at epoch {epoch + 1} step {bad[0] + 1} "
                                 f"(loss {values[bad[0]]})")
            total = 0.0
            for v, k in zip(values, sizes):  # the same float arithmetic as summing step by step
                total += v * k
            history.append(round(total / max(sum(sizes), 1), 6))
            if on_epoch is not None:
                on_epoch(epoch, history[-1])
    finally:
        torch.use_deterministic_algorithms(was_det, warn_only=was_warn)
    acc = evaluate(model, Xt, yt, device=dev)
    model.cpu().eval()
    model.requires_grad_(False)
    names = dataset.class_names
    config = ModelConfig(
        arch=arch, arch_args=dict(model.arch_args),
        classes=[{"label": c, "name": names[c]} for c in classes],
        input_shape=list(model.input_shape),
        training={
            "data": dataset.name, "classes": classes, "epochs": epochs, "seed": seed, "batch_size": batch_size,
            "lr": float(lr), "weight_decay": float(weight_decay), "label_smoothing": float(label_smoothing),
            "data_fraction": float(data_fraction), "optimizer": "adam", "train_samples": n,
            "test_samples": len(yt), "train_loss": history,
            **({"test_accuracy": round(acc, 6)} if acc == acc else {}),
            "versions": {"pnc_pack": __version__, "torch": torch.__version__.split("+")[0]},
            # where it trained, when not the CPU in fp32 (a CPU model's config.json stays as it always was)
            **({"device": dev.type, "precision": precision} if (dev.type, precision) != ("cpu", "fp32") else {}),
        },
    )
    return model, config
