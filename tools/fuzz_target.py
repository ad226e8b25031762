"""What the fuzzer runs on one input, and the structure-aware mutations it uses (shared by tools/fuzz.py, the
regression tests in tests/attacks/regressions/ and the hypothesis test in tests/test_fuzz_reader.py).

A fuzz *input* is one mode byte followed by a file. Mode bit 0 set: the digest is recomputed over the (mutated)
preamble, header and payload before the file is read, so that mutations get past the integrity check and reach the
msgpack, schema, payload and signature checks; bit 0 clear: the bytes are read as they are. :func:`prepare` turns an
input into the file bytes (what a crasher file holds: ``pnc-pack verify CRASHER`` reproduces it).

:func:`execute` runs every reader path a deployment pipeline takes on a file: ``verify`` (structure, digest,
signature policy, references), ``codec.decode`` with strict signatures (``load``), the ``inspect`` summary, its JSON
and its text (which must hold no non-printable character), writing the accepted delta back (it must give the
file's bytes, so signatures stay valid), and, for a 1.0 file, a fresh re-encode whose header bytes must equal the
file's (the reader accepts only canonical headers, so the writer must reproduce them). Any PncError is an expected
outcome; any other exception, a mismatch, a hang or excessive memory is a *finding*.

No pnc_pack module is imported at import time: atheris must instrument them when the worker imports them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct

PREAMBLE = struct.Struct("<8sHHIQQ")
MAGIC = b"\x89PNCD\r\n\x1a"


def fuzz_limits():
    """The limits the fuzzer reads with: the defaults, except 256 MiB for the raw and compressed payload so that the
    RSS bound of a finding (see tools/fuzz.py) is meaningful. Every other limit is the default."""
    from pnc_pack.format.limits import Limits

    return Limits(max_payload_raw=256 << 20, max_payload_compressed=256 << 20)


def fix_digest(body: bytes) -> bytes:
    """``body`` with the digest recomputed, if the preamble's lengths leave room for one."""
    if len(body) < 32:
        return body
    h, p = struct.unpack_from("<QQ", body, 16)
    end = 32 + h + p
    if end + 32 > len(body):
        return body
    return body[:end] + hashlib.sha256(body[:end]).digest() + body[end + 32:]


def prepare(data: bytes) -> bytes:
    """Fuzz input (mode byte + file) -> the file bytes that are read."""
    if not data:
        return b""
    mode, body = data[0], bytes(data[1:])
    return fix_digest(body) if mode & 1 else body


SELFTEST = os.environ.get("PNC_FUZZ_SELFTEST", "")  # tools/fuzz.py --selftest crash|hang: plant a fake bug


class SelfTestFinding(RuntimeError):
    """The planted bug of ``--selftest`` (checks that findings are caught, saved and reproducible)."""


class RoundTripMismatch(AssertionError):
    """An accepted 1.0 file whose re-encoded header differs from the file's header (a finding)."""


_LOADED = {}


def _mods():
    if not _LOADED:
        from pnc_pack.errors import PncError
        from pnc_pack.format import codec, container
        from pnc_pack.format.summary import render_text, summarize
        from pnc_pack.verification import verify

        _LOADED.update(PncError=PncError, codec=codec, container=container, summarize=summarize, verify=verify,
                       render_text=render_text, limits=fuzz_limits())
    return _LOADED


def execute(file_bytes: bytes) -> str:
    """Run the reader paths on a file's bytes. Returns ``"ok"`` or the PncError class name; any other exception
    propagates (a finding)."""
    m = _mods()
    limits = m["limits"]
    report = m["verify"](file_bytes, limits=limits)
    try:
        delta, info = m["codec"].decode(file_bytes, limits=limits)
    except m["PncError"] as exc:
        if report.ok:
            raise AssertionError(f"verify accepts what decode refuses ({type(exc).__name__}: {exc})") from None
        first = report._exceptions[0] if report._exceptions else None
        if type(first) is not type(exc):
            raise AssertionError(f"verify fails with {type(first).__name__}, decode with {type(exc).__name__}")
        m["last_message"] = str(exc)
        return type(exc).__name__
    if not report.ok:
        raise AssertionError(f"verify refuses what decode accepts: {report.errors}")
    if SELFTEST and any(not c.isalnum() and c != " " for e in delta.labels for c in e.name):
        if SELFTEST == "hang":
            import time

            time.sleep(30)
        raise SelfTestFinding("self-test: an accepted file with punctuation in a label name")
    try:
        summary = m["summarize"](delta, info)
        json.dumps(summary, sort_keys=True, ensure_ascii=False)
        text = m["render_text"](summary)
        if any(not (c.isprintable() or c == "\n") for c in text):
            raise AssertionError("inspect text output holds a non-printable character from the file")
        if m["codec"].dumps(delta, limits=limits) != file_bytes:
            raise RoundTripMismatch("an accepted file is not written back as its own bytes")
        if info.version == (1, 0):
            again = m["codec"].dumps_unsigned(delta, encoding=info.encoding, limits=limits)
            header = m["container"].parse(again + b"\0" * 4, limits).header  # + an empty signature section
            if header != m["container"].parse(file_bytes, limits).header:
                raise RoundTripMismatch("accepted 1.0 file re-encodes to a different header")
    except m["PncError"] as exc:
        raise AssertionError(f"an accepted file cannot be summarized or re-encoded: {type(exc).__name__}: {exc}"
                             ) from None
    return "ok"


