"""Everything pnc-pack needs from ``huggingface_hub``, in one place: settings, the client, downloads, errors.

Environment, read once per call (never at import)
--------------------------------------------------
``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME``/``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and
``HF_HUB_DISABLE_PROGRESS_BARS`` when it is *imported* (``huggingface_hub.constants``), so a process that changes
them later (a test, a notebook, a server handling several users) would silently keep the old values. Rather than
reloading that module (it is referenced by value from a dozen others), :func:`settings` reads the variables at call
time and every call below passes them explicitly: ``endpoint=``, ``token=``, ``cache_dir=``,
``local_files_only=`` and ``tqdm_class=``. The only thing that cannot be passed is huggingface_hub's own offline
switch in its HTTP session: a process that *imported* it with ``HF_HUB_OFFLINE=1`` stays offline (its requests
raise, which is mapped to :class:`HubOfflineError`). The CLI is a fresh process, so it always sees the current
environment.

The token: ``HF_TOKEN``, else the file ``HF_TOKEN_PATH`` or ``$HF_HOME/token`` (what ``hf auth login`` writes);
none -> requests are anonymous (``token=False``: never a token file found through a stale import-time path).

Errors
------
Every ``huggingface_hub`` / ``httpx`` failure becomes a one-line typed error of :mod:`pnc_pack.errors`:

=============================================  ==========================================================
what happened                                  raised
=============================================  ==========================================================
repo / revision / file not found (404)         :class:`HubNotFoundError`
401 ``RepoNotFound`` and no token was sent     :class:`HubNotFoundError` (see below)
401 / 403 when a token was sent, gated repo    :class:`HubAuthError`
connection refused, DNS failure, timeouts      :class:`HubConnectionError`
offline and not in the cache                   :class:`HubOfflineError` (names repo, revision and file)
412 / 409 on a commit: the branch moved        :class:`HubConflictError` (a :class:`HubError`)
anything else from the Hub                     :class:`HubError`
=============================================  ==========================================================

The Hub answers *anonymous* requests for a private or missing repository with 401 ``RepoNotFound`` (it will not
tell which), and olah answers 401 ``RepoNotFound`` for every missing repo, revision *and* file. With no token
involved that is reported as not-found (exit 11) with a hint that a private repository needs ``HF_TOKEN``; with a
token it is an authorisation failure (exit 12).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pnc_pack.errors import (
    HubAuthError,
    HubConflictError,
    HubConnectionError,
    HubError,
    HubNotFoundError,
    HubOfflineError,
    PncError,
    ReferenceError,
    UsageError,
)
from pnc_pack.refs import COMMIT_RE, check_repo_id

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_BRANCH = "main"
LIBRARY_NAME = "pnc-pack"
_TRUE = {"1", "ON", "YES", "TRUE"}
# A revision in a spec: a branch, tag or (short) commit: path-like segments of [A-Za-z0-9._-] separated by single
# "/" (like "refs/pr/1"); no leading or trailing "/", no "..", no whitespace or control characters.
_REVISION_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9._\-]+(?:/[A-Za-z0-9._\-]+)*$")


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().upper() in _TRUE


@dataclass(frozen=True)
class HubSettings:
    """The Hub configuration of one call, read from the environment by :func:`settings`."""

    endpoint: str
    token: str | None
    cache_dir: Path
    offline: bool
    progress: bool

    @property
    def token_arg(self) -> str | bool:
        """What to pass as ``token=``: the token, or False (anonymous; never an implicit lookup)."""
        return self.token if self.token else False


def _path(value: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(value)))


def settings() -> HubSettings:
    """Read HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE, HF_HUB_DISABLE_PROGRESS_BARS now."""
    env = os.environ
    endpoint = (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    xdg_cache = env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = _path(env.get("HF_HOME") or os.path.join(xdg_cache, "huggingface"))
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    cache_dir = _path(cache) if cache else home / "hub"
    token = (env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or "").strip() or None
    if token is None:
        token_path = _path(env.get("HF_TOKEN_PATH")) if env.get("HF_TOKEN_PATH") else home / "token"
        try:
            token = token_path.read_text(encoding="utf-8").strip() or None
        except OSError:
            token = None
    offline = _is_true(env.get("HF_HUB_OFFLINE")) or _is_true(env.get("TRANSFORMERS_OFFLINE"))
    from pnc_pack.progress import enabled

    progress = enabled() and not _is_true(env.get("HF_HUB_DISABLE_PROGRESS_BARS"))
    return HubSettings(endpoint, token, cache_dir, offline, progress)


# -- specs -------------------------------------------------------------------------------------------------------
def user_repo_id(repo_id) -> str:
    """A repo id the caller gave (a command-line argument, a function's argument): a malformed one is a UsageError
    (exit 2). A malformed id inside a delta file keeps its own class (refs.py, format/)."""
    try:
        return check_repo_id(repo_id)
    except ReferenceError as exc:
        raise UsageError(str(exc)) from None


def parse_spec(spec: str, *, default_revision: str | None = DEFAULT_BRANCH) -> tuple[str, str | None]:
    """``[hf://]REPO_ID[@REVISION]`` given by the caller -> (repo_id, revision). Raises UsageError naming what is
    wrong."""
    if not isinstance(spec, str) or not spec:
        raise UsageError(f"bad hub reference {spec!r}: expected [hf://]NAMESPACE/NAME[@REVISION]")
    body = spec[5:] if spec.startswith("hf://") else spec
    repo_id, sep, revision = body.partition("@")
    if repo_id.startswith("models/") and repo_id.count("/") == 2:
        repo_id = repo_id[len("models/"):]
    user_repo_id(repo_id)
    if sep:
        if not _REVISION_RE.match(revision):
            raise UsageError(f"bad revision {revision!r} in {spec!r}: expected a branch, tag or commit sha")
        return repo_id, revision
    return repo_id, default_revision


def is_commit(revision: str | None) -> bool:
    return revision is not None and bool(COMMIT_RE.match(revision))


# -- the client ---------------------------------------------------------------------------------------------------
def api(s: HubSettings, what: str = "this operation"):
    """An ``HfApi`` bound to the endpoint and token of ``s``; offline, HubOfflineError saying ``what`` needs it."""
    if s.offline:
        raise HubOfflineError(f"{what} needs the Hub, and offline mode is on (HF_HUB_OFFLINE=1)")
    from huggingface_hub import HfApi

    from pnc_pack.version import __version__

    return HfApi(endpoint=s.endpoint, token=s.token_arg, library_name=LIBRARY_NAME, library_version=__version__)


def _tqdm_class(s: HubSettings):
    """huggingface_hub's own bars when progress is enabled (a terminal, no HF_HUB_DISABLE_PROGRESS_BARS), else none."""
    if s.progress:
        return None
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _Quiet(hf_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return _Quiet


def resolve_commit(s: HubSettings, repo_id: str, revision: str | None) -> str:
    """A branch, tag or short sha -> the 40-hex commit it points to now (one ``model_info`` request)."""
    revision = revision or DEFAULT_BRANCH
    with hub_errors(s, f"resolving {repo_id}@{revision}", repo_id=repo_id, revision=revision):
        info = api(s, f"resolving {repo_id}@{revision}").model_info(repo_id, revision=revision)
    sha = getattr(info, "sha", None)
    if not is_commit(sha):
        raise HubError(f"{repo_id}@{revision}: the Hub at {s.endpoint} did not say which commit this is (sha={sha!r})")
    return sha


def cached_file(s: HubSettings, repo_id: str, filename: str, revision: str) -> Path | None:
    """The cached copy of ``filename`` at ``revision`` (commit, or a branch/tag the cache has a ref for), or None."""
    from huggingface_hub import try_to_load_from_cache

    p = try_to_load_from_cache(repo_id, filename, cache_dir=str(s.cache_dir), revision=revision)
    return Path(p) if isinstance(p, str) else None


def download(s: HubSettings, repo_id: str, filename: str, revision: str, *, force: bool = False) -> Path:
    """One file through the Hub cache (``$HF_HUB_CACHE``); offline -> from the cache only.

    Returns the path in ``snapshots/<commit>/``; the commit is that folder's name (see :func:`commit_of`).
    """
    from huggingface_hub import hf_hub_download

    what = f"{repo_id}@{revision if not is_commit(revision) else revision[:10]}: file {filename!r}"
    with hub_errors(s, what, repo_id=repo_id, revision=revision, filename=filename):
        path = hf_hub_download(
            repo_id, filename, revision=revision, cache_dir=str(s.cache_dir), endpoint=s.endpoint,
            token=s.token_arg, local_files_only=s.offline, force_download=force and not s.offline,
            library_name=LIBRARY_NAME, tqdm_class=_tqdm_class(s),
        )
    return Path(path)


def record_ref(s: HubSettings, repo_id: str, revision: str | None, commit: str) -> None:
    """Remember in the cache that ``revision`` (a branch or tag) pointed to ``commit``, as hf_hub_download does.

    We resolve a branch with ``model_info`` and then download *by commit* (so a branch moving meanwhile cannot mix
    files of two commits); that download does not record the branch, so we write ``refs/<revision>`` ourselves
    (the documented cache layout). Offline, ``hf://REPO@BRANCH`` then resolves to what the last online look-up saw.
    """
    if not revision or is_commit(revision) or s.offline:
        return
    from huggingface_hub.file_download import repo_folder_name

    from pnc_pack.fsutil import atomic_write

    refs = s.cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model") / "refs"
    ref_file = refs / revision
    if len(revision) > 255 or refs.resolve() not in ref_file.resolve().parents:
        return
    try:
        if ref_file.is_file() and ref_file.read_text() == commit:
            return
        atomic_write(ref_file, commit.encode())
    except OSError:  # a read-only cache still works, it just cannot remember the branch
        pass


def commit_of(cached_path: Path) -> str:
    """The commit of a file returned by :func:`download`: the ``snapshots/<commit>`` folder it lies in."""
    for part in reversed(Path(cached_path).parts[:-1]):
        if COMMIT_RE.match(part):
            return part
    raise HubError(f"cannot tell the commit of cached file {cached_path}")


# -- errors -------------------------------------------------------------------------------------------------------
class hub_errors:
    """``with hub_errors(s, "what we were doing", repo_id=..., revision=..., filename=...):`` maps every
    huggingface_hub / httpx failure inside to one typed, one-line PncError (see the module docstring)."""

    def __init__(self, s: HubSettings, what: str, *, repo_id: str | None = None, revision: str | None = None,
                 filename: str | None = None):
        self.s, self.what = s, what
        self.repo_id, self.revision, self.filename = repo_id, revision, filename

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, PncError) or not isinstance(exc, Exception):
            return False
        raise map_error(exc, self.s, self.what, repo_id=self.repo_id, revision=self.revision,
                        filename=self.filename) from exc


def _status(exc) -> int | None:
    resp = getattr(exc, "response", None)
    return getattr(resp, "status_code", None)


def _server_message(exc) -> str:
    resp = getattr(exc, "response", None)
    if resp is None:
        return ""
    msg = resp.headers.get("X-Error-Message") or ""
    if not msg:
        try:
            body = resp.json()
            msg = body.get("error", "") if isinstance(body, dict) else ""
        except Exception:
            msg = ""
    return " ".join(str(msg).split())[:200]


def _in_chain(exc: BaseException, kind: type) -> bool:
    """Whether ``exc`` or an exception it was raised from (__cause__ / __context__) is a ``kind``."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, kind):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _connection_cause(exc: BaseException) -> BaseException | None:
    """The httpx transport error behind ``exc`` (walking __cause__/__context__), if any."""
    import httpx2

    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (httpx2.TransportError, ConnectionError, TimeoutError)) and not isinstance(cur, PncError):
            if type(cur).__name__ != "OfflineModeIsEnabled":
                return cur
        cur = cur.__cause__ or cur.__context__
    return None


def map_error(exc: BaseException, s: HubSettings, what: str, *, repo_id: str | None = None,
              revision: str | None = None, filename: str | None = None) -> PncError:
    """One huggingface_hub / httpx exception -> the matching typed PncError (one line)."""
    import httpx2
    from huggingface_hub import errors as hfe

    token = bool(s.token)
    status = _status(exc)
    server_msg = _server_message(exc)
    where = f" at {s.endpoint}"
    private_hint = "" if token else " (if it is private, set HF_TOKEN)"

    if _in_chain(exc, hfe.OfflineModeIsEnabled) or (isinstance(exc, hfe.LocalEntryNotFoundError) and s.offline):
        return HubOfflineError(
            f"{what}: not in the local cache {s.cache_dir} and offline mode is on (HF_HUB_OFFLINE=1); "
            "download it once online, or unset HF_HUB_OFFLINE")
    if isinstance(exc, hfe.GatedRepoError):
        return HubAuthError(f"{what}: {repo_id} is a gated repository{where}: request access and set HF_TOKEN")
    if isinstance(exc, hfe.RevisionNotFoundError):
        return HubNotFoundError(f"{what}: revision {revision!r} not found in {repo_id}{where}")
    if isinstance(exc, hfe.RemoteEntryNotFoundError):
        return HubNotFoundError(f"{what}: file {filename!r} not found in {repo_id}@{revision}{where}")
    if isinstance(exc, hfe.RepositoryNotFoundError):
        if status == 401 and token:
            return HubAuthError(f"{what}: {repo_id} not found or not accessible with the token in HF_TOKEN{where}")
        detail = "repository, revision or file" if status == 401 else "repository"
        return HubNotFoundError(f"{what}: {detail} not found: {repo_id}{where}{private_hint}")
    if isinstance(exc, hfe.HfHubHTTPError) and status is not None:
        if status in (401, 403):
            why = server_msg or ("unauthorised" if status == 401 else "forbidden")
            how = "check the token in HF_TOKEN" if token else "set HF_TOKEN to a token with access"
            return HubAuthError(f"{what}: {status} {why}{where}; {how}")
        if status == 404:
            return HubNotFoundError(f"{what}: not found{where}{(': ' + server_msg) if server_msg else ''}")
        if status in (409, 412):
            return HubConflictError(f"{what}: refused by the Hub ({status}): {server_msg or 'conflict'}")
        return HubError(f"{what}: the Hub{where} answered {status}{(': ' + server_msg) if server_msg else ''}")
    if isinstance(exc, hfe.LocalEntryNotFoundError):
        cause = _connection_cause(exc)
        if cause is not None or "connection" in str(exc).lower():
            reason = _one_line(cause) if cause is not None else "connection failed"
            return HubConnectionError(f"{what}: cannot reach the Hub{where} ({reason}) and it is not in the cache")
        return HubError(f"{what}: {_one_line(exc)}")
    if isinstance(exc, httpx2.TimeoutException):
        return HubConnectionError(f"{what}: the Hub{where} timed out ({type(exc).__name__})")
    if isinstance(exc, (httpx2.TransportError, ConnectionError)):
        return HubConnectionError(f"{what}: cannot reach the Hub{where} ({_one_line(exc)})")
    if isinstance(exc, hfe.FileMetadataError):
        return HubError(f"{what}: {where.strip()} does not look like a Hugging Face Hub (no commit or ETag headers)")
    if isinstance(exc, hfe.HFValidationError):
        return ReferenceError(f"{what}: {_one_line(exc)}")
    if isinstance(exc, hfe.LocalTokenNotFoundError):
        return HubAuthError(f"{what}: no token: set HF_TOKEN")
    cause = _connection_cause(exc)
    if cause is not None:
        return HubConnectionError(f"{what}: cannot reach the Hub{where} ({_one_line(cause)})")
    return HubError(f"{what}: {type(exc).__name__}: {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:240] + "...") if len(text) > 240 else (text or type(exc).__name__)
