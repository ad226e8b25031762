"""Fuzz the clone-delta reader (load, verify, inspect) for crashes, hangs and memory blow-ups.

    python tools/fuzz.py --seconds N --out DIR [--seed S] [--engine auto|atheris|mutator] [--summary FILE]
                         [--timeout 2] [--rss-mb 1536] [--coverage] [--seeds DIR] [--selftest crash|hang]

What runs on each input is tools/fuzz_target.py (``execute``): verify, load with strict signatures, the inspect
summary and text, and write-back checks for accepted files. atheris is optional (``pip install atheris``; 3.0.0
works on this Python 3.11): without it ``--engine auto`` uses the mutator. A *finding* is an exception that is not a
PncError (including MemoryError and the target's own consistency assertions), an input that runs longer than
``--timeout`` seconds, or a worker whose peak RSS passes ``--rss-mb``. Each finding is saved as
``DIR/findings/NAME.pncd`` (the file bytes, so ``pnc-pack verify`` reproduces it) with ``NAME.json`` (kind,
exception, message).

Engines: ``atheris`` (coverage-guided libFuzzer over instrumented pnc_pack code, with the structure-aware mutations
of fuzz_target.py mixed in as a custom mutator) when ``import atheris`` works, else ``mutator``: a coverage-free
loop of the same structure-aware mutations plus bit flips, byte sets, inserts, deletes and splices, keeping inputs
that produce a new (error class, message shape) as new seeds. Seeds: every file in spec/vectors/ and tests/attacks/.

The supervisor (this process) runs one worker at a time and restarts it after a finding until ``--seconds`` have
passed; hangs in the mutator engine are caught by a heartbeat (the worker writes each input to
``DIR/current.bin`` before running it). It writes ``DIR/summary.json`` (and ``--summary FILE``): executions, CPU
seconds of the workers (resource.getrusage of children), executions per CPU second, outcome counts by error class,
libFuzzer's edge coverage, line coverage of pnc_pack/format and verification.py over the final corpus (with
``--coverage`` and the ``coverage`` package), and the findings.

Run niced in the background: ``nice -n 10 python tools/fuzz.py --seconds 4200 --out /tmp/fuzz --summary
tools/fuzz_log/run-1.json``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import fuzz_target as ft  # noqa: E402  (imports no pnc_pack module)

STATS_EVERY = 2.0  # seconds between a worker's stats dumps
# Seeds up to 256 KiB: the few larger attack files (a 2.7 MB header, 1 MB of nesting) cost up to 100 ms per run and
# cut the mutator's rate about five-fold (114 executions per CPU second in tools/fuzz_log/mutator-run1.json) while
# their structure is covered by the smaller ones; tests/test_attacks.py runs them all.
MAX_SEED = 256 << 10
SEED_DIRS = (ROOT / "spec" / "vectors", ROOT / "tests" / "attacks", ROOT / "tests" / "attacks" / "regressions")


def seed_inputs() -> list[bytes]:
    """Every committed vector and attack file, each with mode 0 (as is) and mode 1 (digest recomputed)."""
    out = []
    extra = [Path(p) for p in os.environ.get("PNC_FUZZ_SEEDS", "").split(os.pathsep) if p]
    for d in (*SEED_DIRS, *extra):
        for p in sorted(d.glob("*.pncd")) if d.is_dir() else ():
            data = p.read_bytes()
            if len(data) <= MAX_SEED:
                out += [b"\x00" + data, b"\x01" + data]
    return out


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _shape(msg: str) -> str:
    """A message with numbers and quoted values blanked: its 'shape', for the mutator's novelty feedback."""
    return re.sub(r"'[^']*'|\d+", "#", msg)[:120]


class Recorder:
    """Counts outcomes in a worker and dumps them to DIR/stats-PID.json every few seconds."""

    def __init__(self, out: Path, engine: str):
        self.out = out
        self.engine = engine
        self.path = out / f"stats-{os.getpid()}.json"
        self.execs = 0
        self.outcomes: collections.Counter = collections.Counter()
        self.last = 0.0
        self.t0 = time.monotonic()

    def count(self, outcome: str) -> None:
        self.execs += 1
        self.outcomes[outcome] += 1
        now = time.monotonic()
        if now - self.last > STATS_EVERY:
            self.last = now
            self.dump()

    def dump(self) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        _atomic_json(self.path, {"engine": self.engine, "pid": os.getpid(), "execs": self.execs,
                                 "cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": time.monotonic() - self.t0,
                                 "maxrss_mb": ru.ru_maxrss / 1024, "outcomes": dict(self.outcomes)})


