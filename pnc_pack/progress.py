"""Progress reporting for long work: a rich progress bar on a terminal; off a terminal (a log, CI, a pipe) plain
lines on stderr, at most one per ``PNC_PACK_PROGRESS_INTERVAL`` seconds (default 10), the first only after that
long, e.g. ``pnc-pack: PNC search 120/610 (20%), 35 s``; nothing at all with ``PNC_PACK_QUIET=1``.

Use ``with progress() as p: task = p.add(description, total); ...; p.advance(task)``. Library code takes an
optional ``progress`` argument and does nothing when it is None, so tests stay quiet.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time


def enabled() -> bool:
    if os.environ.get("PNC_PACK_QUIET") == "1" or os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1":
        return False
    return sys.stderr.isatty()


class _Null:
    def add(self, description: str, total: float | None = None) -> int:
        return 0

    def advance(self, task: int, n: float = 1) -> None:
        pass

    def update(self, task: int, **kw) -> None:
        pass

    def log(self, message: str) -> None:
        pass


class _Rich:
    def __init__(self, bar):
        self._bar = bar

    def add(self, description: str, total: float | None = None) -> int:
        return self._bar.add_task(description, total=total)

    def advance(self, task: int, n: float = 1) -> None:
        self._bar.advance(task, n)

    def update(self, task: int, **kw) -> None:
        self._bar.update(task, **kw)

    def log(self, message: str) -> None:
        self._bar.console.log(message)


class _Plain:
    """Plain progress lines for a log: at most one per ``interval`` seconds, for the task that just moved."""

    def __init__(self, stream, interval: float):
        self._stream, self._interval = stream, interval
        self._tasks: dict[int, dict] = {}
        self._t0 = self._last = time.monotonic()

    def add(self, description: str, total: float | None = None) -> int:
        task = len(self._tasks)
        self._tasks[task] = {"description": description, "total": total, "completed": 0.0, "t0": time.monotonic()}
        return task

    def advance(self, task: int, n: float = 1) -> None:
        self._tasks[task]["completed"] += n
        self._maybe(task)

    def update(self, task: int, **kw) -> None:
        t = self._tasks[task]
        for key in ("description", "total", "completed"):
            if kw.get(key) is not None:
                t[key] = kw[key]
        if kw.get("advance"):
            t["completed"] += kw["advance"]
        self._maybe(task)

    def log(self, message: str) -> None:
        self._write(f"pnc-pack: {message}")

    def _maybe(self, task: int) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        t = self._tasks[task]
        done, total = t["completed"], t["total"]
        count = f"{done:g}/{total:g} ({100 * done / total:.0f}%)" if total else f"{done:g}"
        self._write(f"pnc-pack: {t['description']} {count}, {now - t['t0']:.0f} s")

    def _write(self, line: str) -> None:
        try:
            print(line, file=self._stream, flush=True)
        except (OSError, ValueError):  # a closed or broken stderr never stops the work
            pass


def plain_interval() -> float | None:
    """Seconds between plain progress lines off a terminal, or None when they are off (PNC_PACK_QUIET=1)."""
    if os.environ.get("PNC_PACK_QUIET") == "1":
        return None
    try:
        return max(0.0, float(os.environ.get("PNC_PACK_PROGRESS_INTERVAL", "10")))
    except ValueError:
        return 10.0


@contextlib.contextmanager
def progress(force: bool | None = None):
    """A progress context: rich bars on a terminal (or when ``force``); off a terminal plain periodic lines on
    stderr (``force=False``: none); a no-op object when quiet."""
    if not (enabled() if force is None else force):
        interval = plain_interval() if force is None and not sys.stderr.isatty() else None
        yield _Null() if interval is None else _Plain(sys.stderr, interval)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=False,
    )
    with bar:
        yield _Rich(bar)


NULL = _Null()
