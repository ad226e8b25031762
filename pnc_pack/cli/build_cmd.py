"""pnc-pack build"""

from __future__ import annotations

import click

from pnc_pack.cli._common import emit_json, json_option


def _classes(value: str) -> list[int]:
    from pnc_pack.errors import UsageError

    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--clone-classes: expected comma-separated integers, got {value!r}") from None
    if not out:
        raise UsageError("--clone-classes: at least one class")
    return out


@click.command("build")
@click.option("--source", required=True, help="Source model: a folder or hf://REPO[@REVISION].")
@click.option("--target", required=True, help="Target model: a folder or hf://REPO[@REVISION].")
@click.option("--data", required=True, help="Dataset spec holding samples of the classes to clone.")
@click.option("--clone-classes", required=True, help="Dataset labels to clone from the source, e.g. 5,6,7.")
@click.option("--data-fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Share of the to-be-cloned training samples used (default 0.1, as the paper on MNIST).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--steps", type=click.IntRange(1), default=None, help="Training steps per insertion position.")
@click.option("--eval-data", default=None, help="Dataset spec whose test split gives the metrics stored in the delta.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to write the delta.")
@json_option
def build_cmd(source, target, data, clone_classes, data_fraction, seed, steps, eval_data, output, as_json):
    """Run Partial Network Cloning: clone CLONE_CLASSES of SOURCE into TARGET and write a clone delta.

    Only samples of the classes to clone are used. Branch and tag names are resolved to commits; every model file
    is pinned by sha256. Neither model is modified. Same inputs and seed give a byte-identical delta.
    """
    import time

    from pnc_pack.build import build_clone
    from pnc_pack.data import load_dataset
    from pnc_pack.format import codec
    from pnc_pack.progress import progress

    kw = {k: v for k, v in (("data_fraction", data_fraction), ("steps", steps)) if v is not None}
    ds = load_dataset(data)
    ev = ds if eval_data == data else eval_data
    t0 = time.perf_counter()
    with progress() as p:
        delta = build_clone(source, target, ds, _classes(clone_classes), seed=seed, eval_data=ev, progress=p, **kw)
    seconds = time.perf_counter() - t0
    size = codec.save(delta, output)
    m = delta.metrics
    if as_json:
        emit_json({"output": output, "bytes": size, "build_seconds": round(seconds, 2), "metrics": m})
        return
    click.echo(f"wrote {output} ({size} bytes) in {seconds:.1f} s: R={m['R']} R_s={m['R_s']}, "
               f"mask density {m['mask_density']:.3f}")
    click.echo("held-out loss per R: " + ", ".join(f"R={r}: {v['total']:.4f}" for r, v in m["loss_per_R"].items()))
    if "eval" in m:
        e = m["eval"]
        click.echo(f"eval on {e['data']}: Ori {100 * e['ori']:.2f}%  Tar {100 * e['tar']:.2f}%  Avg {100 * e['avg']:.2f}%")
