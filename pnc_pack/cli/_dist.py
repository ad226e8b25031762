"""``--nproc`` and ``--dist-timeout`` for ``build``, and torchrun's thread setting undone before torch loads.

torchrun sets OMP_NUM_THREADS=1 in every rank when it is unset. Intra-op thread counts change float sums, so a rank
on one thread builds other bytes than a plain ``pnc-pack build`` on the machine's default; ``torchrun_threads``
(called before torch is imported) takes a 1 that torchrun set for its own and removes it, so every rank uses the
count a serial build gets. PNC_PACK_THREADS=T sets T threads in the serial build and in every rank alike.
"""

from __future__ import annotations

import os
import sys

import click


def torchrun_threads() -> None:
    if "torch" in sys.modules or os.environ.get("PNC_PACK_THREADS"):
        return
    if (os.environ.get("TORCHELASTIC_RUN_ID") and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1
            and os.environ.get("OMP_NUM_THREADS") == "1"):
        del os.environ["OMP_NUM_THREADS"]


def dist_options(f):
    f = click.option("--dist-timeout", "dist_timeout", type=click.FloatRange(min=1), default=None,
                     help="Distributed builds: seconds a rank waits for another before the build stops (default "
                          "1800, or PNC_PACK_DIST_TIMEOUT); it must exceed the longest unit of work.")(f)
    return click.option("--nproc", type=click.IntRange(min=1), default=None,
                        help="Spread the build over N local processes (torch.distributed, gloo): the insertion "
                             "positions, the sources' modules, the --select-source candidates. The delta is the "
                             "serial one, byte for byte. Under torchrun the ranks are torchrun's.")(f)
