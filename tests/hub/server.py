"""A small Hugging Face Hub-compatible HTTP server for tests and benchmarks (stdlib only, loopback only).

The real ``huggingface_hub`` client talks to it unchanged (``HF_ENDPOINT=http://127.0.0.1:PORT``). It implements
exactly the routes the client uses for what pnc-pack does (see /work/shared/ENVIRONMENT.md):

- ``POST /api/repos/create`` (409 with ``url`` when the repo exists)
- ``POST /api/models/{id}/preupload/{rev}`` (every file ``regular``: contents travel inline, no LFS/Xet)
- ``POST /api/models/{id}/commit/{rev}`` (NDJSON; ``parentCommit`` checked -> 412 when the branch moved)
- ``POST /api/validate-yaml``
- ``GET /api/models/{id}[/revision/{rev}]`` (sha, siblings, lastModified, private)
- ``GET /api/models/{id}/tree/{rev}[/path]``, ``POST /api/models/{id}/paths-info/{rev}``
- ``POST /api/models/{id}/branch/{branch}``, ``POST /api/models/{id}/tag/{rev}``, ``GET /api/models/{id}/refs``
- ``HEAD``/``GET /{id}/resolve/{rev}/{path}`` with ``ETag`` (the git blob sha1, as the Hub sends for regular
  files), ``X-Repo-Commit`` and ``Content-Length``; 404s carry ``X-Error-Code`` ``RepoNotFound`` /
  ``RevisionNotFound`` / ``EntryNotFound`` like the Hub.

Repositories live in memory with their whole commit history, so any commit sha (full or a 7+ hex prefix), branch or
tag resolves. Tokens are optional: with ``tokens`` set, writes need a token with write access (else 401/403), a
token the server does not know is refused with 401 "Invalid credentials in Authorization header" (the Hub's exact
message), and private repositories answer 401 RepoNotFound to anonymous readers, as the Hub does.

Test hooks: ``override_file(repo_id, path, data)`` makes the server serve other bytes for a file at every revision
(a broken or malicious mirror); ``stats`` counts requests and body bytes sent per route kind (the benchmark reads
it). The request body is always read in full, even on unknown routes, so keep-alive connections stay in sync.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LOOPBACK = "127.0.0.1"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: what the Hub sends as ETag for a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


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


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, body=None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}
        self.body = body


def _iso(d: _dt.datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeHub:
    """The server. ``with FakeHub() as hub: hub.url`` -> ``http://127.0.0.1:PORT``."""

    def __init__(self, tokens: dict[str, bool] | None = None, port: int = 0):
        # tokens: token -> may write. None: open server, anyone may read and write public repos.
        self.tokens = dict(tokens) if tokens is not None else None
        self.repos: dict[str, Repo] = {}
        self.overrides: dict[tuple[str, str], bytes] = {}
        self.stats: dict[str, list[int]] = {}  # kind -> [requests, body bytes sent]
        self.lock = threading.RLock()
        self._counter = 0
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._httpd = ThreadingHTTPServer((LOOPBACK, self._port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # -- test hooks --------------------------------------------------------------------------------------------
    def override_file(self, repo_id: str, path: str, data: bytes | None) -> None:
        with self.lock:
            if data is None:
                self.overrides.pop((repo_id, path), None)
            else:
                self.overrides[(repo_id, path)] = data

    def reset_stats(self) -> None:
        with self.lock:
            self.stats.clear()

    def bytes_sent(self, kind: str = "resolve-get") -> int:
        with self.lock:
            return self.stats.get(kind, [0, 0])[1]

    def head(self, repo_id: str, branch: str = "main") -> str:
        with self.lock:
            return self.repos[repo_id].branches[branch]

    def create_tag(self, repo_id: str, tag: str, rev: str = "main") -> str:
        with self.lock:
            repo = self.repos[repo_id]
            c = repo.resolve(rev)
            repo.tags[tag] = c.sha
            return c.sha

    # -- repository operations (called with the lock held) -----------------------------------------------------
    def _new_commit(self, repo: Repo, parent: str | None, files: dict[str, bytes], message: str) -> Commit:
        self._counter += 1
        h = hashlib.sha1()
        h.update(f"{repo.repo_id}\n{parent}\n{message}\n{self._counter}\n".encode())
        for path in sorted(files):
            h.update(f"{path} {git_blob_sha1(files[path])}\n".encode())
        c = Commit(h.hexdigest(), parent, files, message, _dt.datetime.now(_dt.timezone.utc))
        repo.commits[c.sha] = c
        return c

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        with self.lock:
            repo = Repo(repo_id, private)
            first = self._new_commit(repo, None, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                                     "initial commit")
            repo.branches["main"] = first.sha
            self.repos[repo_id] = repo
            return repo


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_hub: FakeHub

    def log_message(self, format, *args):  # quiet
        pass

    # every verb goes through one dispatcher
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, kind: str = "api",
              content_type: str = "application/json") -> None:
        self.send_response(status)
        hdrs = {"Content-Type": content_type, "Content-Length": str(len(body))}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        sent = 0
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            sent = len(body)
        hub = self.server_hub
        with hub.lock:
            s = hub.stats.setdefault(kind, [0, 0])
            s[0] += 1
            s[1] += sent

    def _json(self, status: int, obj, headers: dict | None = None, kind: str = "api") -> None:
        self._send(status, json.dumps(obj).encode(), headers, kind)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _check_token(self) -> str | None:
        """The caller's token when the server knows it; raises 401 for a token it does not know."""
        hub = self.server_hub
        tok = self._token()
        if tok is None or hub.tokens is None:
            return tok
        if tok not in hub.tokens:
            msg = "Invalid credentials in Authorization header"
            raise HubError(401, msg, headers={"X-Error-Message": msg})
        return tok

    def _require_write(self) -> None:
        hub = self.server_hub
        if hub.tokens is None:
            return
        tok = self._check_token()
        if tok is None:
            msg = "You must be authenticated to write to the Hub"
            raise HubError(401, msg, headers={"X-Error-Message": msg})
        if not hub.tokens[tok]:
            msg = "You don't have the rights to write with this token (read-only)"
            raise HubError(403, msg, headers={"X-Error-Message": msg})

    def _repo(self, repo_id: str) -> Repo:
        tok = self._check_token()
        repo = self.server_hub.repos.get(repo_id)
        if repo is None or (repo.private and self.server_hub.tokens is not None and tok is None):
            # like the Hub: anonymous callers get 401 (cannot tell missing from private), callers with a token 404
            raise HubError(401 if tok is None else 404, "Repository not found", "RepoNotFound",
                           headers={"X-Error-Message": "Repository not found"})
        return repo

    def _commit(self, repo: Repo, rev: str) -> Commit:
        c = repo.resolve(rev)
        if c is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return c

    def _dispatch(self, method: str) -> None:
        hub = self.server_hub
        body = self._read_body()  # always, even on unknown routes
        split = urlsplit(self.path)
        parts = [unquote(p) for p in split.path.split("/")[1:]]
        query = parse_qs(split.query)
        try:
            with hub.lock:
                self._route(method, parts, query, body)
        except HubError as e:
            headers = dict(e.headers)
            if e.code:
                headers["X-Error-Code"] = e.code
            self._json(e.status, e.body if e.body is not None else {"error": e.message}, headers,
                       kind="error")
        except Exception as e:  # a bug in the fake: say so loudly
            self._json(500, {"error": f"fake hub crashed: {type(e).__name__}: {e}"}, kind="error")

    # -- routes --------------------------------------------------------------------------------------------------
    def _route(self, method: str, parts: list[str], query: dict, body: bytes) -> None:
        hub = self.server_hub
        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml(json.loads(body or b"{}"))
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id = f"{parts[2]}/{parts[3]}"
            rest = parts[4:]
            if not rest and method == "GET":
                repo = self._repo(repo_id)
                return self._model_info(repo, self._commit(repo, "main"), query)
            if len(rest) == 2 and rest[0] == "revision" and method == "GET":
                repo = self._repo(repo_id)
                return self._model_info(repo, self._commit(repo, rest[1]), query)
            if len(rest) >= 2 and rest[0] == "tree" and method == "GET":
                repo = self._repo(repo_id)
                return self._tree(self._commit(repo, rest[1]), "/".join(rest[2:]), query)
            if len(rest) == 2 and rest[0] == "paths-info" and method == "POST":
                repo = self._repo(repo_id)
                return self._paths_info(self._commit(repo, rest[1]), body)
            if len(rest) == 2 and rest[0] == "preupload" and method == "POST":
                self._require_write()
                repo = self._repo(repo_id)
                return self._preupload(repo, rest[1], json.loads(body or b"{}"))
            if len(rest) == 2 and rest[0] == "commit" and method == "POST":
                self._require_write()
                repo = self._repo(repo_id)
                return self._do_commit(repo, rest[1], body)
            if len(rest) == 2 and rest[0] == "branch" and method == "POST":
                self._require_write()
                repo = self._repo(repo_id)
                return self._create_branch(repo, rest[1], json.loads(body or b"{}"))
            if len(rest) == 2 and rest[0] == "tag" and method == "POST":
                self._require_write()
                repo = self._repo(repo_id)
                return self._create_tag(repo, rest[1], json.loads(body or b"{}"))
            if rest == ["refs"] and method == "GET":
                repo = self._repo(repo_id)
                return self._json(200, {
                    "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s}
                                 for n, s in sorted(repo.branches.items())],
                    "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s}
                             for n, s in sorted(repo.tags.items())],
                    "converts": [],
                })
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), method)
        raise HubError(404, f"no route {method} {self.path}")

    def _create_repo(self, payload: dict) -> None:
        hub = self.server_hub
        self._require_write()
        name, org = payload.get("name"), payload.get("organization")
        if not name:
            raise HubError(400, "missing name")
        repo_id = f"{org}/{name}" if org else f"user/{name}"
        url = f"{hub.url}/{repo_id}"
        if (payload.get("type") or "model") != "model":
            raise HubError(400, "this fake hub only holds model repos")
        if repo_id in hub.repos:
            raise HubError(409, "You already created this model repo", body={
                "error": "You already created this model repo", "url": url})
        private = payload.get("private")
        if private is None:
            private = payload.get("visibility") == "private"
        hub.create_repo(repo_id, bool(private))
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content") or ""
        errors = []
        if content.startswith("---"):
            end = content.find("\n---", 3)
            if end < 0:
                errors.append({"message": "metadata block is not closed"})
            else:
                try:
                    import yaml

                    meta = yaml.safe_load(content[3:end])
                    if meta is not None and not isinstance(meta, dict):
                        errors.append({"message": "metadata must be a mapping"})
                    elif meta:
                        bm = meta.get("base_model")
                        if bm is not None and not (isinstance(bm, str) or (
                                isinstance(bm, list) and all(isinstance(x, str) for x in bm))):
                            errors.append({"message": '"base_model" must be a string or a list of strings'})
                except ImportError:
                    pass
                except Exception as e:  # yaml.YAMLError
                    errors.append({"message": f"invalid YAML: {e}"})
        if errors:
            raise HubError(400, "; ".join(x["message"] for x in errors), body={"errors": errors, "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _file_bytes(self, repo: Repo, commit: Commit, path: str) -> bytes | None:
        data = commit.files.get(path)
        if data is not None and (repo.repo_id, path) in self.server_hub.overrides:
            data = self.server_hub.overrides[(repo.repo_id, path)]
        return data

    def _model_info(self, repo: Repo, commit: Commit, query: dict) -> None:
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path in sorted(commit.files):
            s = {"rfilename": path}
            if blobs:
                data = commit.files[path]
                s.update(size=len(data), blobId=git_blob_sha1(data))
            siblings.append(s)
        self._json(200, {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.sha,
            "lastModified": _iso(commit.date),
            "createdAt": _iso(repo.created),
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "tags": [],
            "siblings": siblings,
        })

    def _entry(self, path: str, data: bytes) -> dict:
        return {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}

    def _tree(self, commit: Commit, prefix: str, query: dict) -> None:
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
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
                    out.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0,
                                "path": d})
                continue
            out.append(self._entry(path, commit.files[path]))
        if prefix and not out:
            raise HubError(404, f"path {prefix} not found", "EntryNotFound")
        self._json(200, out)

    def _paths_info(self, commit: Commit, body: bytes) -> None:
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        out = [self._entry(p, commit.files[p]) for p in paths if p in commit.files]
        self._json(200, out)

    def _branch_head(self, repo: Repo, rev: str) -> Commit:
        if rev not in repo.branches:
            raise HubError(404, f"Invalid rev id: {rev} (commits go to a branch)", "RevisionNotFound")
        return repo.commits[repo.branches[rev]]

    def _preupload(self, repo: Repo, rev: str, payload: dict) -> None:
        head = self._branch_head(repo, rev)
        files = []
        for f in payload.get("files", []):
            path = f.get("path")
            existing = head.files.get(path)
            files.append({"path": path, "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_blob_sha1(existing) if existing is not None else None})
        self._json(200, {"files": files, "commitOid": head.sha})

    def _do_commit(self, repo: Repo, rev: str, body: bytes) -> None:
        hub = self.server_hub
        head = self._branch_head(repo, rev)
        lines = [json.loads(x) for x in body.splitlines() if x.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first NDJSON line must be the header")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent is not None and not head.sha.startswith(str(parent).lower()):
            raise HubError(412, "A commit has happened since. Please refresh and try again.",
                           headers={"X-Error-Message": "A commit has happened since. Please refresh and try again."})
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value") or {}
            path = value.get("path", "")
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise HubError(400, f"bad path {path!r}")
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "only base64 file contents are supported")
                files[path] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"file {path} not found", "EntryNotFound")
            elif key == "deletedFolder":
                for p in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
                    del files[p]
            else:
                raise HubError(400, f"unsupported commit operation {key!r} (this fake hub asks for regular uploads)")
        message = header.get("summary") or ""
        if header.get("description"):
            message += "\n\n" + header["description"]
        c = hub._new_commit(repo, head.sha, files, message)
        repo.branches[rev] = c.sha
        self._json(200, {"success": True, "commitOid": c.sha, "commitUrl": f"{hub.url}/{repo.repo_id}/commit/{c.sha}",
                         "hookOutput": ""})

    def _create_branch(self, repo: Repo, branch: str, payload: dict) -> None:
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = self._commit(repo, payload.get("startingPoint") or "main")
        repo.branches[branch] = start.sha
        self._json(200, {})

    def _create_tag(self, repo: Repo, rev: str, payload: dict) -> None:
        tag = payload.get("tag")
        if not tag:
            raise HubError(400, "missing tag")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = self._commit(repo, rev).sha
        self._json(200, {})

    def _resolve(self, repo_id: str, rev: str, path: str, method: str) -> None:
        repo = self._repo(repo_id)
        commit = self._commit(repo, rev)
        data = self._file_bytes(repo, commit, path)
        if data is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound",
                           headers={"X-Repo-Commit": commit.sha, "X-Error-Message": "Entry not found"})
        headers = {"ETag": f'"{git_blob_sha1(data)}"', "X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and method == "GET":
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data = data[start:end + 1]
            status = 206
        self._send(status, data, headers, kind="resolve-get" if method == "GET" else "resolve-head",
                   content_type="application/octet-stream")
