"""Crash-safe file writing: a temporary file in the destination folder, fsync, rename, fsync the folder.

After a crash the destination holds either its previous complete content or the new one, never a part. A leftover
temporary file (named ``.<name>.<random>.tmp``) from a killed process is removed by the next successful write to
the same destination.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TMP_SUFFIX = ".tmp"


def _clean_stale(dest: Path) -> None:
    prefix = f".{dest.name}."
    try:
        for p in dest.parent.iterdir():
            if p.name.startswith(prefix) and p.name.endswith(TMP_SUFFIX):
                with contextlib.suppress(OSError):
                    p.unlink()
    except OSError:
        pass


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: int = 0o644):
    """Yield a binary file object; on clean exit its content replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=TMP_SUFFIX, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(dest.parent)
    _clean_stale(dest)


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    with atomic_writer(path, mode) as f:
        f.write(data)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