def save_finding(out: Path, kind: str, file_bytes: bytes, exc: BaseException | None = None, note: str = "") -> Path:
    d = out / "findings"
    d.mkdir(parents=True, exist_ok=True)
    name = f"{kind}-{hashlib.sha256(file_bytes).hexdigest()[:16]}"
    if exc is None and (d / f"{name}.json").exists():  # already saved, with its exception, by the worker
        return d / f"{name}.pncd"
    (d / f"{name}.pncd").write_bytes(file_bytes)
    info = {"kind": kind, "file": f"{name}.pncd", "size": len(file_bytes), "note": note}
    if exc is not None:
        info.update(exception=type(exc).__name__, message=str(exc)[:500],
                    traceback="".join(traceback.format_exception(exc))[-4000:])
    _atomic_json(d / f"{name}.json", info)
    return d / f"{name}.pncd"


# -- workers -----------------------------------------------------------------------------------------------------
def _limit_memory(rss_mb: int) -> None:
    # Address-space cap well above the RSS bound: a runaway allocation becomes a MemoryError (a finding) instead of
    # taking the machine down.
    cap = (rss_mb * 4) << 20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError):
        pass


def worker_mutator(args) -> int:
    out = Path(args.out)
    rec = Recorder(out, "mutator")
    rng = random.Random(args.seed)
    corpus = seed_inputs()
    seen_shapes: set = set()
    ft._mods()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cur = os.open(out / "current.bin", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + args.seconds

    class Hang(Exception):
        pass

    def on_alarm(signum, frame):
        raise Hang(f"input ran longer than {args.timeout} s")

    signal.signal(signal.SIGALRM, on_alarm)
    # every seed once as it is first (as libFuzzer does), then mutations; seeds that are findings already are skipped
    # (else a restarted worker would stop on the same seed again)
    found = {p.stem.split("-", 1)[-1] for p in (out / "findings").glob("*.pncd")}
    dry = [d for d in corpus if hashlib.sha256(ft.prepare(d)).hexdigest()[:16] not in found]
    while time.monotonic() < deadline:
        if dry:
            data = dry.pop()
        else:
            data = ft.mutate(rng.choice(corpus), rng, corpus)
            for _ in range(rng.choice([0, 0, 1, 2])):
                data = ft.mutate(data, rng, corpus)
            data = data[: 1 << 20]
        os.ftruncate(cur, 0)
        os.pwrite(cur, data, 0)
        file_bytes = ft.prepare(data)
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        try:
            outcome = ft.execute(file_bytes)
        except Hang as exc:
            save_finding(out, "hang", file_bytes, exc)
            rec.dump()
            return 3
        except BaseException as exc:  # noqa: BLE001 - anything that is not a PncError is a finding
            signal.setitimer(signal.ITIMER_REAL, 0)
            save_finding(out, "crash", file_bytes, exc)
            rec.dump()
            return 2
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        rec.count(outcome)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if rss > args.rss_mb:
            save_finding(out, "rss", file_bytes, note=f"peak RSS {rss:.0f} MB (start {base_rss:.0f} MB)")
            rec.dump()
            return 4
        if outcome != "ok" and len(corpus) < 5000:
            key = (outcome, _last_message_shape())
            if key not in seen_shapes:
                seen_shapes.add(key)
                corpus.append(data)
        elif outcome == "ok" and rng.random() < 0.05 and len(corpus) < 5000:
            corpus.append(data)
    rec.dump()
    return 0


def _last_message_shape() -> str:
    return _shape(ft._LOADED.get("last_message", ""))


def worker_atheris(args) -> int:
    import atheris

    out = Path(args.out)
    with atheris.instrument_imports(include=["pnc_pack"]):
        ft._mods()
    rec = Recorder(out, "atheris")
    others = seed_inputs()

    def target(data: bytes) -> None:
        file_bytes = ft.prepare(data)
        try:
            outcome = ft.execute(file_bytes)
        except BaseException as exc:  # noqa: BLE001
            save_finding(out, "crash", file_bytes, exc)
            rec.dump()
            raise
        rec.count(outcome)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if not data or rng.random() < 0.5:
            return atheris.Mutate(data, max_size)
        return ft.mutate(data, rng, others)[:max_size]

    corpus_dir = out / "corpus"
    corpus_dir.mkdir(exist_ok=True)
    for s in others:
        p = corpus_dir / hashlib.sha1(s).hexdigest()
        if not p.exists():
            p.write_bytes(s)
    artifacts = out / "artifacts"
    artifacts.mkdir(exist_ok=True)
    argv = [sys.argv[0], str(corpus_dir), f"-max_total_time={max(1, int(args.seconds))}",
            f"-timeout={max(1, int(round(args.timeout)))}", f"-rss_limit_mb={args.rss_mb}", "-max_len=131072",
            f"-seed={args.seed}", f"-artifact_prefix={artifacts}/", "-print_final_stats=1", "-reload=0"]
    atheris.Setup(argv, target, custom_mutator=custom_mutator)
    atheris.Fuzz()
    return 0


# -- supervisor --------------------------------------------------------------------------------------------------
def engine_available(name: str) -> bool:
    if name == "mutator":
        return True
    r = subprocess.run([sys.executable, "-c", "import atheris"], capture_output=True)
    return r.returncode == 0


def supervise(args) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if engine_available("atheris") else "mutator"
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    runs, findings, cov = [], [], {}
    seed = args.seed
    while True:
        left = deadline - time.monotonic()
        if left < 1:
            break
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--engine", engine, "--out", str(out),
               "--seconds", f"{max(1.0, left):.1f}", "--seed", str(seed), "--timeout", str(args.timeout),
               "--rss-mb", str(args.rss_mb)]
        log = open(out / f"worker-{len(runs)}.log", "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: _limit_memory(
            args.rss_mb))
        hang = _watch(proc, out, engine, args.timeout, deadline)
        log.close()
        runs.append({"seed": seed, "rc": proc.returncode, "hang_killed": hang})
        if hang:
            data = (out / "current.bin").read_bytes()
            findings.append(str(save_finding(out, "hang", ft.prepare(data), note="killed by the heartbeat")))
        findings += _collect_artifacts(out)
        cov = _libfuzzer_cov(out / f"worker-{len(runs) - 1}.log") or cov
        seed += 1
    return _summarize(args, engine, out, t0, runs, cov)


