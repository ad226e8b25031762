"""Progress reporting for long work: a rich progress bar on a terminal, silence otherwise.

Use ``with progress() as p: task = p.add(description, total); ...; p.advance(task)``. Library code takes an
optional ``progress`` argument and does nothing when it is None, so tests stay quiet.
"""

from __future__ import annotations

import contextlib
import os
import sys


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


@contextlib.contextmanager
def progress(force: bool | None = None):
    """A progress context: rich bars on a terminal (or when ``force``), a no-op object otherwise."""
    if not (enabled() if force is None else force):
        yield _Null()
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
