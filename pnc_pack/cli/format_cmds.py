"""``pnc-pack inspect | verify | keygen | sign``: thin commands over pnc_pack.format and pnc_pack.verify.

None of these imports torch (nor rich): they must start fast (``pnc-pack verify`` on a 1 MB delta is measured by
tools/bench/format.py).
"""

from __future__ import annotations

import click

from pnc_pack.cli._common import check_outputs, emit_json, error_object, force_option, json_option, one_line


@click.command("inspect")
@click.argument("delta")
@json_option
def inspect_cmd(delta, as_json):
    """Show what the clone delta DELTA (a file or hf://REPO[@REV]) holds: target, cloned modules, classes, masks,
    tensors, metrics, sizes."""
    from pnc_pack.api.specs import delta_bytes
    from pnc_pack.format.codec import decode
    from pnc_pack.format.summary import render_text, summarize

    d, info = decode(delta_bytes(delta))
    s = summarize(d, info)
    if as_json:
        emit_json(s)
    else:
        click.echo(render_text(s))


@click.command("verify")
@click.argument("delta")
@click.option("--trusted-key", "trusted", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A trusted public key (NAME.pub from keygen); a valid signature by one of them is required.")
@click.option("--require-signature", is_flag=True, help="Fail (exit 4) when the delta carries no valid signature.")
@click.option("--model", "models", multiple=True, metavar="REF=FOLDER",
              help="Check a model folder's files against a reference's pins; REF is 'target', 'source:<i>' or the "
                   "ref's repo id or path. Repeatable.")
@json_option
def verify_cmd(delta, trusted, require_signature, models, as_json):
    """Check the clone delta DELTA (a file or hf://REPO[@REV]): structure, limits, digest, signatures, pinned
    references.

    Exit 0 when everything checked holds, 3 when the file is malformed or tampered with, 4 when the signature
    policy fails, 5 when a model reference is malformed or a model folder does not match its pins.
    """
    from pnc_pack.api.specs import verify
    from pnc_pack.format.signing import load_public_key

    keys = [load_public_key(p) for p in trusted]
    model_map = {}
    for m in models:
        key, sep, folder = m.partition("=")
        if not sep or not key or not folder:
            raise click.BadParameter(f"expected REF=FOLDER, got {m!r}", param_hint="--model")
        model_map[int(key) if key.isascii() and key.isdigit() else key] = folder
    report = verify(delta, trusted_keys=keys, require_signature=require_signature, models=model_map)
    if as_json:
        out = report.to_dict()
        if not report.ok:  # the same error object every --json failure carries (cli._common.run_main)
            exc = report.exception()
            out["error"] = error_object(type(exc).__name__, one_line(str(exc)), exc.exit_code)
        emit_json(out)
    else:
        for c in report.checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        for s in report.signatures:
            click.echo(f"     signature sha256:{s.fingerprint[:16]} {'valid' if s.valid else 'INVALID'}"
                       f"{', trusted' if s.trusted else ''}")
    if not report.ok:
        # run_main prints it as one line on stderr and exits with its exit_code (= report.exit_code).
        report.raise_for_failure()


@click.command("keygen")
@click.option("-o", "--output", "name", required=True, type=click.Path(dir_okay=False),
              help="Private key file NAME (mode 0600); the public key goes to NAME.pub.")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@json_option
def keygen_cmd(name, force, as_json):
    """Create an Ed25519 signing key pair: NAME (private, PKCS#8 PEM, 0600) and NAME.pub (public)."""
    from pnc_pack.format.signing import keygen

    check_outputs(name, f"{name}.pub", force=force)
    priv, pub, fp = keygen(name, overwrite=force)
    if as_json:
        emit_json({"private_key": str(priv), "public_key": str(pub), "fingerprint": fp})
    else:
        click.echo(f"wrote {priv} (private, keep it secret) and {pub} (public)\nfingerprint sha256:{fp}")


@click.command("sign")
@click.argument("delta")
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Private key file (from keygen).")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="Write the signed delta here instead of rewriting DELTA (needed for an hf:// DELTA).")
@force_option
@json_option
def sign_cmd(delta, key_path, output, force, as_json):
    """Add a signature to the clone delta DELTA (a file or hf://REPO[@REV]): an atomic rewrite of the file, or a new
    file with -o. The digest does not change."""
    from pnc_pack.api.specs import delta_bytes
    from pnc_pack.errors import UsageError
    from pnc_pack.format.container import parse
    from pnc_pack.format.signing import fingerprint, load_private_key, public_key_bytes, sign_bytes, sign_file
    from pnc_pack.fsutil import atomic_write
    from pnc_pack.refs import is_hub_spec

    check_outputs(output, force=force)
    key = load_private_key(key_path)
    if output is None:
        if is_hub_spec(delta):
            raise UsageError(f"{delta} is on the Hub and cannot be signed in place: give -o FILE, then push FILE")
        digest, written = sign_file(delta, key), delta
    else:
        signed = sign_bytes(delta_bytes(delta), key)
        atomic_write(output, signed)
        digest, written = parse(signed).digest.hex(), output
    fp = fingerprint(public_key_bytes(key))
    if as_json:
        emit_json({"delta": delta, "output": written, "digest": digest, "fingerprint": fp})
    else:
        click.echo(f"signed {delta} (digest sha256:{digest}) with key sha256:{fp[:16]}"
                   + (f"; wrote {output}" if output else ""))


__all__ = ["inspect_cmd", "verify_cmd", "keygen_cmd", "sign_cmd"]
