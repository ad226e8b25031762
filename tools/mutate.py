"""Structure-aware mutation fuzzer: one field at a time, re-encoded canonically, re-digested and re-signed.

    python -m tools.mutate [--vector NAME ...] [--sample N] [--seed S] [--verbose]

A valid delta (by default the valid vectors of spec/vectors/ signed by the test keys or unsigned) is decoded into
its preamble, header value, payload and signatures. Then every field of the header, over every type, is changed
once: a value of another msgpack type, a boolean or a float where an integer is required, a trailing newline, an
out-of-range or too long value, a missing or an extra key, and the field-specific changes that are valid (a
different commit, another label name) or break a rule between fields (a position past its block count, a label
for a class that is not cloned). The preamble, the payload and the signature section get a few changes too. Each
mutant is re-encoded canonically (so that it reaches the schema rules, not the msgpack ones), given a correct
digest, and re-signed by the keys that signed the original; then the reader's verdict (accept, or the class of the
error) is compared with the verdict the spec gives for that change, written next to the change below.

The expectations come from spec/clone-delta-v1.md, not from pnc_pack.format.header: a wrong type is FormatError
everywhere (§4.0), a name past ``max_name`` LimitError, a reference's content ReferenceError (§4.2), an unknown
feature or encoding VersionError; a change that breaks a value's own rule and a rule relating it to another value
gets the class of its own rule (§4.8). Exit status 1 when a verdict differs (each is printed), else 0.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import random
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from tools.mutate_cases import (
    DELETE,
    FREE,
    OK,
    F,
    L,
    S,
    V,
    array_cases,
    get,
    int_cases,
    map_cases,
    str_cases,
    type_swaps,
)

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "spec" / "vectors"
DEFAULT_VECTORS = ("valid-minimal", "valid-signed-two", "valid-f16-local", "valid-bf16-two-modules",
                   "valid-three-modules-all-dtypes", "valid-newer-minor-optional-fields")
MAGIC = b"\x89PNCD\r\n\x1a"
CONTEXT = b"pnc-pack clone-delta v1 digest\n"


@dataclass
class File:
    """A decoded delta: what a mutation changes, and what encode() writes back."""

    major: int
    minor: int
    flags: int
    header: Any
    payload: bytes
    signatures: list[tuple[bytes, bytes]]
    keys: dict[bytes, Any]  # public key -> private key, for the signatures we can make again


@dataclass(frozen=True)
class Mutant:
    where: str  # e.g. "header.modules[0].target_position"
    change: str  # e.g. "bool-for-int"
    expect: str  # "ok" or an error class name
    data: bytes


# -- decoding and encoding -----------------------------------------------------------------------------------------
def test_keys() -> dict[bytes, Any]:
    from pnc_pack.format.signing import private_key_from_seed, public_key_bytes

    keys = [private_key_from_seed(hashlib.sha256(f"pnc-pack clone-delta v1 test key {n}".encode()).digest())
            for n in "ab"]
    return {public_key_bytes(k): k for k in keys}


def decode(data: bytes) -> File:
    from pnc_pack.format import canonical

    _, major, minor, flags, h, p = struct.unpack_from("<8sHHIQQ", data)
    (n,) = struct.unpack_from("<I", data, 64 + h + p)
    at = 68 + h + p
    sigs = [(data[at + 96 * i:at + 96 * i + 32], data[at + 96 * i + 32:at + 96 * i + 96]) for i in range(n)]
    header = canonical.unpackb(data[32:32 + h])
    return File(major, minor, flags, header, data[32 + h:32 + h + p], sigs, test_keys())


def encode(f: File, *, resign: bool = True) -> bytes:
    """Canonical header, correct digest, signatures made again by the same (test) keys."""
    from pnc_pack.format import canonical

    hb = canonical.packb(f.header, max_depth=64)
    body = struct.pack("<8sHHIQQ", MAGIC, f.major, f.minor, f.flags, len(hb), len(f.payload)) + hb + f.payload
    digest = hashlib.sha256(body).digest()
    sigs = [(pk, f.keys[pk].sign(CONTEXT + digest)) if resign and pk in f.keys else (pk, sig)
            for pk, sig in f.signatures]
    return body + digest + struct.pack("<I", len(sigs)) + b"".join(pk + sig for pk, sig in sigs)


def verdict(data: bytes) -> str:
    """The reader's verdict: "ok", an error class name, or "crash: ..." for anything that is not a PncError."""
    from pnc_pack.errors import PncError
    from pnc_pack.format import codec

    try:
        codec.decode(data)
        return OK
    except PncError as exc:
        return type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - a crash is a finding
        return f"crash: {type(exc).__name__}: {exc}"


