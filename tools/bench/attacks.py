"""Bounded resources on hostile and large inputs: peak RSS and time of reading every attack file and size-scaled
valid files, each in a fresh process.

    python -m tools.bench attacks [--quick] [--sizes 1,4,16,64,256]

For every file of tests/attacks/ (and tests/attacks/regressions/), one process per reader path:

- ``verify``: ``pnc_pack.verification.verify(path)`` (what ``pnc-pack verify`` runs);
- ``inspect``: ``codec.decode`` + ``summarize`` + ``render_text`` (what ``pnc-pack inspect`` runs);

and for valid deltas whose tensor data is N MiB (N in ``--sizes``), random bytes (incompressible: file ~ N MiB)
and zeros (the file is a few KiB, the raw payload N MiB: the largest legitimate expansion). Each process imports
first, records its peak RSS (``VmHWM`` of /proc/self/status: ``ru_maxrss`` would include the parent's peak, which
Linux carries over fork), then reads the file and records the peak again and the wall and CPU time of the read.
Reported: ``rss_growth_mb`` (peak after minus peak before the read) against the file size and the raw payload
size, and MB/s of raw payload for the valid files (time linear in size).
Writes tools/bench/results/attacks.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results" / "attacks.json"

CHILD = r"""
import json, resource, sys, time
from pnc_pack.errors import PncError
from pnc_pack.format import codec
from pnc_pack.format.summary import render_text, summarize
from pnc_pack.verification import verify
path, mode = sys.argv[1], sys.argv[2]

def peak_kib():
    # VmHWM of this process (the mm is new since execve); ru_maxrss would carry the parent's peak from fork
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

rss0 = peak_kib()
t0, c0 = time.perf_counter(), time.process_time()
outcome = "ok"
raw = None
try:
    if mode == "verify":
        r = verify(path)
        if not r.ok:
            outcome = type(r._exceptions[0]).__name__ if r._exceptions else "failed"
        elif r.delta is not None:
            raw = sum(t.nbytes for t in r.delta.tensors().values())
    else:
        d, info = codec.decode(codec.read_bytes(path))
        render_text(summarize(d, info))
        raw = info.payload_raw
except PncError as exc:
    outcome = type(exc).__name__
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
rss1 = peak_kib()
print(json.dumps({"outcome": outcome, "wall_s": wall, "cpu_s": cpu, "rss_before_mb": rss0 / 1024,
                  "rss_peak_mb": rss1 / 1024, "rss_growth_mb": (rss1 - rss0) / 1024, "raw": raw}))
"""


def measure(path: Path, mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    if proc.returncode != 0:
        return {"outcome": f"process failed rc={proc.returncode}", "stderr": proc.stderr[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def valid_file(folder: Path, mib: int, kind: str) -> Path:
    """A valid delta with one U8 adapter tensor of ``mib`` MiB of random bytes or zeros (plain zstd, level 1)."""
    import dataclasses
    import random

    from pnc_pack.format import codec
    from pnc_pack.format.delta import RawTensor
    from pnc_pack.format.testing import make_delta

    d = make_delta(1)
    m = d.modules[0]
    n = mib << 20
    rng = random.Random(mib)
    data = b"".join(rng.randbytes(1 << 20) for _ in range(mib)) if kind == "random" else bytes(n)
    m = dataclasses.replace(m, adapter={**m.adapter, "big": RawTensor("U8", (n,), data)})
    path = folder / f"valid-{kind}-{mib}mib.pncd"
    codec.save(dataclasses.replace(d, modules=(m,)), path, encoding="zstd", level=1)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 1,16 MiB only")
    ap.add_argument("--sizes", default="1,4,16,64,256")
    args = ap.parse_args(argv)
    sizes = [1, 16] if args.quick else [int(s) for s in args.sizes.split(",")]
    attacks_dir = ROOT / "tests" / "attacks"
    index = {a["file"]: a for a in json.loads((attacks_dir / "index.json").read_text())["attacks"]}
    files = sorted(attacks_dir.glob("*.pncd")) + sorted((attacks_dir / "regressions").glob("*.pncd"))
    rows = []
    for p in files:
        want = index.get(p.name, {}).get("error", "(regression)")
        for mode in ("verify", "inspect"):
            r = measure(p, mode)
            rows.append({"file": str(p.relative_to(ROOT)), "kind": "attack", "mode": mode,
                         "expected": want or "ok", "size": p.stat().st_size, **r})
            print(f"{p.name:42} {mode:7} {r.get('outcome', '?'):15} {r.get('wall_s', 0):7.3f} s "
                  f"+{r.get('rss_growth_mb', 0):7.1f} MB", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("random", "zeros"):
            for mib in sizes:
                p = valid_file(Path(tmp), mib, kind)
                for mode in ("verify", "inspect"):
                    r = measure(p, mode)
                    raw_mb = (r.get("raw") or 0) / 2**20
                    rows.append({"file": p.name, "kind": f"valid-{kind}", "mode": mode, "expected": "ok",
                                 "size": p.stat().st_size, "tensor_mib": mib, **r,
                                 "raw_mb_per_s": round(raw_mb / r["wall_s"], 1) if r.get("wall_s") else None,
                                 "rss_growth_per_raw": round(r["rss_growth_mb"] / raw_mb, 2) if raw_mb else None})
                    print(f"{p.name:42} {mode:7} {r.get('outcome', '?'):15} {r.get('wall_s', 0):7.3f} s "
                          f"+{r.get('rss_growth_mb', 0):7.1f} MB  ({rows[-1]['raw_mb_per_s']} MB/s)", flush=True)
    attack_rows = [r for r in rows if r["kind"] == "attack"]
    mismatched = [r["file"] for r in attack_rows if r["expected"] not in ("(regression)",) and
                  r["mode"] == "verify" and r["outcome"] != r["expected"] and r["expected"] != "SignatureError"]
    summary = {
        "attacks": len(files),
        "attack_max_rss_growth_mb": round(max(r.get("rss_growth_mb", 0) for r in attack_rows), 1),
        "attack_max_wall_s": round(max(r.get("wall_s", 0) for r in attack_rows), 3),
        "attack_outcome_mismatches": mismatched,
        "valid": [{k: r.get(k) for k in ("kind", "mode", "tensor_mib", "size", "wall_s", "cpu_s", "rss_growth_mb",
                                          "raw_mb_per_s", "rss_growth_per_raw")}
                  for r in rows if r["kind"].startswith("valid")],
    }
    out = {"benchmark": "attacks", "command": "python -m tools.bench attacks" + (" --quick" if args.quick else ""),
           "python": platform.python_version(), "machine": platform.machine(), "summary": summary, "rows": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
