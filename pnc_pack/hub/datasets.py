"""Dataset repositories on the Hub (``hf:ORG/NAME[@REV]``): pinned to a commit, fetched through the Hub cache.

The parquet files of the repository at that commit are downloaded (``snapshot_download``, ``*.parquet`` only, so no
script or other file of the repository is fetched; offline mode reads the cache) and hashed; the dataset's name,
which the delta's provenance records, pins the commit and a sha256 over the sorted ``path sha256`` lines of the
files (each file's own digest: :func:`file_digests`), and the dataset carries the commit and every file's
sha256, which a delta's provenance records as ``data_files``. The data room reads the folder (``data/parquet.py``);
the CLI hands :func:`fetch_dataset` to it (``data.specs.set_hub_resolver``; data/ never imports hub/).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pnc_pack.errors import DataError
from pnc_pack.hub.client import LIBRARY_NAME, hub_errors, is_commit, settings
from pnc_pack.refs import REPO_ID_RE, sha256_file


def file_digests(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of the parquet files of a fetched dataset snapshot."""
    return {p.relative_to(folder).as_posix(): sha256_file(p).sha256 for p in sorted(folder.rglob("*.parquet"))}


def fetch_dataset(arg: str) -> tuple[Path, str, dict]:
    """``ORG/NAME[@REV]`` -> (snapshot folder at the pinned commit, ``hf:ORG/NAME@COMMIT#sha256=...``,
    ``{"repo", "commit", "files": {path: sha256}}``: what a delta's provenance records of the data)."""
    repo_id, _, revision = arg.partition("@")
    if not REPO_ID_RE.fullmatch(repo_id) or (revision and len(revision) > 256):
        raise DataError(f"bad dataset spec 'hf:{arg}': expected hf:ORG/NAME[@REVISION]")
    s = settings()
    from huggingface_hub import snapshot_download

    with hub_errors(s, f"dataset {repo_id}@{revision or 'main'}", repo_id=repo_id, revision=revision or "main"):
        path = Path(snapshot_download(
            repo_id, repo_type="dataset", revision=revision or "main", allow_patterns=["*.parquet"],
            cache_dir=str(s.cache_dir), endpoint=s.endpoint, token=s.token_arg, local_files_only=s.offline,
            library_name=LIBRARY_NAME))
    commit = path.name
    if not is_commit(commit):
        raise DataError(f"hf:{arg}: the Hub cache did not give a commit for this dataset (got {commit!r})")
    digests = file_digests(path)
    if not digests:
        raise DataError(f"hf:{arg}: the repository holds no parquet files at {commit[:10]}")
    lines = "".join(f"{name} {sha}\n" for name, sha in sorted(digests.items()))
    pinned = f"hf:{repo_id}@{commit}#sha256={hashlib.sha256(lines.encode()).hexdigest()}"
    return path, pinned, {"repo": repo_id, "commit": commit, "files": dict(sorted(digests.items()))}