# -- walking the header --------------------------------------------------------------------------------------------
def walk(v: Any, path: tuple = (), pattern: str = "") -> Iterator[tuple[tuple, str, Any]]:
    """(path, pattern, value) of every schema value; the free maps are visited but not entered."""
    yield path, pattern, v
    if pattern in FREE and pattern != "classifier_args":
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if pattern == "classifier_args" and k != "num_outputs":
                continue
            star = pattern.endswith("files") or pattern == "tensors"
            sub = "*" if star else k
            yield from walk(x, path + (k,), f"{pattern}.{sub}" if pattern else sub)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from walk(x, path + (i,), f"{pattern}.*")


def name(path: tuple) -> str:
    return "header" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def put(h: Any, path: tuple, value: Any) -> Any:
    """A deep copy of ``h`` with the value at ``path`` replaced (or removed with DELETE)."""
    h = copy.deepcopy(h)
    parent = get(h, path[:-1])
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return h


def header_mutants(f: File) -> Iterator[tuple[str, str, Any, str]]:
    """(where, change, the new header (a function making it), verdict) for every field of the header."""
    h = f.header
    ignored = set(h.get("optional_fields", [])) if f.minor > 0 else set()  # fields of a newer minor: not ours
    for path, pattern, v in walk(h):
        if not path:
            continue
        where = name(path)
        if any(pattern == p or pattern.startswith(p + ".") for p in ignored):
            if pattern in ignored:  # a listed unknown field is ignored whatever it holds (§9)
                yield where, "ignored-field-other-value", _later(put, h, path, {"x": [1, b"\x00"]}), OK
                yield where, "ignored-field-missing", _later(put, h, path, DELETE), OK
            continue
        for change, value in type_swaps(v, pattern):
            yield where, change, _later(put, h, path, value), F
        if isinstance(v, str):
            for change, value, exp in str_cases(h, path, pattern, v):
                yield where, change, _later(put, h, path, value), exp
        elif type(v) is int:
            for change, value, exp in int_cases(h, path, pattern, v):
                yield where, change, _later(put, h, path, value), exp
        elif isinstance(v, bytes) and pattern == "modules.*.masks.*.bits":
            filters = get(h, path[:-1])["filters"]
            flipped = bytes([v[0] ^ 1]) + v[1:]
            yield where, "kept-bit-flipped", _later(put, h, path, flipped), OK
            pad = filters % 8
            if pad:
                yield where, "padding-bit-set", _later(put, h, path, v[:-1] + bytes([v[-1] | 0x80])), F
            yield where, "extra-byte", _later(put, h, path, v + b"\x00"), F
        elif isinstance(v, list):
            for change, value, exp in array_cases(h, path, pattern, v):
                yield where, change, _later(put, h, path, value), exp
        elif isinstance(v, dict):
            for kpath, change, value, exp in map_cases(h, path, pattern, v):
                if f"{pattern}.{kpath[-1]}" in ignored:
                    exp = OK  # dropping an ignored field of a newer minor
                yield name(kpath), change, _later(put, h, kpath, value), exp
    first = next(iter(h["tensors"]))
    yield "header.tensors", "tensor-name-too-long", _later(_renamed, h, first, "zz." + "t" * 300), L  # its own rule first: not the index mismatch
    for k in list(h):
        yield f"header.{k}", "missing", _later(put, h, (k,), DELETE), OK if k in ignored else F
    yield "header.zz_extra", "extra-key", _later(put, h, ("zz_extra",), 1), F  # unknown and not listed


def _later(fn, *args):
    return lambda: fn(*args)


def _renamed(h: Any, old: str, new: str) -> Any:
    h = copy.deepcopy(h)
    h["tensors"][new] = h["tensors"].pop(old)
    return h


