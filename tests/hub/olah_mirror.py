"""A real, independent Hub-compatible server for the tests: olah (``olah-cli``), serving git repos we write.

olah is read-only: a "push" here is a git commit in ``MIRRORS/models/ORG/REPO`` (olah re-reads the repositories on
every request). Its quirks (see ENVIRONMENT.md) are handled here: ``model_info`` without a revision needs
``CACHE/api/models/ORG/REPO/revision/main/meta_head.json`` (written after every commit; pnc-pack itself always
asks with an explicit revision, so it does not depend on it), and every missing repo, revision or file is a 401
RepositoryNotFound. Upstream is a dead loopback port and ``offline = true``: nothing can leak.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "pnc-pack tests", "GIT_AUTHOR_EMAIL": "tests@pnc-pack.invalid",
           "GIT_COMMITTER_NAME": "pnc-pack tests", "GIT_COMMITTER_EMAIL": "tests@pnc-pack.invalid",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


class OlahUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OlahServer:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.mirrors = self.root / "mirrors"
        self.cache = self.root / "cache"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = self.root / "olah.log"
        self._n = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _olah_cli(self) -> str:
        exe = Path(sys.executable).parent / "olah-cli"
        found = str(exe) if exe.exists() else shutil.which("olah-cli")
        if not found:
            raise OlahUnavailable("olah-cli not found (pip install olah)")
        return found

    def start(self, timeout: float = 30.0) -> None:
        self.mirrors.mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.toml"
        config.write_text(f"""[basic]
host = "127.0.0.1"
port = {self.port}
repos-path = "{self.cache}"
mirrors-path = ["{self.mirrors}"]
hf-scheme = "http"
hf-netloc = "127.0.0.1:9"
hf-lfs-netloc = "127.0.0.1:9"
mirror-scheme = "http"
mirror-netloc = "127.0.0.1:{self.port}"
mirror-lfs-netloc = "127.0.0.1:{self.port}"
[accessibility]
offline = true
""")
        probe_commit = self.commit("probe/ready", {"README.md": b"probe\n"})
        log = open(self.log, "wb")
        self.proc = subprocess.Popen([self._olah_cli(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.root)
        deadline = time.monotonic() + timeout
        url = f"{self.url}/api/models/probe/ready/revision/main"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise OlahUnavailable(f"olah-cli exited with {self.proc.returncode}: {self.log.read_text()[-1500:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if json.loads(r.read()).get("sha") == probe_commit:
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.1)
        self.stop()
        raise OlahUnavailable(f"olah did not answer {url} within {timeout} s: {self.log.read_text()[-1500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def _git(self, repo: Path, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def commit(self, repo_id: str, files: dict[str, bytes], message: str = "update") -> str:
        """Write ``files`` into the git repo of ``repo_id`` (created on first use) and commit; returns the sha."""
        repo = self.mirrors / "models" / repo_id
        if not (repo / ".git").exists():
            repo.mkdir(parents=True, exist_ok=True)
            self._git(repo, "init", "-q", "-b", "main")
        for name, data in files.items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_bytes(data)
        self._git(repo, "add", "-A")
        self._n += 1
        date = f"2026-01-01T00:00:{self._n % 60:02d}+00:00"
        env_date = ["-c", "commit.gpgsign=false"]
        subprocess.run(["git", *env_date, "commit", "-q", "-m", message, "--date", date], cwd=repo,
                       env={**os.environ, **GIT_ENV, "GIT_COMMITTER_DATE": date}, check=True, capture_output=True)
        sha = self._git(repo, "rev-parse", "HEAD")
        meta = self.cache / "api" / "models" / repo_id / "revision" / "main"
        meta.mkdir(parents=True, exist_ok=True)
        (meta / "meta_head.json").write_text(json.dumps(
            {"sha": sha, "lastModified": _dt.datetime.now(_dt.timezone.utc).isoformat()}))
        return sha

    def tag(self, repo_id: str, tag: str) -> None:
        self._git(self.mirrors / "models" / repo_id, "tag", tag)
