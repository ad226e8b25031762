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
- the same ``/api/datasets/...`` routes for dataset repos (held as ``datasets/ORG/NAME``; create with
  ``type: dataset``) and ``/datasets/{id}/resolve/...``
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

Standalone, to try the Hub commands without the real Hub (README, "Publishing"): ``python -m tests.hub.server
--port 8080`` prints the ``export HF_ENDPOINT=...`` and ``HF_TOKEN`` lines to use, then serves until Ctrl-C.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from tests.hub import server_repo as store

HttpError, Repo, Commit, git_blob_sha1 = store.HttpError, store.Repo, store.Commit, store.git_blob_sha1
LOOPBACK = "127.0.0.1"


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
        return store.new_commit(repo, parent, files, message, self._counter)

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        with self.lock:
            repo = Repo(repo_id, private)
            attrs = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
            first = self._new_commit(repo, None, {".gitattributes": attrs}, "initial commit")
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
            raise HttpError(401, msg, headers={"X-Error-Message": msg})
        return tok

    def _require_write(self) -> None:
        hub = self.server_hub
        if hub.tokens is None:
            return
        tok = self._check_token()
        if tok is None:
            msg = "You must be authenticated to write to the Hub"
            raise HttpError(401, msg, headers={"X-Error-Message": msg})
        if not hub.tokens[tok]:
            msg = "You don't have the rights to write with this token (read-only)"
            raise HttpError(403, msg, headers={"X-Error-Message": msg})

    def _repo(self, repo_id: str) -> Repo:
        tok = self._check_token()
        repo = self.server_hub.repos.get(repo_id)
        if repo is None or (repo.private and self.server_hub.tokens is not None and tok is None):
            # like the Hub: anonymous callers get 401 (cannot tell missing from private), callers with a token 404
            raise HttpError(401 if tok is None else 404, "Repository not found", "RepoNotFound",
                           headers={"X-Error-Message": "Repository not found"})
        return repo

    def _dispatch(self, method: str) -> None:
        hub = self.server_hub
        body = self._read_body()  # always, even on unknown routes
        split = urlsplit(self.path)
        parts = [unquote(p) for p in split.path.split("/")[1:]]
        query = parse_qs(split.query)
        try:
            with hub.lock:
                self._route(method, parts, query, body)
        except HttpError as e:
            headers = dict(e.headers)
            if e.code:
                headers["X-Error-Code"] = e.code
            self._json(e.status, e.body if e.body is not None else {"error": e.message}, headers,
                       kind="error")
        except Exception as e:  # a bug in the fake: say so loudly
            self._json(500, {"error": f"fake hub crashed: {type(e).__name__}: {e}"}, kind="error")

    # -- routes --------------------------------------------------------------------------------------------------
    def _route(self, method: str, parts: list[str], query: dict, body: bytes) -> None:
        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml(json.loads(body or b"{}"))
        if parts[:2] in (["api", "models"], ["api", "datasets"]) and len(parts) >= 4:
            repo_id = ("datasets/" if parts[1] == "datasets" else "") + f"{parts[2]}/{parts[3]}"
            rest = parts[4:]
            if not rest and method == "GET":
                repo = self._repo(repo_id)
                return self._model_info(repo, repo.commit("main"), query)
            if len(rest) == 2 and rest[0] == "revision" and method == "GET":
                repo = self._repo(repo_id)
                return self._model_info(repo, repo.commit(rest[1]), query)
            if len(rest) >= 2 and rest[0] == "tree" and method == "GET":
                repo = self._repo(repo_id)
                return self._tree(repo.commit(rest[1]), "/".join(rest[2:]), query)
            if len(rest) == 2 and rest[0] == "paths-info" and method == "POST":
                repo = self._repo(repo_id)
                return self._paths_info(repo.commit(rest[1]), body)
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
        if len(parts) >= 6 and parts[0] == "datasets" and parts[3] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(f"datasets/{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:]), method)
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), method)
        raise HttpError(404, f"no route {method} {self.path}")

    def _create_repo(self, payload: dict) -> None:
        hub = self.server_hub
        self._require_write()
        name, org = payload.get("name"), payload.get("organization")
        if not name:
            raise HttpError(400, "missing name")
        repo_id = f"{org}/{name}" if org else f"user/{name}"
        kind = payload.get("type") or "model"
        if kind not in ("model", "dataset"):
            raise HttpError(400, "this fake hub only holds model and dataset repos")
        if kind == "dataset":  # kept apart from the models as "datasets/ORG/NAME", as the Hub's URLs do
            repo_id = f"datasets/{repo_id}"
        url = f"{hub.url}/{repo_id}"
        if repo_id in hub.repos:
            raise HttpError(409, "You already created this model repo", body={
                "error": "You already created this model repo", "url": url})
        private = payload.get("private")
        if private is None:
            private = payload.get("visibility") == "private"
        hub.create_repo(repo_id, bool(private))
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict) -> None:
        errors = store.yaml_errors(payload.get("content") or "")
        if errors:
            raise HttpError(400, "; ".join(x["message"] for x in errors), body={"errors": errors, "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _file_bytes(self, repo: Repo, commit: Commit, path: str) -> bytes | None:
        data = commit.files.get(path)
        if data is not None and (repo.repo_id, path) in self.server_hub.overrides:
            data = self.server_hub.overrides[(repo.repo_id, path)]
        return data

    def _model_info(self, repo: Repo, commit: Commit, query: dict) -> None:
        self._json(200, store.model_info(repo, commit, _flag(query, "blobs")))

    def _tree(self, commit: Commit, prefix: str, query: dict) -> None:
        self._json(200, store.tree(commit, prefix, _flag(query, "recursive")))

    def _paths_info(self, commit: Commit, body: bytes) -> None:
        if "json" in (self.headers.get("Content-Type") or "").lower():
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        self._json(200, store.paths_info(commit, paths))

    def _preupload(self, repo: Repo, rev: str, payload: dict) -> None:
        self._json(200, store.preupload(repo.branch_head(rev), payload))

    def _do_commit(self, repo: Repo, rev: str, body: bytes) -> None:
        hub = self.server_hub
        head = repo.branch_head(rev)
        files, message = store.apply_commit(head, body)
        c = hub._new_commit(repo, head.sha, files, message)
        repo.branches[rev] = c.sha
        self._json(200, {"success": True, "commitOid": c.sha, "commitUrl": f"{hub.url}/{repo.repo_id}/commit/{c.sha}",
                         "hookOutput": ""})

    def _create_branch(self, repo: Repo, branch: str, payload: dict) -> None:
        if branch in repo.branches:
            raise HttpError(409, f"Reference already exists: refs/heads/{branch}")
        start = repo.commit(payload.get("startingPoint") or "main")
        repo.branches[branch] = start.sha
        self._json(200, {})

    def _create_tag(self, repo: Repo, rev: str, payload: dict) -> None:
        tag = payload.get("tag")
        if not tag:
            raise HttpError(400, "missing tag")
        if tag in repo.tags:
            raise HttpError(409, f"Tag {tag} already exists")
        repo.tags[tag] = repo.commit(rev).sha
        self._json(200, {})

    def _resolve(self, repo_id: str, rev: str, path: str, method: str) -> None:
        repo = self._repo(repo_id)
        commit = repo.commit(rev)
        data = self._file_bytes(repo, commit, path)
        if data is None:
            raise HttpError(404, f"Entry not found: {path}", "EntryNotFound",
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


def _flag(query: dict, name: str) -> bool:
    return query.get(name, ["false"])[0].lower() in ("1", "true")


LOCAL_TOKEN = "hf_local_write_token"


def main(argv=None) -> int:
    """``python -m tests.hub.server [--port N] [--token T]``: serve in the foreground until interrupted."""
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="python -m tests.hub.server",
                                 description="A loopback Hub-compatible server (in memory: gone when stopped).")
    ap.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--token", default=LOCAL_TOKEN, help="the one token that may write (also reads private repos)")
    args = ap.parse_args(argv)
    try:
        hub = FakeHub(tokens={args.token: True}, port=args.port).start()
    except OSError as exc:
        print(f"tests.hub.server: cannot listen on {LOOPBACK}:{args.port}: {exc.strerror or exc}", flush=True)
        return 1
    print(f"export HF_ENDPOINT={hub.url}", flush=True)
    print(f"export HF_TOKEN={args.token}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
