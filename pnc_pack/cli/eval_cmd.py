"""pnc-pack eval"""

from __future__ import annotations

import click

from pnc_pack.cli._build_opts import eval_lines
from pnc_pack.cli._common import device_options, emit_json, json_option


@click.command("eval")
@click.argument("delta")
@click.option("--data", required=True, help="Dataset spec; its test split is used.")
@click.option("--target", default=None, help="Target model folder (overrides the pin's location).")
@click.option("--source", "sources", multiple=True, help="Source model folder, one per module.")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None)
@click.option("--resize", is_flag=True, help="Resize DATA's images to the model's input shape (else a shape that "
              "differs is an error).")
@click.option("--similarity", is_flag=True, help="Also the paper's conditional similarity Sim(clone|D, model|D) "
              "against the target and each source, on each functionality's data (SUPP Eq. 7).")
@click.option("--similarity-anchors", type=click.IntRange(min=1), default=50, show_default=True,
              help="Images per functionality the similarity's local models are fitted around.")
@device_options(precision=False)
@json_option
def eval_cmd(delta, data, target, sources, models_dir, resize, similarity, similarity_anchors, device, as_json):
    """Rebuild the clone from its pinned models and report Ori, Tar and Avg on the test split of DATA, and the
    accuracy per functionality (the target's classes, then each module's: the supplementary's Table 3) with where
    misclassified images went."""
    from pnc_pack.api.model import apply
    from pnc_pack.clone.evaluate import evaluate_delta_model
    from pnc_pack.data import load_dataset

    cloned = apply(delta, target=target, source=list(sources) or None, models_dir=models_dir, device=device)
    dataset = load_dataset(data)
    result = evaluate_delta_model(cloned, dataset, detail=True, resize=resize)
    if similarity:
        from pnc_pack.api.similarity import conditional_similarity

        result["similarity"] = conditional_similarity(cloned, dataset, anchors=similarity_anchors, resize=resize)
    if as_json:
        emit_json(result)
        return
    click.echo("\n".join(eval_lines(result)))
    if result["per_class"]:
        click.echo("per class: " + ", ".join(f"{k}: {100 * v:.1f}%" for k, v in result["per_class"].items()))
    if similarity:
        from pnc_pack.builder.similarity import similarity_lines

        click.echo("\n".join(similarity_lines(result["similarity"])))
