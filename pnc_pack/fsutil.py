"""Crash-safe file writing: a temporary file in the destination folder, fsync, rename, fsync the folder; and an
advisory lock for read-modify-write of one file by several processes.

After a crash the destination holds either its previous complete content or the new one, never a part. A leftover
temporary file (named ``.<name>.<random>.tmp``) from a killed process is removed by the next successful write to
the same destination.

Concurrent writers to one destination each finish (the last rename wins): a writer holds an exclusive ``flock`` on
its temporary file from just after creating it until the rename, and stale-file cleaning removes only temporary
files whose lock it can take, i.e. whose writer is gone (the kernel drops a dead process's locks). A writer whose
fresh file was removed in the instant before it locked it notices (the file has no link any more) and starts over.
Without this, one writer's cleaning deleted another's temporary file under it and the second rename failed with
FileNotFoundError (eight processes writing one Hub cache ref file hit it; tests/test_crash_safety.py).

:func:`locked` serialises read-modify-write cycles (``pnc-pack sign`` adds a signature to a file another process may
be signing too): an exclusive ``flock`` on ``.<name>.lock`` next to the file, removed on release.

pnc-pack targets POSIX systems. Without ``fcntl``, cleaning removes only temporary files older than an hour and
:func:`locked` does not lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

TMP_SUFFIX = ".tmp"
LOCK_SUFFIX = ".lock"
STALE_WITHOUT_FLOCK_S = 3600


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def _clean_stale(dest: Path) -> None:
    """Remove temporary files of ``dest`` left by writers that died (see module docstring)."""
    prefix = f".{dest.name}."
    try:
        names = [p for p in dest.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(TMP_SUFFIX)]
    except OSError:
        return
    for p in names:
        with contextlib.suppress(OSError):
            if fcntl is None:
                if time.time() - p.stat().st_mtime > STALE_WITHOUT_FLOCK_S:
                    p.unlink()
                continue
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
            try:
                if _try_lock(fd):  # nobody writes it: its writer died
                    p.unlink()
            finally:
                os.close(fd)


def _new_temp(dest: Path) -> tuple[int, str]:
    """A locked temporary file next to ``dest`` that is still linked (a cleaner may remove an unlocked one)."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TMP_SUFFIX, dir=dest.parent)
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:
            return fd, tmp
        os.close(fd)  # removed by a cleaner before we locked it: take another


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: int = 0o644):
    """Yield a binary file object; on clean exit its content replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp(dest)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, dest)  # still holding the lock: no cleaner can remove tmp before this
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)
    _clean_stale(dest)


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    with atomic_writer(path, mode) as f:
        f.write(data)


def lock_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(f".{p.name}{LOCK_SUFFIX}")


@contextlib.contextmanager
def locked(path: str | os.PathLike):
    """Hold an exclusive advisory lock for ``path`` (on ``.<name>.lock`` in its folder) for the ``with`` block.

    Every process that read-modify-writes ``path`` through this lock sees the others' writes. The lock file is
    removed on release; a process that locked a lock file just removed by its previous holder notices (the path no
    longer names the file it locked) and locks the new one instead. A lock held by a killed process is released by
    the kernel; the lock file it leaves is reused by the next holder.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    lp = lock_path(path)
    while True:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                     0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(lp))
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lp)  # while still holding the lock: waiters on this inode will see it is gone and retry
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