def _watch(proc, out: Path, engine: str, timeout: float, deadline: float) -> bool:
    """Wait for a worker; kill it when its current input is stale (hang) or the time is up. True on a hang kill."""
    cur = out / "current.bin"
    while proc.poll() is None:
        time.sleep(0.25)
        now = time.time()
        if engine == "mutator" and cur.exists() and now - cur.stat().st_mtime > timeout + 3:
            proc.kill()
            proc.wait()
            return True
        if time.monotonic() > deadline + 60:
            proc.terminate()
            proc.wait()
    return False


def _collect_artifacts(out: Path) -> list[str]:
    """libFuzzer's crash-/timeout-/oom- files (fuzz inputs) -> findings (file bytes)."""
    saved = []
    art = out / "artifacts"
    for p in sorted(art.glob("*")) if art.is_dir() else ():
        kind = p.name.split("-")[0]
        if kind in ("crash", "timeout", "oom", "leak", "slow"):
            path = save_finding(out, {"timeout": "hang", "oom": "rss"}.get(kind, kind), ft.prepare(p.read_bytes()),
                                note=f"libFuzzer artifact {p.name}")
            saved.append(str(path))
            p.rename(p.with_name("done-" + p.name))
            # a crashing corpus entry would crash every restarted worker at once: take it out (libFuzzer and our
            # seed copies name corpus files by the sha1 of their bytes, as libFuzzer names its artifacts)
            (out / "corpus" / p.name.split("-", 1)[-1]).unlink(missing_ok=True)
    return saved


def _libfuzzer_cov(log: Path) -> dict:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return {}
    m = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", text)
    if not m:
        return {}
    c, f, k = m[-1]
    return {"libfuzzer_edges": int(c), "libfuzzer_features": int(f), "corpus_inputs": int(k)}