def run_input(data: bytes) -> str:
    return execute(prepare(data))


# -- structure-aware mutations -----------------------------------------------------------------------------------
INTERESTING_INTS = [0, 1, -1, 2, 7, 8, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
                    2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1, -(2**31), -(2**63), 1 << 40]
INTERESTING_STRS = ["", ".", "..", "../x", "a/b", "a\\b", "\x00", "x\x1f", "\x7f", "main", "refs/heads/main",
                    "evilnet", "os:system", "os.system", "__import__", "source:0", "source:1", "source:01",
                    "source:-1", "target", "F32", "BF16", "U4", "zstd", "zstd+bytegroup", "x" * 256,
                    "\u00e9\u6570", "\ud7ff", "a" * 40, "0" * 40, "A" * 40, "classifier.weight", "modules.0.adapter.x"]
U64 = [0, 1, 31, 32, 33, 64, 100, 1 << 16, (1 << 24) + 1, 1 << 31, 1 << 32, 1 << 62, (1 << 64) - 1]


def _split(body: bytes):
    """(preamble fields, header, payload, signature section) of a well-formed-enough file, or None."""
    if len(body) < 32 or body[:8] != MAGIC:
        return None
    magic, major, minor, flags, h, p = PREAMBLE.unpack_from(body)
    if 32 + h + p + 36 > len(body):
        return None
    return (major, minor, flags), body[32:32 + h], body[32 + h:32 + h + p], body[32 + h + p + 32:]


def _join(fields, header: bytes, payload: bytes, sigs: bytes) -> bytes:
    major, minor, flags = fields
    pre = PREAMBLE.pack(MAGIC, major & 0xFFFF, minor & 0xFFFF, flags & 0xFFFFFFFF, len(header), len(payload))
    body = pre + header + payload
    return body + hashlib.sha256(body).digest() + sigs


def _walk(obj, path=()):
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, path + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _new_value(rng: random.Random, old):
    r = rng.random()
    if isinstance(old, bool):
        return not old
    if isinstance(old, int) and r < 0.5:
        return rng.choice([old + 1, old - 1, old * 2, -old, old ^ (1 << rng.randrange(64))])
    if isinstance(old, str) and r < 0.4:
        s = list(old)
        if s:
            s[rng.randrange(len(s))] = rng.choice("./\\\x00:-_aZ9\u00e9")
        return "".join(s) if rng.random() < 0.7 else old + old
    if isinstance(old, bytes) and r < 0.4:
        return old + b"\x00" if rng.random() < 0.5 else bytes(b ^ 0xFF for b in old)
    choice = rng.randrange(10)
    if choice == 0:
        return rng.choice(INTERESTING_INTS)
    if choice == 1:
        return rng.choice(INTERESTING_STRS)
    if choice == 2:
        return rng.choice([None, True, False, 0.5, -0.0, 1e308, b"", b"\xff" * rng.randrange(1, 40)])
    if choice == 3:
        return [old] * rng.choice([0, 1, 2, 3, 100])
    if choice == 4:
        return {"x": old} if rng.random() < 0.5 else {}
    if choice == 5:  # nesting
        v = old
        for _ in range(rng.choice([2, 30, 31, 32, 33, 200])):
            v = [v]
        return v
    if choice == 6 and isinstance(old, list) and old:
        out = list(old)
        rng.shuffle(out)
        return out + [out[0]] if rng.random() < 0.5 else out
    if choice == 7 and isinstance(old, dict) and old:
        out = dict(old)
        out.pop(rng.choice(list(out)))
        return out
    if choice == 8 and isinstance(old, dict):
        return {**old, rng.choice(["surprise", "repo_id", "local_path", "commit", "x.y"]): rng.choice([1, "a"])}
    return rng.choice(INTERESTING_INTS + INTERESTING_STRS)


