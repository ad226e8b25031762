"""ModelRef: how a clone delta names a pretrained model without copying it.

A reference is *pinned*: either a Hub repo id with a 40-hex commit, or (for unpublished models) a local folder path;
in both cases with the sha256 and size of every file used and the registered architecture name and arguments.
Branch and tag names are resolved to commits before a ModelRef is made; a ModelRef never holds one.

This module is torch-free.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pnc_pack.errors import FormatError, ModelMismatchError, ModelNotFoundError, ReferenceError

# Hub repo ids: "name" or "namespace/name", each part 1-96 chars of [A-Za-z0-9._-], no "--" or ".." inside, not
# starting or ending with "-" or "." (the Hub's own rules, slightly stricter).
# Every pattern is anchored with \A and \Z, never ^ and $: "$" also matches before a final "\n", so "<40 hex>\n"
# passed as a commit (issue 20). Callers use fullmatch; the anchors keep a plain .match() just as strict.
_REPO_PART = r"(?!.*(?:--|\.\.))[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID_RE = re.compile(rf"\A(?:{_REPO_PART}/)?{_REPO_PART}\Z")
COMMIT_RE = re.compile(r"\A[0-9a-f]{40}\Z")
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")
ARCH_RE = re.compile(r"\A[a-z][a-z0-9_\-]{0,63}\Z")  # no ':' or '.': an architecture name is never an import path
# Control characters (Unicode category Cc: C0, DEL and C1), refused in file names (spec §4)
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Local paths refuse C0 only (spec §4.2): a path is only opened, and printed escaped
PATH_CONTROL_RE = re.compile(r"[\x00-\x1f]")
MAX_FILE_NAME = 255
HASH_CHUNK = 1 << 20  # 1 MiB: fits the L2 cache, so each chunk is hashed right after it is read


def check_repo_id(repo_id: Any) -> str:
    if not isinstance(repo_id, str) or not REPO_ID_RE.fullmatch(repo_id):
        raise ReferenceError(f"bad repo id {repo_id!r}: expected 'namespace/name' of letters, digits, '.', '_', '-'")
    return repo_id


def check_commit(commit: Any) -> str:
    if not isinstance(commit, str) or not COMMIT_RE.fullmatch(commit):
        raise ReferenceError(
            f"unpinned or malformed revision {commit!r}: a reference needs a 40-hex commit sha, not a branch or tag"
        )
    return commit


def check_file_name(name: Any) -> str:
    """A referenced file name: plain, no path separators, no '..', no control characters."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > MAX_FILE_NAME
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or ".." in name
        or CONTROL_RE.search(name)
    ):
        raise ReferenceError(f"bad file name {name!r}: must be a plain name, without '/', '\\\\', '..' or control characters")
    return name


def check_arch_name(name: Any) -> str:
    if not isinstance(name, str) or not ARCH_RE.fullmatch(name):
        raise ReferenceError(f"bad architecture name {name!r}: expected a registered name like 'lenet5'")
    return name


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int

    def __post_init__(self):
        if not isinstance(self.sha256, str) or not SHA256_RE.fullmatch(self.sha256):
            raise ReferenceError(f"bad sha256 {self.sha256!r}: expected 64 lowercase hex digits")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise ReferenceError(f"bad file size {self.size!r}")


