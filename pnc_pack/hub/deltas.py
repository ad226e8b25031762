"""Clone deltas on the Hub: push one (with its model card), pull one (verified), load one by spec.

A delta repository holds ``clone.pncd`` and a generated ``README.md``; both go up in ONE commit whose parent is the
branch head read just before, so two people pushing to one branch cannot silently overwrite each other (the second
gets :class:`~pnc_pack.hub.client.HubConflictError`). A delta that references unpublished local models is refused:
a receiver could never fetch them.

Pulling downloads through the Hub cache at a pinned commit (a branch or tag is resolved to its commit first and the
commit is returned), then loads the file with :func:`pnc_pack.format.codec.load` (structure, limits, digest) and
runs :func:`pnc_pack.verification.verify` before anyone uses it. This module is torch-free.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from pnc_pack.errors import PncError, ReferenceError, UsageError
from pnc_pack.format.delta import CloneDelta
from pnc_pack.fsutil import atomic_write
from pnc_pack.hub.card import delta_card
from pnc_pack.hub.client import DEFAULT_BRANCH, download, parse_spec, record_ref, settings, user_repo_id
from pnc_pack.hub.models import pin_revision
from pnc_pack.hub.upload import commit_files

DELTA_FILENAME = "clone.pncd"


@dataclass(frozen=True)
class PulledDelta:
    """What :func:`pull` returns: the file (in the Hub cache, or ``output``), the 40-hex commit it came from, and
    the loaded, verified CloneDelta."""

    path: Path
    commit: str
    delta: CloneDelta


def _publish_hint(delta: CloneDelta) -> str:
    local = [r.path for r in delta.refs if r.is_local]
    return (f"the delta references unpublished local model(s) {', '.join(map(repr, local))}: a receiver could not "
            "fetch them. Publish each with `pnc-pack zoo push MODEL_DIR NAMESPACE/NAME`, then rebuild the delta "
            "with hf://NAMESPACE/NAME references (pnc-pack build pins them to their commits)")


def push(delta_or_path: CloneDelta | str | os.PathLike, repo_id: str, *, branch: str | None = None,
         private: bool = False, message: str | None = None, parent_commit: str | None = None) -> str:
    """Upload a clone delta (object or file) and its card to ``repo_id`` in one commit; returns the commit sha.

    Creates the repository if needed. ``parent_commit`` (default: the branch head read just before) is the head
    the commit must land on; if the branch moved, HubConflictError.
    """
    user_repo_id(repo_id)
    from pnc_pack.format import codec

    if isinstance(delta_or_path, CloneDelta):
        delta = delta_or_path
        data = codec.dumps(delta)
    else:
        path = Path(delta_or_path)
        if not path.is_file():
            raise UsageError(f"delta file {path} not found")
        data = codec.read_bytes(path)  # refuses a file larger than the format's limits before reading it
        delta = codec.loads(data)
    if delta.has_local_refs:
        raise ReferenceError(f"cannot push to {repo_id}: {_publish_hint(delta)}")
    branch = branch or DEFAULT_BRANCH
    s = settings()
    sha = hashlib.sha256(data).hexdigest()
    card = delta_card(delta, repo_id=repo_id, branch=branch, file_name=DELTA_FILENAME, file_sha256=sha,
                      file_size=len(data), endpoint=s.endpoint)
    cloned = [lab.name for lab in delta.labels if lab.model.startswith("source:")]
    msg = message or (f"Add clone delta: {', '.join(cloned[:4]) + (' ...' if len(cloned) > 4 else '') or 'classes'}"
                      f" into {delta.target.short()}")
    return commit_files(s, repo_id, {DELTA_FILENAME: data, "README.md": card.encode("utf-8")}, message=msg,
                        branch=branch, private=private, parent_commit=parent_commit)


def download_delta(spec: str) -> tuple[Path, str]:
    """``[hf://]REPO_ID[@REVISION]``'s clone.pncd in the Hub cache, *unchecked*, and the 40-hex commit it is at
    (for ``pnc-pack verify`` and ``inspect``, which report on whatever the file holds; everyone else: :func:`pull`)."""
    repo_id, revision = parse_spec(spec)
    s = settings()
    commit = pin_revision(s, repo_id, revision, probes=(DELTA_FILENAME,))
    path = download(s, repo_id, DELTA_FILENAME, commit)
    record_ref(s, repo_id, revision, commit)
    return path, commit


def pull(spec: str, *, output: str | os.PathLike | None = None, trusted_keys: Iterable[bytes] = (),
         require_signature: bool = False) -> PulledDelta:
    """Download ``[hf://]REPO_ID[@REVISION]``'s clone.pncd through the Hub cache, load and verify it.

    The file is read once and checked by :func:`pnc_pack.verification.verify` (structure, limits, digest, signatures;
    with ``trusted_keys`` / ``require_signature`` the signature policy too); any failure raises its typed error
    and nothing is written. Returns a :class:`PulledDelta`: the file (``output`` when given, written atomically; a
    folder gets ``clone.pncd`` inside), the 40-hex commit it came from, and the loaded CloneDelta.
    """
    from pnc_pack.format.codec import read_bytes
    from pnc_pack.verification import verify

    path, commit = download_delta(spec)
    repo_id = parse_spec(spec)[0]
    data = read_bytes(path)
    report = verify(data, trusted_keys=trusted_keys, require_signature=require_signature)
    if not report.ok:
        try:
            report.raise_for_failure()
        except PncError as exc:
            raise type(exc)(f"{repo_id}@{commit[:10]} {DELTA_FILENAME}: {exc}") from None
    delta = report.delta
    if output is not None:
        out = Path(output)
        if out.is_dir():
            out = out / DELTA_FILENAME
        atomic_write(out, data)
        path = out
    return PulledDelta(path, commit, delta)