def _summarize(args, engine: str, out: Path, t0: float, runs: list, cov: dict) -> dict:
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = [json.loads(p.read_text()) for p in sorted(out.glob("stats-*.json"))]
    execs = sum(s["execs"] for s in stats)
    worker_cpu = sum(s["cpu_s"] for s in stats)
    outcomes: collections.Counter = collections.Counter()
    for s in stats:
        outcomes.update(s["outcomes"])
    findings = []
    for p in sorted((out / "findings").glob("*.json")) if (out / "findings").is_dir() else ():
        f = json.loads(p.read_text())
        f.pop("traceback", None)
        findings.append(f)
    import msgpack
    import zstandard

    summary = {
        "tool": "tools/fuzz.py", "engine": engine, "seed": args.seed, "seconds_requested": args.seconds,
        "wall_s": round(wall, 1), "cpu_s_children": round(ru.ru_utime + ru.ru_stime, 1),
        "cpu_s_workers": round(worker_cpu, 1), "cpu_hours": round((ru.ru_utime + ru.ru_stime) / 3600, 3),
        "executions": execs, "exec_per_cpu_s": round(execs / worker_cpu, 1) if worker_cpu else None,
        "exec_per_wall_s": round(execs / wall, 1) if wall else None,
        "outcomes": dict(sorted(outcomes.items())), "unique_error_classes": sorted(k for k in outcomes if k != "ok"),
        "coverage": cov, "findings": findings, "worker_runs": runs, "timeout_s": args.timeout,
        "rss_bound_mb": args.rss_mb, "seed_inputs": len(seed_inputs()),
        "limits": "defaults, except max_payload_raw = max_payload_compressed = 256 MiB (tools/fuzz_target.py)",
        "versions": {"python": platform.python_version(), "zstandard": zstandard.__version__,
                     "msgpack": ".".join(map(str, msgpack.version))},
    }
    if args.coverage:
        summary["line_coverage"] = line_coverage(out)
    _atomic_json(out / "summary.json", summary)
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        _atomic_json(Path(args.summary), summary)
    return summary


def line_coverage(out: Path) -> dict:
    """Replay the final corpus (and the seeds) in a fresh process under coverage.py; line coverage per module."""
    code = (
        "import sys, json, coverage\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "cov = coverage.Coverage(data_file=None, include=['*/pnc_pack/format/*', '*/pnc_pack/verification.py',"
        " '*/pnc_pack/refs.py'])\n"
        "cov.start()\n"
        "from tools import fuzz, fuzz_target as ft\n"
        "from pathlib import Path\n"
        f"inputs = fuzz.seed_inputs() + [p.read_bytes() for p in sorted(Path({str(out / 'corpus')!r}).glob('*'))]\n"
        "for d in inputs:\n"
        "    try: ft.run_input(d)\n"
        "    except BaseException: pass\n"
        "cov.stop()\n"
        "res = {}\n"
        "for f in sorted(cov.get_data().measured_files()):\n"
        "    _, stmts, _, missing, _ = cov.analysis2(f)\n"
        "    res[f.split('pnc_pack/')[-1]] = round(100 * (1 - len(missing) / max(1, len(stmts))), 1)\n"
        "tot = cov.report(file=open('/dev/null', 'w'))\n"
        "print(json.dumps({'total_percent': round(tot, 1), 'inputs': len(inputs), 'per_file_percent': res}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["coverage failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", choices=("auto", "atheris", "mutator"), default="auto")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds one input may run (a hang beyond)")
    ap.add_argument("--rss-mb", type=int, default=1536, help="peak RSS of a worker that counts as a finding")
    ap.add_argument("--summary", help="also write the summary JSON here (e.g. tools/fuzz_log/NAME.json)")
    ap.add_argument("--coverage", action="store_true", help="measure line coverage over the final corpus")
    ap.add_argument("--seeds", action="append", default=[], help="another folder of seed files (repeatable)")
    ap.add_argument("--selftest", choices=("crash", "hang"),
                    help="plant a fake bug (an accepted file with punctuation in a label name crashes or hangs) to "
                         "check that findings are caught and saved")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.selftest:
        os.environ["PNC_FUZZ_SELFTEST"] = args.selftest
        ft.SELFTEST = args.selftest
    if args.seeds:
        os.environ["PNC_FUZZ_SEEDS"] = os.pathsep.join(str(Path(d).resolve()) for d in args.seeds)
    if args.worker:
        return worker_atheris(args) if args.engine == "atheris" else worker_mutator(args)
    s = supervise(args)
    print(json.dumps({k: s[k] for k in ("engine", "executions", "cpu_s_children", "exec_per_cpu_s",
                                        "unique_error_classes", "coverage")}, sort_keys=True))
    print(f"findings: {len(s['findings'])}" + "".join(f"\n  {f['kind']}: {f['file']} {f.get('exception', '')} "
                                                      f"{f.get('message', f.get('note', ''))[:160]}"
                                                      for f in s["findings"]))
    return 1 if s["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
