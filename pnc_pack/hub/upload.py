"""One commit of a few files to a Hub branch, guarded against concurrent pushes.

Everything pnc-pack uploads (a delta and its card; a model folder and its card) goes in ONE ``create_commit``
whose ``parent_commit`` is the branch head read just before (or the one the caller names). If another push lands
in between, the Hub refuses the commit (412) instead of silently stacking ours on a head we never saw, and we raise
:class:`HubConflictError` saying so. Files are sent as the Hub asks (inline for small files; LFS/Xet otherwise:
huggingface_hub decides from the preupload answer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pnc_pack.errors import HubNotFoundError, ReferenceError
from pnc_pack.hub.client import (
    DEFAULT_BRANCH,
    HubConflictError,
    HubSettings,
    api,
    hub_errors,
    is_commit,
    user_repo_id,
)


def commit_files(s: HubSettings, repo_id: str, files: Mapping[str, bytes | Path], *, message: str,
                 branch: str | None = None, private: bool = False, parent_commit: str | None = None) -> str:
    """Create the repo if needed, then commit ``files`` (path in repo -> bytes or local file) to ``branch``.

    Returns the new commit's 40-hex sha (or the head's, when nothing changed: the Hub makes no empty commits).
    """
    from huggingface_hub import CommitOperationAdd

    user_repo_id(repo_id)
    branch = branch or DEFAULT_BRANCH
    if parent_commit is not None and not (isinstance(parent_commit, str) and 7 <= len(parent_commit) <= 40
                                          and all(c in "0123456789abcdef" for c in parent_commit)):
        raise ReferenceError(f"bad parent commit {parent_commit!r}: expected a (short) hex commit sha")
    hf = api(s, f"pushing to {repo_id}@{branch}")
    with hub_errors(s, f"creating repository {repo_id}", repo_id=repo_id):
        hf.create_repo(repo_id, private=True if private else None, exist_ok=True, repo_type="model")
    if parent_commit is None:
        parent_commit = _branch_head(s, hf, repo_id, branch)
    ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=data if isinstance(data, bytes) else str(data))
           for name, data in files.items()]
    try:
        with hub_errors(s, f"pushing to {repo_id}@{branch}", repo_id=repo_id, revision=branch):
            info = hf.create_commit(repo_id, ops, commit_message=message, revision=branch,
                                    parent_commit=parent_commit, repo_type="model")
    except HubConflictError:
        raise HubConflictError(
            f"push to {repo_id}@{branch} refused: the branch moved since its head {parent_commit[:10]} was read "
            "(another push landed first); pull the new head, check it, and push again") from None
    oid = getattr(info, "oid", None)
    if not is_commit(oid):
        raise HubConflictError(f"push to {repo_id}@{branch}: the Hub did not return a commit sha (got {oid!r})")
    return oid


def _branch_head(s: HubSettings, hf, repo_id: str, branch: str) -> str:
    """The commit ``branch`` points to now; a missing non-main branch is created from main first."""
    try:
        with hub_errors(s, f"reading the head of {repo_id}@{branch}", repo_id=repo_id, revision=branch):
            return hf.model_info(repo_id, revision=branch).sha
    except HubNotFoundError:
        if branch == DEFAULT_BRANCH:
            raise
    with hub_errors(s, f"creating branch {branch} of {repo_id}", repo_id=repo_id, revision=branch):
        hf.create_branch(repo_id, branch=branch, exist_ok=True, repo_type="model")
        return hf.model_info(repo_id, revision=branch).sha
