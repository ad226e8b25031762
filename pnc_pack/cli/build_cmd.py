"""pnc-pack build"""

from __future__ import annotations

import click

from pnc_pack.cli._build_opts import (
    builder_options,
    eval_lines,
    list_settings_option,
    module_lines,
    parse_classes,
    parse_settings,
)
from pnc_pack.cli._common import check_outputs, device_options, emit_json, json_option
from pnc_pack.cli._dist import dist_options, torchrun_threads


def _plan(sources, clone_classes, select) -> list[tuple[str, list[int]]]:
    from pnc_pack.errors import UsageError

    groups = [parse_classes(c) for c in clone_classes]
    if select:
        if len(groups) != 1 or len(sources) < 2:
            raise UsageError("--select-source: give two or more --source candidates and one --clone-classes")
        return [(s, groups[0]) for s in sources]
    if len(sources) != len(groups):
        raise UsageError(f"{len(sources)} --source and {len(groups)} --clone-classes: give one --clone-classes after "
                         "each --source (or --select-source to choose one source among several for the same classes)")
    return list(zip(sources, groups))


def _exemplars(spec, kw: dict, several: bool) -> dict:
    """--exemplars / --exemplars-per-class checked together, and the spec read, before any model is loaded."""
    from pnc_pack.errors import UsageError

    if spec is None and not kw.get("exemplars_per_class"):
        return {}
    if spec is None or not kw.get("exemplars_per_class"):
        raise UsageError("--exemplars SPEC and --exemplars-per-class N go together")
    if several:
        raise UsageError("--exemplars: one --source per build (not with several sources or --select-source)")
    from pnc_pack.builder.config import BuildConfig
    from pnc_pack.builder.exemplars import check

    return {"exemplars": check(spec, kw["exemplars_per_class"], BuildConfig.from_dict(kw))}


@click.command("build")
@click.option("--source", "sources", multiple=True, required=True,
              help="Source model: a folder or hf://REPO[@REVISION]. Repeat for several sources, each followed by "
                   "its --clone-classes.")
@click.option("--target", required=True, help="Target model: a folder or hf://REPO[@REVISION].")
@click.option("--data", required=True, help="Dataset spec holding samples of the classes to clone.")
@click.option("--clone-classes", "clone_classes", multiple=True, required=True,
              help="Dataset labels to clone from the source before it, e.g. 5,6,7.")
@click.option("--select-source", "select", is_flag=True,
              help="The --source options are candidates for the same --clone-classes: score each by its local-model-"
                   "set similarity to the target on D_t (SUPP Eqs. 6-8), print the scores, build from the best.")
@click.option("--select-by", type=click.Choice(["similarity", "accuracy", "competent"]), default="similarity",
              show_default=True, help="With --select-source: the paper's similarity; the candidates' accuracy on "
              "D_t; or the most similar among those within 2 points of the best accuracy on D_t.")
@click.option("--select-anchors", type=click.IntRange(min=1), default=200, show_default=True,
              help="With --select-source: at most this many anchors of D_t to score the candidates on.")
@click.option("--select-masks", type=click.IntRange(min=1), default=100, show_default=True,
              help="With --select-source: random patch masks per anchor (the paper's 100; with few, the scores of "
                   "close candidates swap between draws).")
@click.option("--exemplars", default=None, metavar="SPEC",
              help="Opt-in, beyond the paper: a dataset spec whose *training* images of the target's classes join "
                   "the negatives (never its test split; recorded in the delta's provenance). Needs "
                   "--exemplars-per-class. Default: data-free.")