def mutants(data: bytes, rng: random.Random | None = None, sample: int | None = None) -> Iterator[Mutant]:
    """Every mutant of the valid delta ``data``, or ``sample`` of them picked by ``rng`` (only those are built)."""
    f = decode(data)
    todo = [(w, c, (lambda make=make: _with(f, header=make())), e) for w, c, make, e in header_mutants(f)]
    todo += [(m.where, m.change, (lambda m=m: m.data), m.expect) for m in _container_mutants(f)]
    if sample is not None and sample < len(todo):
        todo = (rng or random.Random(0)).sample(todo, sample)
    for where, change, build, exp in todo:
        yield Mutant(where, change, exp, build())


def _with(f: File, **kw) -> bytes:
    g = copy.copy(f)
    for k, v in kw.items():
        setattr(g, k, v)
    return encode(g)


def _container_mutants(f: File) -> Iterator[Mutant]:
    import zstandard

    yield Mutant("preamble.major", "major-2", V, _with(f, major=2))
    yield Mutant("preamble.minor", "minor-without-header-version", F, _with(f, minor=f.minor + 1))
    newer = put(f.header, ("version",), [1, f.minor + 1])
    yield Mutant("preamble.minor", "newer-minor-no-new-field", OK, _with(f, minor=f.minor + 1, header=newer))
    yield Mutant("preamble.flags", "flags-1", F, _with(f, flags=1))
    yield Mutant("payload", "trailing-byte", F, _with(f, payload=f.payload + b"\x00"))
    blob = zstandard.ZstdDecompressor().decompress(f.payload)
    yield Mutant("payload", "checksum-added", OK, _with(f, payload=zstandard.ZstdCompressor(
        write_checksum=True, write_content_size=True).compress(blob)))
    for tname, e in f.header["tensors"].items():
        if e["dtype"] == "BOOL" and 0 not in e["shape"]:
            from pnc_pack.format.payload import plan

            layout = plan({n: (x["dtype"], tuple(x["shape"])) for n, x in f.header["tensors"].items()})
            at = next(r.start for r in layout.regions if r.name == tname)
            bad = blob[:at] + b"\x02" + blob[at + 1:]
            yield Mutant(f"payload[{tname}]", "bool-byte-2", F, _with(f, payload=zstandard.ZstdCompressor(
                write_content_size=True).compress(bad)))
    if f.signatures:
        yield Mutant("signatures", "all-removed", OK, _with(f, signatures=[]))
        pk, sig = f.signatures[0]
        yield Mutant("signatures[0]", "flipped-bit", S,
                     encode(_copy(f, signatures=[(pk, bytes([sig[0] ^ 1]) + sig[1:])] + f.signatures[1:],
                                  keys={}), resign=False))
        yield Mutant("signatures", "duplicated", F, encode(_copy(f, signatures=[f.signatures[0]] + f.signatures)))
        if len(f.signatures) > 1:
            yield Mutant("signatures", "unsorted", F, encode(_copy(f, signatures=list(reversed(f.signatures)))))
        identity = (1).to_bytes(32, "little")  # a small-order point: no signature by it counts (§7)
        yield Mutant("signatures", "small-order-key", S,
                     encode(_copy(f, signatures=sorted(f.signatures + [(identity, identity + bytes(32))]))))


def _copy(f: File, **kw) -> File:
    g = copy.copy(f)
    for k, v in kw.items():
        setattr(g, k, v)
    return g


# -- running -------------------------------------------------------------------------------------------------------
def run(vectors=DEFAULT_VECTORS, sample: int | None = None, seed: int = 0,
        report: Callable[[str], None] | None = None) -> tuple[int, list[tuple[Mutant, str]]]:
    """(mutants run, mismatches as (mutant, verdict)); ``sample`` picks that many mutants per vector, seeded."""
    rng = random.Random(seed)
    total, bad = 0, []
    for vec in vectors:
        for m in mutants((VECTORS / f"{vec}.pncd").read_bytes(), rng, sample):
            got = verdict(m.data)
            total += 1
            if got != m.expect:
                bad.append((m, got))
                if report:
                    report(f"{vec}: {m.where} {m.change}: spec says {m.expect}, reader says {got}")
    return total, bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vector", action="append", help="a valid vector's name (default: the valid vectors)")
    ap.add_argument("--sample", type=int, help="run this many mutants per vector (seeded), not all")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    total, bad = run(tuple(args.vector or DEFAULT_VECTORS), args.sample, args.seed, report=print)
    print(f"{total} mutants, {len(bad)} verdicts differ from the spec")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
