"""``pnc-pack add`` and ``pnc-pack remove``: a module more or less in a clone delta (pnc_pack.builder.multi).

``remove`` is torch-free (it only rewrites the delta); ``add`` builds the new module with the PNC builder.
Both write a new, unsigned delta (its content changed, so the old signatures no longer apply); sign it again.
"""

from __future__ import annotations

import click

from pnc_pack.cli._build_opts import builder_options, eval_lines, module_lines, parse_classes, parse_settings
from pnc_pack.cli._common import check_outputs, device_options, emit_json, force_option, json_option


def _report(delta, output, size, base, extra: dict, as_json: bool, lines_fn=None):
    from pnc_pack.format.compose import split

    _, parts = split(delta)
    modules = [{"index": i, "source": p.module.source.short(), "classes": p.class_names,
                "R": p.module.target_position, "R_s": p.module.source_position} for i, p in enumerate(parts)]
    dropped = len(base.signatures)
    if as_json:
        emit_json({"output": output, "bytes": size, "modules": modules, "signatures_dropped": dropped, **extra})
        return
    click.echo(f"wrote {output} ({size} bytes, {len(parts)} module(s))"
               + (f"; {dropped} signature(s) of the input dropped: sign the new delta" if dropped else ""))
    for line in (lines_fn(delta) if lines_fn else [f"module {m['index']}: {m['source']} clones "
                                                   f"{', '.join(m['classes'])} (R={m['R']}, R_s={m['R_s']})"
                                                   for m in modules]):
        click.echo(line)
    if not parts:
        click.echo("no module left: applying this delta gives the target itself, bit for bit")


@click.command("add")
@click.argument("base")
@click.option("--source", required=True, help="Source model of the new module: a folder or hf://REPO[@REVISION].")
@click.option("--clone-classes", required=True, help="Dataset labels to clone from it, e.g. 7,8.")
@click.option("--data", required=True, help="Dataset spec holding samples of those classes.")
@click.option("--target", default=None, help="Target model folder or hf:// spec (default: where the base delta's pin "
              "says); its files must match that pin.")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding the base delta's models (as for apply).")
@builder_options
@device_options(deterministic=True)
@json_option
def add_cmd(base, source, clone_classes, data, target, models_dir, data_fraction, seed, steps, settings, eval_data, output,
            force, as_json, device="auto", precision="fp32", deterministic=False):
    """Add a module to the clone delta BASE (a file or hf://REPO[@REV]): clone CLONE_CLASSES of SOURCE into the
    same target. The modules already in BASE are not retrained: their tensors are copied as they are.
    --device / --precision / --deterministic: as for build (recorded in the new module's provenance)."""
    from pnc_pack.api.build import add_source
    from pnc_pack.api.specs import open_delta
    from pnc_pack.data import load_dataset
    from pnc_pack.devices import resolve_device
    from pnc_pack.format import codec
    from pnc_pack.progress import progress

    resolve_device(device)  # a device that does not exist: a usage error before anything is loaded
    kw = parse_settings(settings, data_fraction=data_fraction, steps=steps)
    kw.update(device=device, precision=precision, deterministic=deterministic)
    check_outputs(output, force=force)
    d = open_delta(base)
    ds = load_dataset(data)
    ev = ds if eval_data == data else eval_data
    with progress() as p:
        delta = add_source(d, source, parse_classes(clone_classes), ds, target=target, models_dir=models_dir,
                           seed=seed, eval_data=ev, progress=p, **kw)
    size = codec.save(delta, output)
    if as_json:
        _report(delta, output, size, d, {"metrics": delta.metrics}, True)
        return
    _report(delta, output, size, d, {}, False, module_lines)
    if "eval" in delta.metrics:
        click.echo(f"eval on {delta.metrics['eval']['data']}: " + "\n".join(eval_lines(delta.metrics["eval"])))


@click.command("remove")
@click.argument("base")
@click.option("--module", "indices", multiple=True, type=click.IntRange(0), help="Index of a module to remove "
              "(see pnc-pack inspect). Repeatable.")
@click.option("--source", default=None, help="Remove the module(s) cloned from this source (path, hub repo id, "
              "hf:// URI, or the first 8+ hex digits of its weights' sha256).")
@click.option("--classes", default=None, help="Remove the module that clones exactly these classes, e.g. 5,6.")
@click.option("--all", "remove_all", is_flag=True, help="Remove every module (the delta of the bare target).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to write the new delta.")
@force_option
@json_option
def remove_cmd(base, indices, source, classes, remove_all, output, force, as_json):
    """Remove modules from the clone delta BASE (a file or hf://REPO[@REV]) and write the rest to OUTPUT; the others
    are untouched, so their
    logits are exactly what they were. Removing every module leaves the target alone, bit for bit."""
    from pnc_pack.api.specs import open_delta
    from pnc_pack.errors import UsageError
    from pnc_pack.format import codec
    from pnc_pack.format.compose import find_modules, remove, split

    check_outputs(output, force=force)
    if remove_all and (indices or source is not None or classes is not None):
        raise UsageError("--all removes every module: give it alone, or name modules with --module, --source or "
                         "--classes instead")
    d = open_delta(base)
    chosen = set(indices)
    if remove_all:
        chosen |= set(range(len(d.modules)))
    if source is not None or classes is not None:
        found = find_modules(d, source=source, classes=parse_classes(classes, "--classes") if classes else None)
        if not found:
            raise UsageError("no module of the delta matches " + " and ".join(
                x for x in (f"--source {source}" if source else "", f"--classes {classes}" if classes else "") if x))
        chosen |= set(found)
    if not chosen:
        raise UsageError("say which module(s) to remove: --module I, --source, --classes or --all")
    _, parts = split(d)
    out = remove(d, sorted(chosen))
    size = codec.save(out, output)
    removed = [{"index": i, "source": parts[i].module.source.short(), "classes": parts[i].class_names}
               for i in sorted(chosen)]
    if as_json:
        _report(out, output, size, d, {"removed": removed}, True)
        return
    for r in removed:
        click.echo(f"removed module {r['index']}: {r['source']} ({', '.join(r['classes'])})")
    _report(out, output, size, d, {}, False)
