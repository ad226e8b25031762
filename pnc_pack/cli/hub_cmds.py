"""``pnc-pack push``, ``pnc-pack pull`` and ``pnc-pack zoo push``: thin wrappers over :mod:`pnc_pack.hub`.

Torch-free. Errors are typed (pnc_pack.errors) and become one line and an exit code in ``run_main``:
10 hub error, 11 not found, 12 unauthorised, 13 connection failed, 14 offline and not cached, 3 malformed delta,
5 unpublished (local) model references.
"""

from __future__ import annotations

import click

from pnc_pack.cli._common import check_outputs, emit_json, force_option, json_option


def _push_options(what: str, default_message: str):
    """The options of both push commands (``push`` and ``zoo push``): REPO_ID after the argument ``what`` (a
    click.argument decorator), --branch, --private, --message, --json."""

    def wrap(f):
        for option in reversed([
            what,
            click.argument("repo_id"),
            click.option("--branch", default=None, help="Branch to commit to (default: main; created if missing)."),
            click.option("--private", is_flag=True,
                         help="Create the repository as private (if it does not exist yet)."),
            click.option("--message", "-m", default=None, help=f"Commit message (default: {default_message})."),
            json_option,
        ]):
            f = option(f)
        return f

    return wrap


def _echo_commit(repo_id: str, branch: str | None, commit: str, as_json: bool, **more) -> None:
    """What both push commands print: the commit sha, or with --json the repository, branch, commit and uri."""
    if as_json:
        emit_json({"repo_id": repo_id, "branch": branch or "main", "commit": commit,
                   "uri": f"hf://{repo_id}@{commit}", **more})
    else:
        click.echo(commit)


@click.command("push")
@_push_options(click.argument("delta", type=click.Path(exists=True, dir_okay=False)), "generated from the delta")
def push_cmd(delta, repo_id, branch, private, message, as_json):
    """Upload the clone delta DELTA to the Hub repository REPO_ID, with a generated model card.

    Prints the commit sha. Needs HF_TOKEN (or `hf auth login`); HF_ENDPOINT selects another Hub.
    """
    from pnc_pack.hub import push, settings

    commit = push(delta, repo_id, branch=branch, private=private, message=message)
    _echo_commit(repo_id, branch, commit, as_json, url=f"{settings().endpoint}/{repo_id}/commit/{commit}")


@click.command("pull")
@click.argument("spec", metavar="REPO_ID[@REVISION]")
@click.option("--output", "-o", type=click.Path(), default=None,
              help="Also copy the delta here (a file, or a folder that gets clone.pncd).")
@click.option("--trusted-key", "trusted", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A trusted public key (NAME.pub from keygen); a valid signature by one of them is required.")
@click.option("--require-signature", is_flag=True, help="Fail (exit 4) when the delta carries no valid signature.")
@force_option
@json_option
def pull_cmd(spec, output, trusted, require_signature, force, as_json):
    """Download the clone delta of REPO_ID (at a branch, tag or commit) through the Hub cache and verify it.

    Prints the commit it came from and the path of the verified file.
    """
    from pnc_pack.format.signing import load_public_key
    from pnc_pack.hub import parse_spec, pull
    from pnc_pack.refs import sha256_file

    if output is not None:
        from pathlib import Path

        from pnc_pack.hub.deltas import DELTA_FILENAME

        check_outputs(Path(output) / DELTA_FILENAME if Path(output).is_dir() else output, force=force)
    keys = [load_public_key(p) for p in trusted]
    pulled = pull(spec, output=output, trusted_keys=keys, require_signature=require_signature)
    path, commit, delta = pulled.path, pulled.commit, pulled.delta
    if as_json:
        repo_id, revision = parse_spec(spec)
        digest = sha256_file(path)
        emit_json({"repo_id": repo_id, "revision": revision, "commit": commit, "path": str(path),
                   "sha256": digest.sha256, "size": digest.size, "uri": f"hf://{repo_id}@{commit}",
                   "refs": [r.uri() for r in delta.refs]})
    else:
        click.echo(f"commit {commit}")
        click.echo(f"path {path}")


@click.group("zoo")
def zoo_group():
    """Publish pretrained-model folders (config.json + model.safetensors) to the Hub."""


@zoo_group.command("push")
@_push_options(click.argument("model_dir", type=click.Path(exists=True, file_okay=False)),
              "generated from the model's config")
def zoo_push_cmd(model_dir, repo_id, branch, private, message, as_json):
    """Publish MODEL_DIR to REPO_ID with a generated model card; prints the commit sha.

    Reference it afterwards as hf://REPO_ID@COMMIT when building a clone delta.
    """
    from pnc_pack.hub import publish_model

    commit = publish_model(model_dir, repo_id, private=private, message=message, branch=branch)
    _echo_commit(repo_id, branch, commit, as_json)
