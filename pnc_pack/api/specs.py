"""Specs -> things, torch-free: deltas from paths or ``hf://`` repos, model folders from specs or pinned refs."""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Mapping

from pnc_pack.errors import ModelMismatchError, ModelNotFoundError, UsageError
from pnc_pack.format.delta import CloneDelta
from pnc_pack.refs import ModelRef, ResolvedModel, is_hub_spec

PathLike = str | os.PathLike


def pull(spec: str, **kw):
    """``pnc_pack.pull``: :func:`pnc_pack.hub.pull` (a :class:`~pnc_pack.hub.deltas.PulledDelta`)."""
    from pnc_pack.hub import pull as hub_pull

    return hub_pull(spec, **kw)


def delta_file(spec: PathLike) -> Path:
    """The file a delta spec names: the path itself, or the Hub file downloaded through the cache at the pinned
    commit (not yet checked: whoever reads it checks it)."""
    if is_hub_spec(spec):
        from pnc_pack.hub.deltas import download_delta

        return download_delta(spec)[0]
    if not isinstance(spec, (str, os.PathLike)):
        raise UsageError(f"expected a clone delta path or hf:// spec, got {type(spec).__name__}")
    return Path(spec)


def delta_bytes(spec: PathLike) -> bytes:
    """The bytes of the delta a spec names (size-limited read; a missing file or a folder is a FormatError)."""
    from pnc_pack.format.codec import read_bytes

    return read_bytes(delta_file(spec))


def open_delta(delta, *, trusted_keys: Iterable = (), require_signature: bool = False) -> CloneDelta:
    """A CloneDelta from a CloneDelta, bytes, a file path, or ``hf://ORG/NAME[@REV]`` (pulled through the cache);
    structure, limits, digest and the signature policy (``trusted_keys``, ``require_signature``) are checked."""
    from pnc_pack.format import codec
    from pnc_pack.format.signing import enforce_policy

    if isinstance(delta, CloneDelta):
        d = delta
    elif isinstance(delta, (bytes, bytearray, memoryview)):
        d = codec.loads(bytes(delta))
    elif is_hub_spec(delta):
        d = pull(delta).delta
    elif isinstance(delta, (str, os.PathLike)):
        d = codec.load(delta)
    else:
        raise UsageError(f"expected a clone delta (path, bytes, CloneDelta or hf:// spec), got {type(delta).__name__}")
    enforce_policy(d, trusted_keys=list(trusted_keys), require_signature=require_signature)  # no keys: all valid
    return d


def verify(delta, **kw):
    """``pnc_pack.verify``: :func:`pnc_pack.verification.verify` on the delta any spec names (a report; raises
    only for a spec that names nothing)."""
    from pnc_pack.verification import verify as verify_bytes

    if isinstance(delta, (str, os.PathLike)) and not isinstance(delta, bytes):
        delta = delta_bytes(delta) if is_hub_spec(delta) else delta
    return verify_bytes(delta, **kw)


def resolve_model(spec) -> ResolvedModel:
    """A model spec (folder or ``hf://ORG/NAME[@REV]``, the revision pinned to its commit) -> ResolvedModel."""
    from pnc_pack.hub import resolve_model as hub_resolve

    return spec if isinstance(spec, ResolvedModel) else hub_resolve(spec)


def locate_model(ref: ModelRef, explicit=None, models_dir: PathLike | None = None) -> Path:
    """The folder holding ``ref``'s files: ``explicit`` (a folder or ``hf://`` spec), then ``models_dir``, then a
    local reference's stored path, then the Hub cache at the pinned commit (downloaded when missing). Every pin is
    checked (sizes here, sha256 over the exact bytes when loading)."""
    from pnc_pack.clone.apply import find_local

    if is_hub_spec(explicit):
        explicit = resolve_model(explicit).folder
    folder = find_local(ref, explicit, models_dir)
    if folder is None:
        from pnc_pack.hub import fetch_model

        folder = fetch_model(ref)  # downloads at the pinned commit through the Hub cache, checks the pins
    return folder


def locate_models(delta: CloneDelta, *, target=None, source=None,
                  models_dir: PathLike | None = None) -> tuple[Path, list[Path]]:
    """Folders for the target and for each module's source (``source``: one spec, or one per module), every pin
    checked before anything is loaded."""
    from pnc_pack.clone.apply import per_module

    sources = per_module(source, len(delta.modules))
    with model_role("target"):
        target_dir = locate_model(delta.target, target, models_dir)
    out = []
    for i, (m, s) in enumerate(zip(delta.modules, sources)):
        with model_role(f"source of module {i}"):
            out.append(locate_model(m.source, s, models_dir))
    return target_dir, out


@contextmanager
def model_role(role: str | None, folders: Mapping[str, Path] | None = None):
    """Prefix a ModelMismatchError / ModelNotFoundError raised inside with the role of the model it is about
    ('target: model folder models/a does not match the pinned model ...'): ``role``, or with ``folders``
    (role -> folder) the role whose folder holds the file named by the error."""
    try:
        yield
    except (ModelMismatchError, ModelNotFoundError) as exc:
        if folders is not None:
            where = Path(getattr(exc, "file", "") or "/").resolve()
            role = next((r for r, f in folders.items() if Path(f).resolve() in (where, where.parent)), None)
        if role is None:
            raise
        named = copy.copy(exc)
        named.args = (f"{role}: {exc}",)
        raise named from None


def pinned_model(ref: ModelRef, explicit=None, models_dir: PathLike | None = None) -> ResolvedModel:
    """The folder of a delta's pinned ref (as :func:`locate_model`), with the ref itself: what the builder takes to
    build against exactly the model a delta was built on."""
    spec = str(ref.path) if ref.is_local else f"hf://{ref.repo_id}@{ref.commit}"
    return ResolvedModel(locate_model(ref, explicit, models_dir), ref, spec)
