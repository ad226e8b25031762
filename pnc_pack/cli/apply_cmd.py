"""pnc-pack apply"""

from __future__ import annotations

from pathlib import Path

import click

from pnc_pack.cli._build_opts import eval_lines
from pnc_pack.cli._common import (
    check_outputs,
    check_writable,
    device_options,
    emit_json,
    error_object,
    force_option,
    json_option,
    one_line,
)


@click.command("apply")
@click.argument("delta")
@click.option("--target", "target", default=None, help="Target model folder or hf://REPO@REV (overrides the pin's location).")
@click.option("--source", "sources", multiple=True, help="Source model folder or hf:// spec, one per cloned module.")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None,
              help="A folder holding the referenced model folders (by their names).")
@click.option("--trusted-key", "trusted", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="Public key file; at least one valid signature must be by one of these keys.")
@click.option("--require-signature", is_flag=True, help="Refuse an unsigned delta.")
@click.option("--export", "export_dir", type=click.Path(file_okay=False), default=None,
              help="Write the offline form (one safetensors + config.json) to this folder.")
@click.option("--repair-data", default=None, help="Dataset spec to repair-finetune adapters and classifier on.")
@click.option("--repair-epochs", default=8, show_default=True, type=click.IntRange(1, 1000))
@click.option("--repair-samples", default=300, show_default=True, type=click.IntRange(1),
              help="Training samples used by the repair (stratified over the clone's classes).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="With --repair-data: write the repaired delta here (same references, provenance marked).")
@click.option("--eval-data", default=None, help="Dataset spec to evaluate Ori / Tar / Avg on (its test split).")
@click.option("--resize", is_flag=True, help="Resize the images of --repair-data and --eval-data to the model's input "
              "shape (else a shape that differs is an error).")
@click.option("--min-ori", type=click.FloatRange(0, 100), default=None,
              help="Gate: lowest Ori accepted, in percent (needs --eval-data).")
@click.option("--min-tar", type=click.FloatRange(0, 100), default=None,
              help="Gate: lowest Tar accepted, in percent (needs --eval-data).")
@click.option("--max-ori-drop", type=click.FloatRange(0, 100), default=None,
              help="Gate: most Ori may fall below the unmodified target's, in percentage points (needs --eval-data).")
@click.option("--export-onnx", "onnx_path", type=click.Path(dir_okay=False), default=None,
              help="Write the clone as one ONNX graph here (and a sidecar FILE.json), checked with onnxruntime first.")
@click.option("--onnx-opset", type=click.IntRange(13, 21), default=17, show_default=True)
@click.option("--onnx-atol", type=click.FloatRange(0), default=1e-4, show_default=True,
              help="ONNX check: allowed max |onnx - torch| is atol + rtol * max |torch|.")
@click.option("--onnx-rtol", type=click.FloatRange(0), default=1e-4, show_default=True)
@force_option
@device_options(precision=False)
@json_option
def apply_cmd(delta, target, sources, models_dir, trusted, require_signature, export_dir, repair_data,
              repair_epochs, repair_samples, output, eval_data, resize, min_ori, min_tar, max_ori_drop, onnx_path,
              onnx_opset, onnx_atol, onnx_rtol, force, as_json, device="auto"):
    """Rebuild the cloned model from DELTA (a file or hf://REPO[@REV]) and the models it pins.

    Every referenced file's size and sha256 is checked before any tensor is read; pretrained weights are never
    written. Optionally evaluate, repair-finetune (adapters and classifier only), gate, and export the offline
    model or an ONNX graph. Gates (--min-ori, --min-tar, --max-ori-drop, in percent) and the ONNX check run before
    anything is written: a failed gate exits with code 8, a failed ONNX check with 9, and nothing is written.
    """
    import time

    from pnc_pack.api.model import apply
    from pnc_pack.api.specs import open_delta
    from pnc_pack.errors import UsageError
    from pnc_pack.format.signing import load_public_key
    from pnc_pack.progress import progress

    if output and not repair_data:
        raise UsageError("-o/--output writes a repaired delta: it needs --repair-data")
    check_outputs(output, onnx_path, force=force)
    if onnx_path:  # the sidecar FILE.json is an output too
        from pnc_pack.clone.onnx_export import sidecar_path

        check_outputs(sidecar_path(onnx_path), force=force)
    if export_dir:
        from pnc_pack.clone.export import CONFIG, WEIGHTS

        check_writable(export_dir)
        check_outputs(Path(export_dir) / WEIGHTS, Path(export_dir) / CONFIG, force=force)
    gates = {k: v for k, v in (("min_ori", min_ori), ("min_tar", min_tar), ("max_ori_drop", max_ori_drop))
             if v is not None}
    if gates and not eval_data:
        raise UsageError("--min-ori, --min-tar and --max-ori-drop are measured on --eval-data: give it")
    if onnx_path:
        from pnc_pack.clone.onnx_export import _modules

        _modules()  # the optional extra is there, before any long work
    keys = [load_public_key(k) for k in trusted]
    t0 = time.perf_counter()
    d = open_delta(delta)
    cloned = apply(d, target=target, source=list(sources) or None, models_dir=models_dir, trusted_keys=keys,
                   require_signature=require_signature, device=device)
    report: dict = {"delta": delta, "apply_seconds": round(time.perf_counter() - t0, 3),
                    "outputs": [{"index": i, "name": lab.name, "from": lab.model} for i, lab in enumerate(d.labels)],
                    "modules": [{"source": m.source.short(), "R": m.target_position, "R_s": m.source_position}
                                for m in d.modules],
                    "target": d.target.short(), "trainable_parameters": sum(p.numel() for p in cloned.trainable_parameters())}
    repaired = None
    with progress() as p:
        if repair_data:
            from pnc_pack.clone.repair import SignaturesDroppedWarning, repair, repaired_delta
            from pnc_pack.data import load_dataset

            result = repair(cloned, load_dataset(repair_data), epochs=repair_epochs, samples=repair_samples,
                            progress=p, resize=resize)
            report["repair"] = {"samples": result.samples, "epochs": result.epochs, "before": result.before,
                                "after": result.after, "losses": result.losses}
            if output:
                import warnings

                with warnings.catch_warnings():  # said below, on stderr and in the report
                    warnings.simplefilter("ignore", SignaturesDroppedWarning)
                    repaired = repaired_delta(cloned, result, repair_data)
                report["repair"]["signatures_dropped"] = len(d.signatures)
        if eval_data:
            from pnc_pack.clone.evaluate import evaluate_delta_model
            from pnc_pack.data import load_dataset

            eval_set = load_dataset(eval_data)
            if resize:
                from pnc_pack.clone.evaluate import resized

                eval_set = resized(eval_set, cloned.input_shape)
            report["eval"] = evaluate_delta_model(cloned, eval_set)
    if gates:  # before anything is written
        from pnc_pack.clone.gates import check_gates
        from pnc_pack.errors import GateError

        try:
            report["gates"] = check_gates(cloned, eval_set, evaluation=report["eval"], **gates)
        except GateError as exc:
            report["gates"] = {"unit": "percent", "measured": exc.measured, "gates": exc.gates, "passed": False}
            if as_json:
                emit_json({**report, "error": error_object(type(exc).__name__, one_line(str(exc)), exc.exit_code)})
            raise
    onnx = None
    if onnx_path:  # built and checked with onnxruntime before anything is written
        from pnc_pack.clone.onnx_export import build_onnx

        samples = None
        if eval_data:
            from pnc_pack.clone.evaluate import labelled_split

            samples = labelled_split(cloned, eval_set)[0]
        onnx = build_onnx(cloned, samples=samples, opset=onnx_opset, atol=onnx_atol, rtol=onnx_rtol)
    if repaired is not None:
        from pnc_pack.format import codec

        codec.save(repaired, output)
        report["repair"]["output"] = output
        if d.signatures:
            from pnc_pack.clone.repair import signatures_dropped_note

            report["repair"]["note"] = signatures_dropped_note(len(d.signatures), output)
            click.echo(f"pnc-pack: note: {report['repair']['note']}", err=True)
    if export_dir:
        from pnc_pack.clone.export import export_cloned

        report["export"] = {"path": export_dir, "bytes": export_cloned(cloned, export_dir)}
    if onnx is not None:
        model_path, side = onnx.write(onnx_path)
        report["onnx"] = {"path": str(model_path), "sidecar": str(side), "bytes": len(onnx.model),
                          "opset": onnx_opset, **onnx.sidecar["check"]}
    if as_json:
        emit_json(report)
        return
    click.echo(f"applied {delta}: target {report['target']}, {len(d.modules)} module(s), "
               f"{len(d.labels)} outputs, {report['trainable_parameters']} clone parameters "
               f"({report['apply_seconds']:.2f} s)")
    for m in report["modules"]:
        click.echo(f"  module from {m['source']}: R={m['R']} R_s={m['R_s']}")
    if "repair" in report:
        b, a = report["repair"]["before"], report["repair"]["after"]
        click.echo(f"repair on {report['repair']['samples']} samples: Avg {100 * b['avg']:.2f}% -> {100 * a['avg']:.2f}%"
                   + (f", wrote {output}" if output else ""))
    if "eval" in report:
        e = report["eval"]
        click.echo("eval: " + "\n".join(eval_lines(e)))
    if "export" in report:
        click.echo(f"exported the offline model to {export_dir} ({report['export']['bytes']} bytes)")
    if "gates" in report:
        click.echo("gates passed: " + ", ".join(f"{g['flag']} {g['limit']:g} (measured {g['measured']:.2f})"
                                                for g in report["gates"]["gates"]))
    if "onnx" in report:
        o = report["onnx"]
        click.echo(f"exported ONNX (opset {o['opset']}) to {o['path']} ({o['bytes']} bytes) and {o['sidecar']}: "
                   f"onnxruntime vs torch on {o['samples']} samples: max |diff| {o['max_abs_diff']:.3g} "
                   f"(allowed {o['allowed']:.3g}), argmax agreement {100 * o['argmax_agreement']:.2f}%")