@click.option("--exemplars-per-class", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --exemplars: real images per target class.")
@builder_options
@dist_options
@list_settings_option
@device_options(deterministic=True)
@json_option
def build_cmd(sources, target, data, clone_classes, select, select_by, select_anchors, select_masks, exemplars,
              exemplars_per_class, data_fraction, seed, steps, settings, eval_data, output, force, as_json, nproc=None,
              dist_timeout=None, device="auto", precision="fp32", deterministic=False):
    """Run Partial Network Cloning: clone CLONE_CLASSES of SOURCE into TARGET and write a clone delta.

    Several sources in one clone: --source A --clone-classes 5,6 --source B --clone-classes 7 gives one delta
    with one module per source (each built against the target alone, then combined). Choosing a source:
    --source A --source B --clone-classes 7 --select-source.

    Builder settings: --set NAME=VALUE (repeatable) sets any of them, e.g. --set retune_steps=50;
    --list-settings prints every setting with its type, default and help (with --json: as JSON) and exits,
    without needing the other options. Why each default has its value: docs/builder-notes.md.

    Only samples of the classes to clone are used. Branch and tag names are resolved to commits; every model file
    is pinned by sha256. Neither model is modified. Same inputs and seed give a byte-identical delta.
    """
    import time

    torchrun_threads()  # before torch loads: every rank gets the serial build's thread count
    from pnc_pack.data import load_dataset
    from pnc_pack.format import codec
    from pnc_pack.progress import progress

    plan = _plan(sources, clone_classes, select)
    from pnc_pack.devices import resolve_device

    resolve_device(device)  # a device that does not exist: a usage error before anything is loaded
    dev_kw = dict(device=device, precision=precision, deterministic=deterministic)
    kw = parse_settings(settings, data_fraction=data_fraction, steps=steps, exemplars_per_class=exemplars_per_class)
    ex_kw = _exemplars(exemplars, kw, select or len(plan) > 1)
    from pnc_pack.builder.dist_session import session

    dist = click.get_current_context().with_resource(session(nproc, dist_timeout, explicit=True, device=device))
    if dist is not None and dist.rank != 0:  # a worker: rank 0 sends it units of work, and alone writes
        raise click.exceptions.Exit(dist.serve())
    check_outputs(output, force=force)
    ds = load_dataset(data)
    ev = ds if eval_data == data else eval_data
    t0 = time.perf_counter()
    selection = None
    with progress() as p:
        if select:
            from pnc_pack.api.build import build_selected

            delta, sel = build_selected(target, [s for s, _ in plan], ds, plan[0][1], seed=seed, eval_data=ev,
                                        progress=p, **dev_kw, rule=select_by, max_anchors=select_anchors,
                                        select_masks=select_masks, **kw)
            selection = sel.to_dict()
        elif len(plan) == 1:
            from pnc_pack.api.build import build_clone

            delta = build_clone(target, plan[0][0], ds, plan[0][1], seed=seed, eval_data=ev, progress=p, **dev_kw,
                                **ex_kw, **kw)
        else:
            from pnc_pack.api.build import build_multi

            delta = build_multi(target, plan, ds, seed=seed, eval_data=ev, progress=p, **dev_kw, **kw)
    if dist is not None:
        dist.finish()  # every rank done; then rank 0 alone writes
    seconds = time.perf_counter() - t0
    size = codec.save(delta, output)
    m = delta.metrics
    if as_json:
        emit_json({"output": output, "bytes": size, "build_seconds": round(seconds, 2), "modules": len(delta.modules),
                   "metrics": m, **({"selection": selection} if selection else {})})
        return
    if selection:
        click.echo(f"source selection by {selection['rule']}: local-model-set similarity to the target on "
                   f"{selection['anchors']} anchors of D_t (ZEST-aligned columns), and accuracy on D_t")
        for i, (c, d) in enumerate(zip(selection["candidates"], selection["details"])):
            mark = i == selection["best"]
            click.echo(f"  {'*' if mark else ' '} similarity {d['score']:+.4f}  D_t accuracy {100 * d['dt_accuracy']:5.1f}%"
                       f"  {c}" + ("   <- chosen" if mark else ""))
        accs = [d["dt_accuracy"] for d in selection["details"]]
        if accs[selection["best"]] < max(accs) - 0.02:
            click.echo(f"note: the chosen source classifies D_t {100 * (max(accs) - accs[selection['best']]):.1f} "
                       "points worse than the best candidate; --select-by competent takes the most similar of the "
                       "accurate ones (measured: tools/bench/RESULTS.md)", err=True)
    click.echo(f"wrote {output} ({size} bytes, {len(delta.modules)} module(s)) in {seconds:.1f} s")
    for line in module_lines(delta):
        click.echo(line)
    if "eval" in m:
        click.echo(f"eval on {m['eval']['data']}: " + "\n".join(eval_lines(m["eval"])))