def sha256_file(path: str | os.PathLike) -> FileDigest:
    """sha256 and size of a file, read into one reused buffer of at most HASH_CHUNK bytes (no larger than the file:
    zeroing an 8 MiB buffer for a 400 KB file cost more than hashing it) and hashed chunk by chunk while the chunk
    is still in the CPU cache. hashlib is OpenSSL's, which uses the SHA-NI instructions where the CPU has them, and
    releases the GIL, so several files hash in parallel threads."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(max(1, min(HASH_CHUNK, os.fstat(f.fileno()).st_size + 1)))
        with memoryview(buf) as view:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(view[:n])
                size += n
    return FileDigest(h.hexdigest(), size)


@dataclass(frozen=True)
class ModelRef:
    """A pinned reference to a pretrained model (see spec/clone-delta-v1.md, "References").

    Exactly one of (``repo_id`` and ``commit``) or ``path`` is set. ``files`` maps every file the model needs
    (at least ``model.safetensors`` and ``config.json``) to its digest.
    """

    arch: str
    arch_args: Mapping[str, Any]
    files: Mapping[str, FileDigest]
    repo_id: str | None = None
    commit: str | None = None
    path: str | None = None

    def __post_init__(self):
        check_arch_name(self.arch)
        if not isinstance(self.arch_args, Mapping) or not all(isinstance(k, str) for k in self.arch_args):
            raise ReferenceError("arch_args must be a map with string keys")
        if not isinstance(self.files, Mapping) or not self.files:
            raise ReferenceError("a reference must list at least one file with its sha256 and size")
        for name, digest in self.files.items():
            check_file_name(name)
            if not isinstance(digest, FileDigest):
                raise ReferenceError(f"file {name!r}: digest must be a FileDigest")
        if self.path is None:
            if self.repo_id is None or self.commit is None:
                raise ReferenceError("a reference needs either repo_id and commit, or a local path")
            check_repo_id(self.repo_id)
            check_commit(self.commit)
        else:
            if self.repo_id is not None or self.commit is not None:
                raise ReferenceError("a reference is either a hub reference or a local one, not both")
            if not isinstance(self.path, str) or not self.path or PATH_CONTROL_RE.search(self.path):
                raise ReferenceError(f"bad local path {self.path!r}")

    @property
    def is_local(self) -> bool:
        return self.path is not None

    def uri(self) -> str:
        return self.path if self.is_local else f"hf://{self.repo_id}@{self.commit}"

    def short(self) -> str:
        return self.path if self.is_local else f"{self.repo_id}@{self.commit[:10]}"

    # -- plain-data form (the header schema of spec/clone-delta-v1.md) -------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "arch": self.arch,
            "arch_args": dict(self.arch_args),
            "files": {n: {"sha256": fd.sha256, "size": fd.size} for n, fd in sorted(self.files.items())},
        }
        if self.is_local:
            d["local_path"] = self.path
        else:
            d["repo_id"] = self.repo_id
            d["commit"] = self.commit
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "ref") -> "ModelRef":
        if not isinstance(d, Mapping):
            raise FormatError(f"{where}: expected a map")
        allowed = {"arch", "arch_args", "files", "repo_id", "commit", "local_path"}
        unknown = set(d) - allowed
        if unknown:
            raise FormatError(f"{where}: unknown field(s) {sorted(map(str, unknown))}")
        for key in ("arch", "arch_args", "files"):
            if key not in d:
                raise FormatError(f"{where}: missing field {key!r}")
        files = d["files"]
        if not isinstance(files, Mapping):
            raise FormatError(f"{where}.files: expected a map")
        parsed = {}
        for name, fd in files.items():
            if not isinstance(fd, Mapping) or set(fd) != {"sha256", "size"}:
                raise FormatError(f"{where}.files[{name!r}]: expected a map with exactly 'sha256' and 'size'")
            parsed[name] = FileDigest(fd["sha256"], fd["size"])
        try:
            return cls(
                arch=d["arch"],
                arch_args=d["arch_args"],
                files=parsed,
                repo_id=d.get("repo_id"),
                commit=d.get("commit"),
                path=d.get("local_path"),
            )
        except ReferenceError as exc:
            raise type(exc)(f"{where}: {exc}") from None

    # -- checking files against the pins ---------------------------------------------------------------------------
    def mismatch(self, folder: str | os.PathLike, name: str, detail: str) -> str:
        """The message for a folder that is not this pinned model: it names the folder checked (the one the user
        gave, not the stored path or repo), the pin, and the file that differs."""
        return (f"model folder {folder} does not match the pinned model {self.short()} ({self.arch}): "
                f"file {name!r} {detail}")

    def check_sizes(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Every pinned file exists in ``folder`` with its pinned size (cheap; the sha256 is checked by whoever
        reads the bytes, over exactly the bytes it parses: see zoo.pretrained.load_pretrained)."""
        folder = Path(folder)
        out = {}
        for name, want in sorted(self.files.items()):
            p = folder / name
            if not p.is_file():
                raise ModelNotFoundError(self.mismatch(folder, name, "not found"))
            size = p.stat().st_size
            if size != want.size:
                raise ModelMismatchError(
                    self.mismatch(folder, name, f"has size {size}, pinned {want.size}"),
                    file=str(p), expected=f"size {want.size}", actual=f"size {size}",
                )
            out[name] = p
        return out

    def check_folder(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Check every pinned file in ``folder`` (size first, then sha256) before anything reads it.

        Returns name -> path. Raises ModelNotFoundError or ModelMismatchError naming the file and both digests.
        """
        out = self.check_sizes(folder)
        for name, p in out.items():
            want = self.files[name]
            got = sha256_file(p)
            if got.sha256 != want.sha256:
                raise ModelMismatchError(
                    self.mismatch(folder, name, f"has sha256 {got.sha256}, pinned {want.sha256}"),
                    file=str(p), expected=want.sha256, actual=got.sha256,
                )
        return out

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, arch: str, arch_args: Mapping[str, Any],
                    files: tuple[str, ...] = ("config.json", "model.safetensors"),
                    repo_id: str | None = None, commit: str | None = None) -> "ModelRef":
        """Pin the files of a model folder: a local reference, or a hub one when repo_id and commit are given."""
        folder = Path(folder)
        digests = {}
        for name in files:
            p = folder / check_file_name(name)
            if not p.is_file():
                raise ModelNotFoundError(f"model folder {folder}: file {name!r} not found")
            digests[name] = sha256_file(p)
        if repo_id is None:
            return cls(arch, dict(arch_args), digests, path=str(folder))
        return cls(arch, dict(arch_args), digests, repo_id=repo_id, commit=commit)


def is_hub_spec(spec: Any) -> bool:
    """True for ``hf://ORG/NAME[@REV]``: the one spelling of a Hub model or delta everywhere a spec is accepted."""
    return isinstance(spec, str) and spec.startswith("hf://")


@dataclass(frozen=True)
class ResolvedModel:
    """A model spec turned into a local folder and its pinned reference.

    :mod:`pnc_pack.api` makes these from ``hf://`` specs (through the Hub cache); the builder and the loader take
    them, or plain folders, and never talk to the Hub themselves. ``spec`` is what the user wrote, for messages.
    """

    folder: Path
    ref: ModelRef
    spec: str

    def __str__(self) -> str:
        return self.spec