def mutate_header(body: bytes, rng: random.Random) -> bytes | None:
    """Decode the header leniently, change one value (or a few), re-encode (canonically, mostly), re-forge."""
    import msgpack

    sp = _split(body)
    if sp is None:
        return None
    fields, header, payload, sigs = sp
    try:
        value = msgpack.unpackb(header, raw=False, strict_map_key=False, max_bin_len=1 << 20, max_str_len=1 << 16,
                                max_array_len=1 << 16, max_map_len=1 << 16)
    except Exception:
        return None
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        nodes = list(_walk(value))
        path, old = rng.choice(nodes)
        if not path:
            continue
        try:
            _set(value, path, _new_value(rng, old))
        except Exception:
            continue
    try:
        if rng.random() < 0.85:
            hb = msgpack.packb(_sorted(value), use_bin_type=True)
        else:  # non-canonical on purpose: unsorted keys, float32, ...
            hb = msgpack.packb(value, use_bin_type=True, use_single_float=rng.random() < 0.5)
    except Exception:
        return None
    if "version" in str(path[:1]) and rng.random() < 0.5:
        fields = (fields[0], fields[1] + 1, fields[2])
    return _join(fields, hb, payload, sigs)


def _sorted(v):
    if isinstance(v, dict):
        try:
            items = sorted(v.items(), key=lambda kv: str(kv[0]).encode("utf-8", "surrogatepass"))
        except Exception:
            items = list(v.items())
        return {k: _sorted(x) for k, x in items}
    if isinstance(v, list):
        return [_sorted(x) for x in v]
    return v


