"""The link between rank 0 and one other rank of a distributed build, and how its failures are named.

:class:`Link` sends and receives one uint8 tensor at a time, point to point over gloo, so that a broken exchange
names its peer: a rank that posted its error in the store (:func:`error_info`, raised on rank 0 as
:func:`rank_error`), a started worker that died (its exit code), or one that did not answer within the timeout.
The protocol on top is :mod:`pnc_pack.builder.distributed`.
"""

from __future__ import annotations

import json
import subprocess

import torch

from pnc_pack.errors import PncError, RankError


def error_info(exc: BaseException, rank: int) -> dict:
    """A rank's failure as JSON: what it posts in the store and sends to rank 0."""
    code = exc.exit_code if isinstance(exc, PncError) else (7 if isinstance(exc, Exception) else 1)
    return {"rank": rank, "type": type(exc).__name__, "message": " ".join(str(exc).split())[:2000], "exit_code": code}


def rank_error(info: dict) -> RankError:
    """The error rank 0 raises for a failure another rank reported."""
    return RankError(f"rank {info['rank']} failed: {info['type']}: {info['message']}", rank=info["rank"],
                     exit_code=int(info.get("exit_code", 7)))


class Link:
    """Point-to-point messages with one rank at a time, so that a broken exchange names its peer."""

    def __init__(self, rank: int, world: int, timeout: float, children: dict | None = None):
        import torch.distributed as dist

        self.dist, self.rank, self.world, self.timeout = dist, rank, world, timeout
        self.store = dist.distributed_c10d._get_default_store()
        self.children = children or {}  # rank -> Popen, when this process started them (--nproc)
        self.busy = False

    def _broken(self, peer: int, exc: BaseException) -> RankError:
        err = self.posted(peer)
        if err is not None:
            return rank_error(err)
        child = self.children.get(peer)
        if child is not None:
            try:
                child.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            if child.returncode is not None:
                return RankError(f"rank {peer} died (exit code {child.returncode})", rank=peer)
        text = " ".join(str(exc).split())
        if "timed out" in text.lower() or "timeout" in text.lower():
            return RankError(f"rank {peer} did not answer within {self.timeout:g} s", rank=peer)
        return RankError(f"rank {peer} stopped answering ({text[:300]})", rank=peer)

    def send(self, blob: torch.Tensor, peer: int) -> None:
        self.busy = True
        try:
            self.dist.send(torch.tensor([blob.numel()], dtype=torch.int64), peer)
            if blob.numel():
                self.dist.send(blob, peer)
        except RuntimeError as exc:
            raise self._broken(peer, exc) from None
        finally:
            self.busy = False

    def recv(self, peer: int) -> torch.Tensor:
        self.busy = True
        try:
            n = torch.zeros(1, dtype=torch.int64)
            self.dist.recv(n, peer)
            blob = torch.empty(int(n), dtype=torch.uint8)
            if int(n):
                self.dist.recv(blob, peer)
            return blob
        except RuntimeError as exc:
            raise self._broken(peer, exc) from None
        finally:
            self.busy = False

    def post(self, info: dict) -> None:
        self.store.set(f"pnc/error/{self.rank}", json.dumps(info))

    def posted(self, rank: int) -> dict | None:
        key = f"pnc/error/{rank}"
        return json.loads(self.store.get(key)) if self.store.check([key]) else None

    def check(self) -> None:
        """Raise the first error another rank has posted (rank 0 calls this between its own units)."""
        for r in range(1, self.world):
            err = self.posted(r)
            if err is not None:
                raise rank_error(err)
