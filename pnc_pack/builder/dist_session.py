"""The ranks of a distributed build: torchrun's, or workers this process starts (``--nproc``), and their end.

``with session(nproc) as s`` joins or starts the ranks (gloo; a file rendezvous for ``--nproc``), sets the
:class:`~pnc_pack.builder.distributed.Driver` rank 0's builder loops use, and on leaving tells every rank to stop,
or, on failure, aborts them and names the rank that died. A watchdog thread sees a started worker's exit within
0.2 s. The protocol itself is :mod:`pnc_pack.builder.distributed`.
"""

from __future__ import annotations

import _thread
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import torch

from pnc_pack.builder.dist_link import Link, rank_error
from pnc_pack.builder.dist_messages import pack
from pnc_pack.builder.distributed import ACTIVE, Driver, serve
from pnc_pack.errors import BuildError, PncError, RankError, UsageError

ENV_THREADS = "PNC_PACK_THREADS"  # intra-op threads of every rank (the serial build's count)
ENV_TIMEOUT = "PNC_PACK_DIST_TIMEOUT"  # seconds a rank waits for another before giving up
ENV_INIT = "PNC_PACK_DIST_INIT"  # init_method of the workers ``--nproc`` starts (a file:// rendezvous)
DEFAULT_TIMEOUT = 1800.0


def _timeout(timeout: float | None) -> float:
    value = timeout if timeout is not None else float(os.environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT))
    if not value > 0:
        raise UsageError(f"distributed timeout must be > 0 seconds, got {value}")
    return float(value)


def _threads() -> None:
    if os.environ.get(ENV_THREADS):
        torch.set_num_threads(int(os.environ[ENV_THREADS]))


class Session:
    """This process's place in a distributed build: ``rank``, ``world``; rank 0 drives, the others ``serve``."""

    def __init__(self, rank: int, world: int, timeout: float, children: dict | None = None, tmp: str | None = None,
                 device: str | None = None):
        self.rank, self.world, self.timeout = rank, world, timeout
        self.link = Link(rank, world, timeout, children)
        self.children, self.tmp = children or {}, tmp
        self.driver = Driver(self.link, device) if rank == 0 else None
        self.finished = False
        self.dead: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._watch = None
        if self.children:
            self._watch = threading.Thread(target=self._watchdog, name="pnc-pack ranks", daemon=True)
            self._watch.start()

    def serve(self) -> int:
        return serve(self.link)

    def _watchdog(self) -> None:
        while not self._stop.wait(0.2):
            for r, child in self.children.items():
                code = child.poll()
                if code is None or (code == 0 and self.finished):
                    continue
                self.dead = (r, code)
                self._stop.set()
                if not self.link.busy:  # an exchange with the dead rank fails by itself
                    _thread.interrupt_main()
                return

    def died(self) -> RankError | None:
        if self.dead is None:
            return None
        r, code = self.dead
        err = self.link.posted(r)
        if err is not None:
            return rank_error(err)
        return RankError(f"rank {r} died (exit code {code}){self._last_words(r)}", rank=r)

    def _last_words(self, r: int) -> str:
        try:
            lines = [x for x in Path(self.tmp, f"rank{r}.log").read_text(errors="replace").splitlines() if x.strip()]
        except OSError:
            return ""
        return f": {lines[-1].strip()[:300]}" if lines else ""

    def finish(self) -> None:
        """Rank 0, the build done: tell every rank to stop and wait for the workers this process started."""
        if self.finished or self.rank != 0:
            return
        self.finished = True
        for r in range(1, self.world):
            self.link.send(pack({"op": "done"}), r)
        for r, child in self.children.items():
            try:
                code = child.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                code = None
            if code != 0:
                raise RankError(f"rank {r} did not stop cleanly (exit code {code}){self._last_words(r)}", rank=r)

    def abort(self, exc: BaseException | None) -> None:
        """Rank 0, the build failed: tell the ranks that still listen to stop, end the workers it started."""
        self._stop.set()
        code = exc.exit_code if isinstance(exc, PncError) else 7
        msg = pack({"op": "abort", "exit_code": code})
        size, works = torch.tensor([msg.numel()], dtype=torch.int64), []
        for r in range(1, self.world):  # without waiting: a rank busy with a unit reads it when done, or is ended
            try:
                works += [self.link.dist.isend(size, r), self.link.dist.isend(msg, r)]
            except RuntimeError:
                pass
        self._pending = (size, msg, works)
        deadline = time.monotonic() + 2.0
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.terminate()
        for child in self.children.values():
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def close(self) -> None:
        self._stop.set()
        try:
            self.link.dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - a group whose peers are gone may not close cleanly; nothing to keep
            pass
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _start_workers(nproc: int, timeout: float) -> tuple[dict, str, str]:
    tmp = tempfile.mkdtemp(prefix="pnc-pack-ranks-")
    init = "file://" + str(Path(tmp, "rendezvous"))
    env = {**os.environ, ENV_INIT: init, "WORLD_SIZE": str(nproc), ENV_THREADS: str(torch.get_num_threads()),
           ENV_TIMEOUT: str(timeout), "MASTER_ADDR": "127.0.0.1", "LOCAL_WORLD_SIZE": str(nproc)}
    children = {}
    code = "import sys; from pnc_pack.builder.dist_session import worker_main; sys.exit(worker_main())"
    for r in range(1, nproc):
        log = open(Path(tmp, f"rank{r}.log"), "wb")  # noqa: SIM115 - the child keeps it
        children[r] = subprocess.Popen([sys.executable, "-c", code], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
    return children, init, tmp


def _init(init: str, rank: int, world: int, timeout: float) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world, timeout=timedelta(seconds=timeout))


