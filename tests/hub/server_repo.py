"""The repository side of the fake Hub (tests/hub/server.py): commits, refs, and the JSON the Hub answers with.

Pure data and functions, no HTTP: repositories live in memory with their whole history, so a commit sha (full or
a unique 7+ hex prefix), a branch or a tag all resolve. Errors are :class:`HttpError` (status, message, the Hub's
``X-Error-Code``), which the server turns into a response.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field

PARENT_MOVED = "A commit has happened since. Please refresh and try again."


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: what the Hub sends as ETag for a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def iso(d: _dt.datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, body=None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}
        self.body = body


@dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict[str, bytes]
    message: str
    date: _dt.datetime


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc))

    def resolve(self, rev: str) -> Commit | None:
        if rev in self.branches:
            return self.commits[self.branches[rev]]
        if rev in self.tags:
            return self.commits[self.tags[rev]]
        rev = rev.lower()
        if len(rev) == 40 and rev in self.commits:
            return self.commits[rev]
        if 7 <= len(rev) < 40 and all(c in "0123456789abcdef" for c in rev):
            hits = [c for sha, c in self.commits.items() if sha.startswith(rev)]
            if len(hits) == 1:
                return hits[0]
        return None

    def commit(self, rev: str) -> Commit:
        c = self.resolve(rev)
        if c is None:
            raise HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return c

    def branch_head(self, branch: str) -> Commit:
        if branch not in self.branches:
            raise HttpError(404, f"Invalid rev id: {branch} (commits go to a branch)", "RevisionNotFound")
        return self.commits[self.branches[branch]]


def new_commit(repo: Repo, parent: str | None, files: dict[str, bytes], message: str, counter: int) -> Commit:
    h = hashlib.sha1(f"{repo.repo_id}\n{parent}\n{message}\n{counter}\n".encode())
    for path in sorted(files):
        h.update(f"{path} {git_blob_sha1(files[path])}\n".encode())
    c = Commit(h.hexdigest(), parent, files, message, _dt.datetime.now(_dt.timezone.utc))
    repo.commits[c.sha] = c
    return c


# -- what the Hub answers ------------------------------------------------------------------------------------------
def model_info(repo: Repo, commit: Commit, blobs: bool) -> dict:
    siblings = []
    for path in sorted(commit.files):
        s = {"rfilename": path}
        if blobs:
            s.update(size=len(commit.files[path]), blobId=git_blob_sha1(commit.files[path]))
        siblings.append(s)
    return {"_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
            "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit.sha,
            "lastModified": iso(commit.date), "createdAt": iso(repo.created), "private": repo.private,
            "gated": False, "disabled": False, "tags": [], "siblings": siblings}


def entry(path: str, data: bytes) -> dict:
    return {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}


def tree(commit: Commit, prefix: str, recursive: bool) -> list:
    prefix = prefix.strip("/")
    out, dirs = [], set()
    for path in sorted(commit.files):
        if prefix and not path.startswith(prefix + "/"):
            continue
        rel = path[len(prefix) + 1:] if prefix else path
        if "/" in rel and not recursive:
            d = (prefix + "/" if prefix else "") + rel.split("/")[0]
            if d not in dirs:
                dirs.add(d)
                out.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d})
            continue
        out.append(entry(path, commit.files[path]))
    if prefix and not out:
        raise HttpError(404, f"path {prefix} not found", "EntryNotFound")
    return out


def paths_info(commit: Commit, paths: list[str]) -> list:
    return [entry(p, commit.files[p]) for p in paths if p in commit.files]


def preupload(head: Commit, payload: dict) -> dict:
    """Every file ``regular``: contents then travel inline in the commit, no LFS / Xet upload is needed."""
    files = []
    for f in payload.get("files", []):
        existing = head.files.get(f.get("path"))
        files.append({"path": f.get("path"), "uploadMode": "regular", "shouldIgnore": False,
                      "oid": git_blob_sha1(existing) if existing is not None else None})
    return {"files": files, "commitOid": head.sha}


def apply_commit(head: Commit, body: bytes) -> tuple[dict[str, bytes], str]:
    """NDJSON commit (header, then file / deletedFile / deletedFolder lines) on top of ``head``.

    Returns (new file set, message). The header's ``parentCommit`` (full or short) must be ``head``: else 412, as
    the Hub answers when a branch moved under a commit.
    """
    lines = [json.loads(x) for x in body.splitlines() if x.strip()]
    if not lines or lines[0].get("key") != "header":
        raise HttpError(400, "the first NDJSON line must be the header")
    header = lines[0]["value"]
    parent = header.get("parentCommit")
    if parent is not None and not head.sha.startswith(str(parent).lower()):
        raise HttpError(412, PARENT_MOVED, headers={"X-Error-Message": PARENT_MOVED})
    files = dict(head.files)
    for line in lines[1:]:
        key, value = line.get("key"), line.get("value") or {}
        path = value.get("path", "")
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise HttpError(400, f"bad path {path!r}")
        if key == "file":
            if value.get("encoding") != "base64":
                raise HttpError(400, "only base64 file contents are supported")
            files[path] = base64.b64decode(value["content"])
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise HttpError(404, f"file {path} not found", "EntryNotFound")
        elif key == "deletedFolder":
            for p in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
                del files[p]
        else:
            raise HttpError(400, f"unsupported commit operation {key!r} (this fake hub asks for regular uploads)")
    message = header.get("summary") or ""
    if header.get("description"):
        message += "\n\n" + header["description"]
    return files, message


def yaml_errors(content: str) -> list[dict]:
    """What /api/validate-yaml objects to in a README's metadata block (a subset of the Hub's checks)."""
    if not content.startswith("---"):
        return []
    end = content.find("\n---", 3)
    if end < 0:
        return [{"message": "metadata block is not closed"}]
    try:
        import yaml
    except ImportError:
        return []
    try:
        meta = yaml.safe_load(content[3:end])
    except yaml.YAMLError as e:
        return [{"message": f"invalid YAML: {' '.join(str(e).split())}"}]
    if meta is None:
        return []
    if not isinstance(meta, dict):
        return [{"message": "metadata must be a mapping"}]
    bm = meta.get("base_model")
    if bm is not None and not (isinstance(bm, str) or (isinstance(bm, list) and all(isinstance(x, str) for x in bm))):
        return [{"message": '"base_model" must be a string or a list of strings'}]
    return []
