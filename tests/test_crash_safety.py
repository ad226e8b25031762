"""Crash safety and concurrency of everything that writes files.

- kill -9 at ~50 random moments during save, sign, export and pull: the destination then holds a complete earlier
  or new file (it loads) or nothing, never a part; the next successful run leaves no temporary or lock file;
- concurrent writers of one destination all succeed (stale-temp cleaning used to delete a live writer's file);
- concurrent signers of one file all end with their signature in it (sign_file's read-modify-write is locked).

The kill harness runs in a separate single-threaded "zygote" process (the test process runs the Hub test server's
threads, and forking a threaded process is unsafe): the zygote imports everything once, then forks one child per
kill that repeats the operation in a loop, kills it after a random delay, checks the destination, and forks one
more child that runs the operation once to completion. Export uses ``atomic_writer`` on a 3 MB file written in
64 KiB chunks: ``pnc_pack.clone.export.export_cloned`` did not work yet when this test was written, and it writes
its two files through the same ``atomic_write`` (forking a zygote that has run torch would also risk OpenMP's
known hang after fork).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pnc_pack.format import codec, container
from pnc_pack.format.signing import check_signatures, private_key_from_seed, public_key_bytes, sign_file
from pnc_pack.fsutil import atomic_write

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
KEYS = [private_key_from_seed(hashlib.sha256(f"crash-safety key {i}".encode()).digest()) for i in range(4)]


def _fork_all(n: int, work) -> list[int]:
    """Run ``work(i)`` in n forked children released together; their exit codes."""
    r, w = os.pipe()
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:  # child
            code = 70
            try:
                os.close(w)
                os.read(r, 1)
                code = work(i) or 0
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(r)
    os.write(w, b"x" * n)
    os.close(w)
    return [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]


def test_concurrent_writers_of_one_destination_all_succeed(tmp_path):
    dest = tmp_path / "refs" / "main"

    def work(i):
        for j in range(60):
            atomic_write(dest, f"writer {i} write {j}".encode() * 100)
        return 0

    assert _fork_all(8, work) == [0] * 8
    assert dest.read_bytes().startswith(b"writer ")
    assert [p.name for p in dest.parent.iterdir()] == ["main"]


def test_stale_cleaning_spares_a_live_writer(tmp_path):
    """A temporary file whose writer is alive (holds its flock) survives another write's cleaning; a dead writer's
    (no lock) is removed."""
    import fcntl

    dest = tmp_path / "f.bin"
    stale = tmp_path / ".f.bin.dead.tmp"
    stale.write_bytes(b"left by a killed writer")
    live = tmp_path / ".f.bin.live.tmp"
    fd = os.open(live, os.O_RDWR | os.O_CREAT, 0o600)
    ready_r, ready_w = os.pipe()  # child -> parent: the lock is held
    stop_r, stop_w = os.pipe()  # parent -> child: release it (two pipes: nobody can read its own byte back)
    pid = os.fork()
    if pid == 0:  # the live writer: holds the lock until told to stop
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(ready_w, b"1")
        os.read(stop_r, 1)
        os._exit(0)
    assert os.read(ready_r, 1) == b"1"
    try:
        atomic_write(dest, b"new")
        assert dest.read_bytes() == b"new"
        assert live.exists() and not stale.exists()
    finally:
        os.write(stop_w, b"x")
        os.waitpid(pid, 0)
        os.close(fd)
        for f in (ready_r, ready_w, stop_r, stop_w):
            os.close(f)
    atomic_write(dest, b"newer")  # the writer is gone now: its file is stale
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_concurrent_signers_keep_every_signature(tmp_path):
    from pnc_pack.format.testing import make_delta

    unsigned = codec.dumps(make_delta(1))
    path = tmp_path / "d.pncd"
    wanted = sorted(public_key_bytes(k) for k in KEYS)
    for _ in range(12):
        atomic_write(path, unsigned)
        assert _fork_all(len(KEYS), lambda i: sign_file(path, KEYS[i]) and 0) == [0] * len(KEYS)
        c = container.parse(path.read_bytes())
        assert sorted(pk for pk, _ in c.signatures) == wanted  # no signature lost
        assert all(check_signatures(c.digest, c.signatures))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pncd"]  # lock and temp files gone


def test_unlocked_signing_would_lose_signatures(tmp_path, monkeypatch):
    """The lock is what keeps the signatures: without it the same race loses some (this is the bug it fixes)."""
    import contextlib

    import pnc_pack.fsutil as fsutil
    from pnc_pack.format.testing import make_delta

    monkeypatch.setattr(fsutil, "locked", lambda path: contextlib.nullcontext())
    unsigned = codec.dumps(make_delta(1))
    path = tmp_path / "d.pncd"
    lost = 0
    for _ in range(12):
        atomic_write(path, unsigned)
        _fork_all(len(KEYS), lambda i: sign_file(path, KEYS[i]) and 0)
        lost += len(KEYS) - len(container.parse(path.read_bytes()).signatures)
    assert lost > 0


ZYGOTE = r'''
import dataclasses, hashlib, json, os, random, signal, sys, time
from pathlib import Path
from pnc_pack.format import codec
from pnc_pack.format.delta import RawTensor
from pnc_pack.format.signing import private_key_from_seed, sign_file
from pnc_pack.format.testing import make_delta
from pnc_pack.fsutil import atomic_writer

cfg = json.loads(sys.argv[1])
work = Path(cfg["work"])
rng = random.Random(cfg["seed"])
ka, kb = (private_key_from_seed(hashlib.sha256(n).digest()) for n in (b"zygote a", b"zygote b"))

def big(seed):
    d = make_delta(1, seed=seed)
    m = d.modules[0]
    blob = random.Random(seed).randbytes(2 << 20)
    m = dataclasses.replace(m, adapter={**m.adapter, "big": RawTensor("U8", (len(blob),), blob)})
    return dataclasses.replace(d, modules=(m,))

A, B = big(1), big(2)
KW = dict(encoding="zstd", level=1)
bytes_a, bytes_b = codec.dumps(A, **KW), codec.dumps(B, **KW)
X, Y = random.Random(3).randbytes(3 << 20), random.Random(4).randbytes(3 << 20)

def write_chunks(dest, data):
    with atomic_writer(dest) as f:
        for i in range(0, len(data), 65536):
            f.write(data[i:i + 65536])

def op_save(dest, i):
    codec.save(A if i % 2 == 0 else B, dest, **KW)

def op_sign(dest, i):
    codec.save(A, dest, **KW)
    sign_file(dest, ka)
    sign_file(dest, kb)

def op_export(dest, i):
    write_chunks(dest, X if i % 2 == 0 else Y)

# imported once here, as the other operations' modules are: a forked child then spends its time pulling, not
# importing (huggingface_hub's import is most of a first pull's second); importing starts no thread
import huggingface_hub.errors, huggingface_hub.file_download, huggingface_hub.utils
from pnc_pack.hub import pull

def op_pull(dest, i):
    pull("hf://" + cfg["repo"] + "@" + cfg["commits"][i % 2], output=dest)

OPS = {"save": op_save, "sign": op_sign, "export": op_export, "pull": op_pull}

def fork_run(fn, dest, loop):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            i = 0
            while True:
                fn(dest, i)
                i += 1
                if not loop:
                    break
        except BaseException as exc:
            print(f"child error: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 3
        os._exit(code)
    return pid

def leftovers(dest):
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)

def expected_states(op):
    if op == "export":
        return {hashlib.sha256(x).hexdigest() for x in (X, Y)}
    return None  # deltas: checked by loading

def state(op, dest):
    if not dest.exists():
        return "absent", True
    data = dest.read_bytes()
    if op == "export":
        return "export", hashlib.sha256(data).hexdigest() in expected_states(op)
    try:
        d = codec.loads(data)  # structure, digest, every signature
    except Exception as exc:
        return f"broken: {type(exc).__name__}: {exc}", False
    unsigned = dataclasses.replace(d, signatures=())
    ok = codec.dumps(unsigned, **KW) in (bytes_a, bytes_b)
    return f"delta with {len(d.signatures)} signature(s)", ok

report = []
for op, n in cfg["plan"]:
    folder = work / op
    folder.mkdir()
    dest = folder / ("out.pncd" if op != "export" else "model.safetensors")
    t = time.monotonic()
    pid = fork_run(OPS[op], dest, loop=False)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0, op
    d = time.monotonic() - t
    for k in range(n):
        pid = fork_run(OPS[op], dest, loop=True)
        delay = rng.uniform(0.0, 2.5 * d)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        what, ok = state(op, dest)
        left = leftovers(dest)
        pid = fork_run(OPS[op], dest, loop=False)
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        what2, ok2 = state(op, dest)
        report.append({"op": op, "delay": round(delay, 4), "state": what, "ok": ok, "left_by_kill": left,
                       "next_rc": rc, "ok_after": ok2, "left_after_next": leftovers(dest), "op_s": round(d, 4)})
print(json.dumps(report))
'''


def test_kill_9_during_save_sign_export_pull(tmp_path, monkeypatch):
    import dataclasses
    import random

    from pnc_pack.format.delta import RawTensor
    from pnc_pack.format.testing import make_delta
    from tests.hub import server

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    with server.FakeHub(tokens={"hf_write": True}) as hub:
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_TOKEN="hf_write",
                   HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1", PNC_PACK_QUIET="1")
        for k in ("HF_ENDPOINT", "HF_HOME", "HF_TOKEN", "HF_HUB_DISABLE_PROGRESS_BARS"):
            monkeypatch.setenv(k, env[k])
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        import pnc_pack.hub as hub_api

        commits = []
        for seed in (1, 2):  # the zygote's deltas A and B, pushed as two commits
            d = make_delta(1, seed=seed)
            m = d.modules[0]
            blob = random.Random(seed).randbytes(2 << 20)
            m = dataclasses.replace(m, adapter={**m.adapter, "big": RawTensor("U8", (len(blob),), blob)})
            commits.append(hub_api.push(dataclasses.replace(d, modules=(m,)), "org/crash"))
        work = tmp_path / "work"
        work.mkdir()
        cfg = {"work": str(work), "seed": 9, "repo": "org/crash", "commits": commits,
               "plan": [["save", 14], ["sign", 14], ["export", 12], ["pull", 10]]}
        proc = subprocess.run([sys.executable, "-c", ZYGOTE, json.dumps(cfg)], capture_output=True, text=True,
                              env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert len(report) == 50
    for r in report:
        assert r["ok"], r  # the destination after the kill: absent or a complete file that loads
        assert r["next_rc"] == 0 and r["ok_after"], r
        assert r["left_after_next"] == [], r  # the next successful run cleaned the killed writer's leftovers
        assert all(n.endswith((".tmp", ".lock")) for n in r["left_by_kill"]), r
    # the kills did land inside writes: some left a temporary file behind
    mid_write = {op: sum(any(n.endswith(".tmp") for n in r["left_by_kill"]) for r in report if r["op"] == op)
                 for op in ("save", "sign", "export", "pull")}
    print("kills that left a temporary file, per operation:", mid_write)
    assert sum(mid_write.values()) >= 1
