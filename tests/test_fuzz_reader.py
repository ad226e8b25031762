"""A short, deterministic fuzz of the reader in the test suite (the long runs are tools/fuzz.py; their logs are in
tools/fuzz_log/). Properties: whatever the bytes, load / verify / inspect end in a PncError or a consistent accept
(tools/fuzz_target.execute raises on anything else); canonical msgpack round-trips every header value and refuses
every other encoding of it."""

import random
import sys
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pnc_pack.errors import FormatError, LimitError, PncError
from pnc_pack.format import canonical

ROOT = Path(__file__).resolve().parents[1]

from tools import fuzz_target as ft

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

SEEDS = [b"\x01" + p.read_bytes() for p in sorted((ROOT / "spec" / "vectors").glob("*.pncd"))
         if p.stat().st_size < 20000]
FAST = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(FAST, max_examples=1500)
@given(st.sampled_from(range(len(SEEDS))), st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_structured_mutations_end_in_a_typed_error_or_accept(i, seed, rounds):
    rng = random.Random(seed)
    data = SEEDS[i]
    for _ in range(rounds):
        data = ft.mutate(data, rng, SEEDS)
    outcome = ft.run_input(data)
    assert outcome == "ok" or outcome.endswith("Error")


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_a_valid_preamble(tail):
    data = SEEDS[0][1:33] + tail
    assert ft.execute(data) != "ok"
    assert ft.execute(b"\x01" + data)  # a random (non-)file as a fuzz input too


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@FAST
@given(VALUES)
def test_canonical_round_trip_and_other_encodings_refused(value):
    data = canonical.packb(value)
    assert canonical.unpackb(data) == canonical.to_canonical(value)
    others = [msgpack.packb(_reversed_maps(value), use_bin_type=True)]
    try:
        others.append(msgpack.packb(value, use_bin_type=True, use_single_float=True))
    except OverflowError:  # a float beyond float32's range
        pass
    for other in others:
        if other != data:
            with pytest.raises(FormatError):
                canonical.unpackb(other)


def _reversed_maps(v):
    if isinstance(v, dict):
        return {k: _reversed_maps(x) for k, x in reversed(list(v.items()))}
    if isinstance(v, list):
        return [_reversed_maps(x) for x in v]
    return v


@FAST
@given(st.binary(max_size=2000))
def test_canonical_unpack_of_arbitrary_bytes(data):
    try:
        value = canonical.unpackb(data)
    except (FormatError, LimitError):
        return
    assert canonical.packb(value) == data  # accepted means canonical


def test_fuzz_runner_catches_a_planted_bug(tmp_path, monkeypatch):
    """tools/fuzz.py (the coverage-free engine, which needs no atheris) runs, counts, writes its summary, and turns
    a planted bug (--selftest: an accepted file with punctuation in a label name raises) into a saved finding whose
    file reproduces it."""
    import dataclasses
    import json
    import subprocess

    from pnc_pack.format import codec
    from pnc_pack.format.delta import LabelEntry
    from pnc_pack.format.testing import make_delta

    d = make_delta(1)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "planted.pncd").write_bytes(codec.dumps(dataclasses.replace(
        d, labels=(LabelEntry("target", 0, "digit-0"),) + d.labels[1:])))
    out = tmp_path / "fuzz"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz.py"), "--seconds", "3", "--out", str(out),
                           "--seed", "3", "--engine", "mutator", "--selftest", "crash", "--seeds", str(seeds)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # 1: there are findings
    s = json.loads((out / "summary.json").read_text())
    assert s["executions"] > 0 and s["cpu_s_children"] > 0
    assert set(s["unique_error_classes"]) <= {"FormatError", "LimitError", "VersionError", "IntegrityError",
                                              "ReferenceError", "SignatureError"}
    assert s["findings"] and all(f["exception"] == "SelfTestFinding" for f in s["findings"])
    monkeypatch.setattr(ft, "SELFTEST", "crash")
    for f in s["findings"]:
        with pytest.raises(ft.SelfTestFinding):
            ft.execute((out / "findings" / f["file"]).read_bytes())
    monkeypatch.setattr(ft, "SELFTEST", "")
    assert ft.execute((out / "findings" / s["findings"][0]["file"]).read_bytes()) == "ok"
    assert PncError  # the error tree the outcomes come from