def mutate_payload(body: bytes, rng: random.Random) -> bytes | None:
    """Decompress the payload, change the blob (bytes or the safetensors JSON), recompress, re-forge."""
    import zstandard

    sp = _split(body)
    if sp is None:
        return None
    fields, header, payload, sigs = sp
    try:
        blob = bytearray(zstandard.ZstdDecompressor().decompress(payload, max_output_size=1 << 22))
    except Exception:
        return None
    if not blob:
        return None
    r = rng.randrange(5)
    if r == 0:
        for _ in range(rng.randrange(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
    elif r == 1:  # inside the safetensors JSON header
        n = min(len(blob), 8 + int.from_bytes(blob[:8], "little"))
        if n > 8:
            i = rng.randrange(8, n)
            blob[i] = ord(rng.choice('0123456789,:[]{}" x'))
    elif r == 2:
        blob[:8] = rng.choice(U64).to_bytes(8, "little")
    elif r == 3:
        cut = rng.randrange(len(blob))
        blob = blob[:cut] if rng.random() < 0.5 else blob + bytes(rng.randrange(1, 64))
    else:
        blob = blob + blob[: rng.randrange(len(blob))]
    cctx = zstandard.ZstdCompressor(level=1, write_content_size=rng.random() < 0.9,
                                    write_checksum=rng.random() < 0.2)
    new = cctx.compress(bytes(blob))
    if rng.random() < 0.5:  # keep the header's raw_size consistent with the new blob, sometimes
        import msgpack

        try:
            value = msgpack.unpackb(header, raw=False, strict_map_key=False)
            value["payload"]["raw_size"] = len(blob)
            header = msgpack.packb(value, use_bin_type=True)
        except Exception:
            pass
    return _join(fields, header, new, sigs)


def mutate_frame(body: bytes, rng: random.Random) -> bytes | None:
    """Change the zstd frame header: content size, window descriptor, flags, block headers."""
    sp = _split(body)
    if sp is None:
        return None
    fields, header, payload, sigs = sp
    p = bytearray(payload)
    if len(p) < 8:
        return None
    i = rng.choice([4, 5, 6, 7, 8, 9, rng.randrange(4, len(p))])
    if i < len(p):
        p[i] = rng.choice([0, 0xFF, 0x80, 0x7F, p[i] ^ (1 << rng.randrange(8)), rng.randrange(256)])
    return _join(fields, header, bytes(p), sigs)


def mutate_preamble(body: bytes, rng: random.Random) -> bytes:
    b = bytearray(body if len(body) >= 32 else body + bytes(32 - len(body)))
    field = rng.randrange(5)
    if field == 0:
        struct.pack_into("<H", b, 8, rng.choice([0, 1, 2, 0xFFFF]))
    elif field == 1:
        struct.pack_into("<H", b, 10, rng.choice([0, 1, 2, 0xFFFF]))
    elif field == 2:
        struct.pack_into("<I", b, 12, rng.choice([0, 1, 1 << 31]))
    else:
        off = 16 if field == 3 else 24
        (cur,) = struct.unpack_from("<Q", b, off)
        val = rng.choice(U64 + [cur + 1, max(0, cur - 1), cur + len(b), len(b)])
        struct.pack_into("<Q", b, off, val & ((1 << 64) - 1))
    return bytes(b)


_SIGNERS = []


def mutate_signatures(body: bytes, rng: random.Random) -> bytes | None:
    """Rewrite the signature section: valid signatures by test keys over the file's digest, forged ones, the
    small-order keys, duplicates, unsorted entries, wrong counts."""
    sp = _split(body)
    if sp is None:
        return None
    fields, header, payload, _ = sp
    h, p = len(header), len(payload)
    digest = body[32 + h + p:64 + h + p]
    if not _SIGNERS:
        from pnc_pack.format.signing import private_key_from_seed, public_key_bytes

        for name in (b"a", b"b", b"c"):
            k = private_key_from_seed(hashlib.sha256(b"fuzz key " + name).digest())
            _SIGNERS.append((public_key_bytes(k), k))
    entries = []
    for _ in range(rng.choice([0, 1, 1, 2, 3, 17])):
        r = rng.random()
        pk, key = rng.choice(_SIGNERS)
        if r < 0.5:
            entries.append((pk, key.sign(b"pnc-pack clone-delta v1 digest\n" + digest)))
        elif r < 0.7:
            entries.append((bytes([1]) + bytes(31), bytes([1]) + bytes(63)))  # identity key, R = identity, S = 0
        elif r < 0.85:
            entries.append((pk, bytes(rng.randrange(256) for _ in range(64))))
        else:
            entries.append((bytes(rng.randrange(256) for _ in range(32)), bytes(64)))
    if rng.random() < 0.8:
        entries.sort()
    count = len(entries) if rng.random() < 0.9 else rng.choice([0, 1, 16, 2**32 - 1])
    section = struct.pack("<I", count) + b"".join(k + sg for k, sg in entries)
    return body[:64 + h + p] + section


def mutate_bytes(body: bytes, rng: random.Random, others=()) -> bytes:
    b = bytearray(body)
    op = rng.randrange(7)
    if not b:
        return bytes([rng.randrange(256)])
    if op == 0:
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 1:
        b[rng.randrange(len(b))] = rng.choice([0, 0xFF, 0x7F, 0x80, 0xC1, 0xDC, 0xDD, 0xDE, 0xDF, rng.randrange(256)])
    elif op == 2:
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    elif op == 3:
        i = rng.randrange(len(b))
        del b[i:i + rng.randrange(1, 64)]
    elif op == 4:
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randrange(1, 64))
        k = rng.randrange(len(b) + 1)
        b[k:k] = b[i:j]
    elif op == 5 and others:
        o = rng.choice(others)
        cut = rng.randrange(min(len(b), len(o)) + 1)
        b = b[:cut] + bytearray(o[cut:])
    else:
        b = b[:rng.randrange(len(b) + 1)]
    return bytes(b)


def mutate(data: bytes, rng: random.Random, others=()) -> bytes:
    """One structure-aware mutation of a fuzz input (mode byte + file); the result keeps a mode byte."""
    mode = data[0] if data else 1
    body = bytes(data[1:])
    r = rng.random()
    out = None
    if r < 0.35:
        out = mutate_header(body, rng)
    elif r < 0.5:
        out = mutate_payload(body, rng)
    elif r < 0.6:
        out = mutate_frame(body, rng)
    elif r < 0.66:
        out = mutate_preamble(body, rng)
    elif r < 0.72:
        out = mutate_signatures(body, rng)
    if out is None:
        out = mutate_bytes(body, rng, [bytes(o[1:]) for o in others])
    if rng.random() < 0.1:
        mode ^= 1
    return bytes([mode]) + out