def worker_main() -> int:
    """Entry of a worker started by ``--nproc`` (environment: RANK, WORLD_SIZE, PNC_PACK_DIST_INIT)."""
    _threads()
    rank, world, timeout = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), _timeout(None)
    _init(os.environ[ENV_INIT], rank, world, timeout)
    sess = Session(rank, world, timeout)
    try:
        return sess.serve()
    finally:
        sess.close()


class session:  # noqa: N801 - used as a context manager, like open()
    """``with session(nproc) as s``: None when serial; else a :class:`Session`. Rank 0 builds inside the block (the
    builder's loops spread over the ranks) and the others call ``s.serve()``. Under torchrun (WORLD_SIZE > 1) the
    ranks come from its environment; else ``nproc`` > 1 starts nproc - 1 local workers (gloo, a file rendezvous).
    ``explicit``: the block ends the build with ``s.finish()``; leaving it without is a failure (for click, whose
    resources are closed without the exception). ``device``: the build's --device; each rank other than 0 runs its
    units on ``devices.rank_device(device, LOCAL_RANK)``: its own GPU under ``cuda``/``auto``, the one named by
    ``cuda:N``, else the CPU (None: the type of device rank 0's tensors are on)."""

    def __init__(self, nproc: int | None = None, timeout: float | None = None, explicit: bool = False,
                 device: str | None = None):
        self.nproc, self.timeout, self.explicit, self.device = nproc, timeout, explicit, device
        self.sess: Session | None = None
        self.token = None

    def __enter__(self) -> Session | None:
        _threads()
        timeout = _timeout(self.timeout)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            if self.nproc not in (None, 1):
                raise UsageError("--nproc starts local workers; under torchrun the ranks are torchrun's: drop --nproc")
            rank = int(os.environ["RANK"])
            _init(os.environ.get(ENV_INIT, "env://"), rank, world, timeout)
            self.sess = Session(rank, world, timeout, device=self.device)
        elif self.nproc is not None and self.nproc > 1:
            children, init, tmp = _start_workers(self.nproc, timeout)
            try:
                _init(init, 0, self.nproc, timeout)
            except BaseException:
                for c in children.values():
                    c.kill()
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self.sess = Session(0, self.nproc, timeout, children, tmp, device=self.device)
        else:
            return None
        if self.sess.driver is not None:
            self.token = ACTIVE.set(self.sess.driver)
        return self.sess

    def __exit__(self, kind, exc, tb):
        s = self.sess
        if s is None:
            return False
        if self.token is not None:
            ACTIVE.reset(self.token)
        if exc is None and s.rank == 0 and not s.finished:
            exc = sys.exc_info()[1]  # click closes resources inside the exception's handling
            if exc is None and self.explicit:
                exc = BuildError("the build did not finish")
        replaced = None
        try:
            if s.rank == 0:
                if exc is None:
                    s.finish()
                else:
                    replaced = s.died()  # a rank that died is the cause, whatever rank 0 saw of it
                    s.abort(replaced or exc)
        finally:
            s.close()
        if replaced is not None and replaced is not exc:
            raise replaced from None
        return False
