"""``pnc-pack train``: train a zoo model on some classes of a dataset and write a pretrained-model folder."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pnc_pack.cli._common import check_outputs, check_writable, device_options, emit_json, json_option
from pnc_pack.errors import UsageError


def parse_classes(text: str) -> list[int]:
    items = text.replace(" ", "").split(",")
    if items == [""]:
        raise UsageError("--classes: no class given")
    if "" in items:
        raise UsageError(f"--classes: empty item in {text!r}: expected comma-separated integer labels like 0,1,2")
    try:
        return [int(t) for t in items]
    except ValueError:
        raise UsageError(f"--classes: expected comma-separated integer labels like 0,1,2, got {text!r}") from None


def parse_arch_arg(text: str) -> tuple[str, object]:
    """``k=v``: v is an int, a float, true/false, or else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise UsageError(f"--arch-arg: expected NAME=VALUE, got {text!r}")
    low = value.lower()
    if low in ("true", "false"):
        return key, low == "true"
    for conv in (int, float):
        try:
            return key, conv(value)
        except ValueError:
            pass
    return key, value


@click.command("train")
@click.option("--arch", required=True, help="Registered architecture name (lenet5, plaincnn, resnet18, ...).")
@click.option("--data", "data_spec", required=True,
              help="Dataset spec: mnist5k, digits, idx:DIR, npz:FILE or folder:DIR.")
@click.option("--classes", required=True, help="Comma-separated labels; output i is label classes[i].")
@click.option("--epochs", type=click.IntRange(1), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--label-smoothing", type=float, default=0.0, show_default=True)
@click.option("--arch-arg", "arch_arg", multiple=True, metavar="NAME=VALUE",
              help="Architecture argument (repeatable), e.g. width=16 or image_size=28.")
@click.option("--data-fraction", type=float, default=1.0, show_default=True,
              help="Train on this stratified fraction of the training images of those classes.")
@device_options
@click.option("--force", is_flag=True, help="Overwrite a model folder that already exists.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Model folder to write.")
@json_option
def train_cmd(arch, data_spec, classes, epochs, seed, batch_size, lr, weight_decay, label_smoothing, arch_arg,
              data_fraction, device, precision, force, output, as_json):
    """Train a zoo model on some classes; write OUTPUT/model.safetensors and OUTPUT/config.json."""
    from pnc_pack.progress import progress
    from pnc_pack.zoo.pretrained import local_ref, save_pretrained
    from pnc_pack.zoo.training import train_model

    class_list = parse_classes(classes)
    arch_args = dict(parse_arch_arg(a) for a in arch_arg)
    out = Path(output)
    check_writable(out)
    check_outputs(out / "model.safetensors", out / "config.json", force=force)
    t0 = time.perf_counter()
    with progress() as p:
        model, config = train_model(
            arch, arch_args, data_spec, class_list, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
            weight_decay=weight_decay, label_smoothing=label_smoothing, data_fraction=data_fraction,
            device=device, precision=precision, progress=p,
        )
    seconds = time.perf_counter() - t0
    save_pretrained(model, config, out)
    ref = local_ref(out)
    result = {
        "folder": str(out), "arch": config.arch, "arch_args": config.arch_args, "classes": config.labels,
        "test_accuracy": config.training.get("test_accuracy"), "train_samples": config.training["train_samples"],
        "test_samples": config.training["test_samples"], "seconds": round(seconds, 2),
        "files": {n: {"sha256": d.sha256, "size": d.size} for n, d in sorted(ref.files.items())},
    }
    if as_json:
        emit_json(result)
        return
    acc = result["test_accuracy"]
    click.echo(f"trained {config.arch} on {data_spec} classes {config.labels} in {seconds:.1f} s: "
               f"test accuracy {acc:.4f} ({result['test_samples']} images)" if acc is not None else
               f"trained {config.arch} in {seconds:.1f} s (no test images)")
    click.echo(f"wrote {out}/model.safetensors (sha256 {ref.files['model.safetensors'].sha256[:16]}...) and config.json")
