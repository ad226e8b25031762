"""Tiny transformers image classifiers and an MNIST-like parquet dataset: the README's Hugging Face round trip.

``python -m tools.hf_example DIR [--epochs N] [--seed S]`` writes, in the layouts the Hub holds them:

- ``DIR/tiny-resnet``: an hf-resnet (``ResNetForImageClassification``, widths 8-32, one layer per stage) on the
  digits 0-4, 32x32 RGB through its ``preprocessor_config.json`` (id2label names the dataset's labels);
- ``DIR/tiny-convnext``: an hf-convnext (``ConvNextForImageClassification``, widths 8-32, patch 4) on the digits
  5-9;
- ``DIR/mnist-pq``: scikit-learn's 8x8 handwritten digits (1,437 train / 360 test) as the Hub's parquet layout
  (``data/train-*.parquet``, ``data/test-*.parquet``: PNG images and a ``ClassLabel``).

Each model is built by transformers from a random config, then trained for ``--epochs`` epochs (Adam, seeded) on
its classes through pnc-pack's own loader (each batch prepared by its image processor) and saved by transformers'
``save_pretrained`` with its image processor's. ``tools/bench/hf.py`` trains its models the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

MODELS = {"tiny-resnet": ("resnet", [0, 1, 2, 3, 4], {}),
          "tiny-convnext": ("convnext", [5, 6, 7, 8, 9], {"patch_size": 4})}  # 8x8 after the stem: cheap on a CPU


def train_folder(folder: Path, dataset, labels: list[int], *, epochs: int, seed: int = 0, lr: float = 2e-3,
                 batch_size: int = 64, device=None) -> float:
    """Train the transformers model in ``folder`` on ``labels`` of ``dataset`` and save it there again (weights
    only: config and preprocessor config unchanged); returns its accuracy on the test images of those labels.
    ``device``: where it trains (default the CPU; the shuffles are drawn on the CPU either way)."""
    from pnc_pack.data import relabel, select_classes
    from pnc_pack.zoo.pretrained import load_pretrained

    dev = torch.device(device or "cpu")
    model, _ = load_pretrained(folder)
    model.to(dev)
    X, y = select_classes(*dataset.train, labels)
    X, y = model.prepare_images(X).to(dev), relabel(y, labels).to(dev)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            idx = perm[i:i + batch_size].to(dev)
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval().cpu()
    for p in params:
        p.requires_grad_(False)
    config = (folder / "config.json").read_bytes()  # the wrapper's config holds only the checked arguments
    model._hf.save_pretrained(folder)
    (folder / "config.json").write_bytes(config)  # so the original, with its id2label, stays
    Xt, yt = select_classes(*dataset.test, labels)
    with torch.no_grad():
        pred = model(model.prepare_images(Xt)).argmax(1)
    return float((pred == relabel(yt, labels)).float().mean())


def write_dataset(folder: Path, dataset) -> Path:
    """``dataset`` (uint8-valued images, 1 channel) in the Hub's parquet layout."""
    from tests.parquet_data import write_parquet_dataset

    def u8(X):
        return X[:, 0].mul(255).round().to(torch.uint8).numpy() if X.dtype != torch.uint8 else X[:, 0].numpy()

    return write_parquet_dataset(folder, {"train": (u8(dataset.train[0]), dataset.train[1].numpy()),
                                          "test": (u8(dataset.test[0]), dataset.test[1].numpy())},
                                 dataset.class_names)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.hf_example", description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from pnc_pack.data import load_dataset
    from tests.hf_models import write_hf_folder

    digits = load_dataset("digits")
    for i, (name, (mt, labels, kw)) in enumerate(MODELS.items()):
        folder = write_hf_folder(args.out / name, mt, seed=args.seed + i, labels=labels, **kw)
        acc = train_folder(folder, digits, labels, epochs=args.epochs, seed=args.seed + i)
        print(f"{folder}: {mt} on digits {labels}, test accuracy {acc:.3f}")
    print(f"{write_dataset(args.out / 'mnist-pq', digits)}: digits as parquet (train/test)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
