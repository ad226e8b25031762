"""The container: preamble, header, payload, digest, signatures (spec/clone-delta-v1.md, "Byte layout").

```
offset        size  field
0             8     magic  89 50 4E 43 44 0D 0A 1A   ("\\x89PNCD\\r\\n\\x1a")
8             2     major  u16 LE (1)
10            2     minor  u16 LE (0)
12            4     flags  u32 LE, MUST be 0 in v1
16            8     header_len   u64 LE  (H)
24            8     payload_len  u64 LE  (P)
32            H     header   canonical msgpack
32+H          P     payload  one zstd frame
32+H+P        32    digest   sha256 of bytes [0, 32+H+P)
64+H+P        4     sig_count u32 LE (n)
68+H+P        96*n  signatures: public key (32) + Ed25519 signature (64), sorted by public key, keys unique
68+H+P+96n          end of file: nothing may follow
```

The digest covers everything before it and nothing after it, so adding or removing signatures never changes it; the
signed message is ``SIGNING_CONTEXT + digest``. This layer only slices and hashes; it knows nothing of msgpack or
tensors.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from pnc_pack.errors import FormatError, IntegrityError, LimitError, VersionError
from pnc_pack.format.limits import (
    DEFAULT_LIMITS,
    DIGEST_SIZE,
    MAGIC,
    MAJOR,
    MINOR,
    PREAMBLE_SIZE,
    SIG_COUNT_SIZE,
    SIG_ENTRY_SIZE,
    SIGNING_CONTEXT,
    Limits,
)

_PREAMBLE = struct.Struct("<8sHHIQQ")
assert _PREAMBLE.size == PREAMBLE_SIZE


@dataclass(frozen=True)
class Container:
    major: int
    minor: int
    header: bytes
    payload: bytes | memoryview  # a read-only view of the file's bytes when they are immutable
    digest: bytes
    signatures: tuple[tuple[bytes, bytes], ...]  # (public key, signature)

    @property
    def signed_size(self) -> int:
        """Bytes covered by the digest (preamble + header + payload)."""
        return PREAMBLE_SIZE + len(self.header) + len(self.payload)

    @property
    def file_size(self) -> int:
        return self.signed_size + DIGEST_SIZE + SIG_COUNT_SIZE + SIG_ENTRY_SIZE * len(self.signatures)


def signed_message(digest: bytes) -> bytes:
    return SIGNING_CONTEXT + digest


def digest_of(preamble_header_payload: bytes) -> bytes:
    return hashlib.sha256(preamble_header_payload).digest()


def build_unsigned(header: bytes, payload: bytes, minor: int = MINOR) -> bytes:
    """Preamble + header + payload + digest (everything but the signature section)."""
    body = _PREAMBLE.pack(MAGIC, MAJOR, minor, 0, len(header), len(payload)) + header + payload
    return body + digest_of(body)


def signature_section(signatures) -> bytes:
    sigs = sorted((bytes(pk), bytes(sig)) for pk, sig in signatures)
    for i, (pk, sig) in enumerate(sigs):
        if len(pk) != 32 or len(sig) != 64:
            raise FormatError(f"signature {i}: public key must be 32 bytes and signature 64 bytes")
        if i and sigs[i - 1][0] == pk:
            raise FormatError(f"signature {i}: two signatures by the same key")
    return struct.pack("<I", len(sigs)) + b"".join(pk + sig for pk, sig in sigs)


def parse(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Container:
    """Slice ``data`` into its sections; check magic, version, lengths, limits and the digest.

    Raises FormatError (structure), VersionError (major), LimitError (declared sizes), IntegrityError (digest).
    """
    data = memoryview(data)
    n = len(data)
    if n < PREAMBLE_SIZE:
        if bytes(data[:min(n, len(MAGIC))]) != MAGIC[:min(n, len(MAGIC))]:
            raise FormatError("not a clone-delta file (bad magic at offset 0)")
        raise FormatError(f"truncated: {n} bytes, the preamble alone is {PREAMBLE_SIZE}")
    magic, major, minor, flags, header_len, payload_len = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a clone-delta file (bad magic at offset 0)")
    if major != MAJOR:
        raise VersionError(f"format major version {major} (offset 8) is not supported; this reader reads {MAJOR}.x")
    if flags != 0:
        raise FormatError(f"preamble flags (offset 12) are {flags:#x}; v1 requires 0")
    if header_len > limits.max_header_bytes:
        raise LimitError(f"header_len {header_len} (offset 16) exceeds the limit of {limits.max_header_bytes}")
    if payload_len > limits.max_payload_compressed:
        raise LimitError(
            f"payload_len {payload_len} (offset 24) exceeds the limit of {limits.max_payload_compressed}")
    signed = PREAMBLE_SIZE + header_len + payload_len
    count_at = signed + DIGEST_SIZE
    if n < count_at + SIG_COUNT_SIZE:
        raise FormatError(
            f"truncated: {n} bytes, but the preamble declares {count_at + SIG_COUNT_SIZE} before the signatures")
    (count,) = struct.unpack_from("<I", data, count_at)
    if count > limits.max_signatures:
        raise LimitError(f"{count} signatures (offset {count_at}) exceed the limit of {limits.max_signatures}")
    end = count_at + SIG_COUNT_SIZE + SIG_ENTRY_SIZE * count
    if n < end:
        raise FormatError(f"truncated: {n} bytes, {end} expected with {count} signature(s)")
    if n > end:
        raise FormatError(f"{n - end} trailing bytes after the signature section (offset {end})")
    digest = bytes(data[signed:signed + DIGEST_SIZE])
    actual = digest_of(data[:signed])
    if actual != digest:
        raise IntegrityError(digest_mismatch(digest, actual, signed))
    sigs = []
    at = count_at + SIG_COUNT_SIZE
    for i in range(count):
        pk = bytes(data[at:at + 32])
        sig = bytes(data[at + 32:at + SIG_ENTRY_SIZE])
        if sigs and pk <= sigs[-1][0]:
            raise FormatError(f"signature {i} (offset {at}): signatures must be sorted by public key, keys unique")
        sigs.append((pk, sig))
        at += SIG_ENTRY_SIZE
    header = bytes(data[PREAMBLE_SIZE:PREAMBLE_SIZE + header_len])
    # The payload stays a view of ``data`` when ``data`` is immutable: no copy of up to 2 GiB (one copy less of
    # peak memory; tools/bench/attacks.py).
    payload = data[PREAMBLE_SIZE + header_len:signed]
    if not data.readonly:
        payload = bytes(payload)
    return Container(major, minor, header, payload, digest, tuple(sigs))


def digest_mismatch(stored: bytes, computed: bytes, signed: int) -> str:
    """The message of a digest that does not match: both digests in full and where they first differ (a byte
    flipped deep inside the stored digest must not print two identical-looking prefixes)."""
    a, b = stored.hex(), computed.hex()
    at = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return (f"digest mismatch: stored sha256 {a} (offset {signed}), computed {b} over bytes [0, {signed}); they "
            f"first differ at hex digit {at}: the file was damaged or tampered with")


def with_signatures(data: bytes, signatures, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """``data`` (a whole file) with its signature section replaced; the digest and everything before it unchanged."""
    c = parse(data, limits)
    if len(signatures) > limits.max_signatures:
        raise LimitError(f"{len(signatures)} signatures exceed the limit of {limits.max_signatures}")
    return bytes(data[:c.signed_size + DIGEST_SIZE]) + signature_section(signatures)
