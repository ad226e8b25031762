"""bytes <-> CloneDelta: ``dumps``, ``loads``, ``save``, ``load`` (spec/clone-delta-v1.md).

The layers, bottom up: container.py slices and hashes, canonical.py turns header bytes into a value, header.py
checks that value against the schema, payload.py turns the payload into tensors, signing.py checks signatures.
This module strings them together. Output is deterministic: same CloneDelta, same bytes, in any process (canonical
msgpack, fixed zstd level, single-threaded, no timestamps).

``loads`` refuses anything it cannot fully check: bad structure (FormatError), exceeded limits (LimitError), newer
major or unknown required feature or encoding (VersionError), wrong digest (IntegrityError), malformed references
(ReferenceError), and signatures that do not verify against the digest (SignatureError). Trust policy (which keys
to trust, whether a signature is required) is :func:`pnc_pack.verification.verify`'s job.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from pnc_pack.errors import FormatError, LimitError, PncError, SignatureError
from pnc_pack.format import canonical, container
from pnc_pack.format.delta import CloneDelta, Signature
from pnc_pack.format.header import ParsedHeader, build_header, parse_header
from pnc_pack.format.limits import DEFAULT_LIMITS, DIGEST_SIZE, MINOR, PREAMBLE_SIZE, ZSTD_LEVEL, Limits
from pnc_pack.format.payload import DEFAULT_ENCODING, decode_payload, encode_payload, plan


@dataclass(frozen=True)
class FileInfo:
    """Facts about an encoded delta that the CloneDelta itself does not hold (for inspect and verify)."""

    version: tuple[int, int]
    file_size: int
    header_size: int
    payload_compressed: int
    payload_raw: int
    encoding: str
    digest: str  # hex sha256 of the signed region
    signed_size: int
    required_features: tuple[str, ...] = ()
    ignored_fields: tuple[str, ...] = field(default_factory=tuple)


def dumps(delta: CloneDelta, *, encoding: str | None = None, level: int | None = None,
          limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The file bytes of ``delta``, including its signatures (each must verify; see signing.sign).

    A delta read from a file (and not changed since) is written back as the bytes it was read from, unless an
    ``encoding`` or ``level`` is asked for (see :func:`dumps_unsigned`)."""
    unsigned = dumps_unsigned(delta, encoding=encoding, level=level, limits=limits)
    sigs = [(s.public_key, s.signature) for s in delta.signatures]
    if len(sigs) > limits.max_signatures:
        raise LimitError(f"{len(sigs)} signatures exceed the limit of {limits.max_signatures}")
    if sigs:
        from pnc_pack.format.signing import check_signatures, fingerprint

        ok = check_signatures(unsigned[-DIGEST_SIZE:], sigs)
        if not all(ok):
            bad = fingerprint(sigs[ok.index(False)][0])[:16]
            raise SignatureError(
                f"signature by key {bad} does not verify over this encoding of the delta (digest "
                f"{unsigned[-DIGEST_SIZE:].hex()[:16]}...): its content, or the encoding or compression it is written "
                "with, differs from what was signed; sign it again")
    return unsigned + container.signature_section(sigs)


def dumps_unsigned(delta: CloneDelta, *, encoding: str | None = None, level: int | None = None,
                   limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Preamble + header + payload + digest: the bytes whose digest signatures sign.

    With no ``encoding`` or ``level`` given, a delta that :func:`decode` returned, whose content is unchanged, gives
    back the very bytes it was read from (see :func:`_origin_bytes`); otherwise the content is encoded with
    ``encoding`` (default ``zstd+bytegroup``) at zstd ``level`` (default 9).
    """
    tensors = delta.tensors() if isinstance(delta, CloneDelta) else None
    if tensors is None:
        raise FormatError(f"expected a CloneDelta, got {type(delta).__name__}")
    if encoding is None and level is None:
        original = _origin_bytes(delta, tensors, limits)
        if original is not None:
            return original
    encoding = DEFAULT_ENCODING if encoding is None else encoding
    level = ZSTD_LEVEL if level is None else level
    payload, raw_size = encode_payload(tensors, encoding, level, limits)
    header_map = build_header(delta, encoding, raw_size)
    header = canonical.packb(header_map, "header", limits.max_depth)
    if len(header) > limits.max_header_bytes:
        raise LimitError(f"header of {len(header)} bytes exceeds the limit of {limits.max_header_bytes}")
    # Parse our own header back: a writer never emits what a reader would refuse (ranges, label map, index).
    parse_header(canonical.unpackb(header, limits), 1, MINOR, limits)
    return container.build_unsigned(header, payload)


# -- where a decoded delta came from ------------------------------------------------------------------------------
# Signatures sign the digest of the file's bytes, and the compressed payload depends on the writer (zstd version,
# level, encoding): re-encoding a delta read from a file written by another writer gives another digest. Before
# this, everything that recomputed the digest of a loaded CloneDelta -- the signature policy of ``apply``
# (signing.enforce_policy), ``verify(CloneDelta)``, ``sign``, ``push`` -- called a validly signed file "altered
# after signing" unless it happened to be byte for byte what this writer makes (found by tools/fuzz.py:
# tests/attacks/regressions/crash-7dc605263f18704e.pncd; a file written with encoding "zstd" or zstd level 3 and
# signed failed ``apply --trusted-key``). So decode remembers the bytes a delta came from, and a delta whose content
# is unchanged is written back as exactly those bytes: its digest, and so its signatures, stay valid.
_ORIGIN = "_pnc_origin"


@dataclass(frozen=True)
class _Origin:
    unsigned: bytes | memoryview  # preamble + header + payload + digest of the file (a view of the file's bytes)
    key: bytes  # canonical header of the content, build_header(delta, encoding, raw_size): detects any change
    encoding: str
    raw_size: int
    header_size: int
    payload_size: int
    tensors: dict  # payload tensor name -> RawTensor (immutable) as decoded


def _content_key(delta: CloneDelta, encoding: str, raw_size: int) -> bytes:
    return canonical.packb(build_header(delta, encoding, raw_size))


def _remember_origin(delta: CloneDelta, data, c: container.Container, parsed: ParsedHeader) -> None:
    view = memoryview(data)
    unsigned = view[:c.signed_size + DIGEST_SIZE] if view.readonly else bytes(view[:c.signed_size + DIGEST_SIZE])
    # A 1.0 header is exactly the canonical header of its content (the writer reproduces it; tools/fuzz_target
    # checks this on every accepted file), so the file's header is the key; a newer minor's is not (ignored fields).
    key = c.header if (c.major, c.minor) == (1, MINOR) else _content_key(delta, parsed.encoding, parsed.raw_size)
    origin = _Origin(unsigned, key, parsed.encoding, parsed.raw_size, len(c.header), len(c.payload), delta.tensors())
    object.__setattr__(delta, _ORIGIN, origin)  # not a field: equality, replace() and repr ignore it


def carry_origin(source: CloneDelta, target: CloneDelta) -> CloneDelta:
    """Let ``target`` (a copy of ``source`` with other signatures, say) be written back as ``source``'s bytes too;
    safe for any target, since the content is compared before the bytes are used."""
    origin = getattr(source, _ORIGIN, None)
    if origin is not None and isinstance(target, CloneDelta):
        object.__setattr__(target, _ORIGIN, origin)
    return target


def _origin_bytes(delta: CloneDelta, tensors: dict, limits: Limits) -> bytes | None:
    """The unsigned bytes ``delta`` was decoded from, if its content is unchanged and within ``limits``."""
    o = getattr(delta, _ORIGIN, None)
    if o is None or tensors != o.tensors:
        return None
    if (o.header_size > limits.max_header_bytes or o.payload_size > limits.max_payload_compressed
            or o.raw_size > limits.max_payload_raw):
        return None
    try:
        if _content_key(delta, o.encoding, o.raw_size) != o.key:
            return None
    except PncError:
        return None
    return bytes(o.unsigned)


def digest(delta: CloneDelta, **kw) -> bytes:
    """The sha256 digest the delta's signatures sign (independent of its signatures)."""
    return dumps_unsigned(delta, **kw)[-DIGEST_SIZE:]


def decode(data: bytes, *, limits: Limits = DEFAULT_LIMITS, check_signatures: bool = True
           ) -> tuple[CloneDelta, FileInfo]:
    """``data`` -> (CloneDelta, FileInfo). With ``check_signatures=False`` bad signatures are kept, not refused
    (verify.py reports them instead)."""
    c = container.parse(data, limits)
    parsed = parse_header_bytes(c, limits)
    layout = plan(parsed.index, limits)
    if layout.size != parsed.raw_size:
        raise FormatError(f"header.payload.raw_size is {parsed.raw_size}, the tensor index implies {layout.size}")
    tensors = decode_payload(c.payload, parsed.encoding, layout, limits)
    if check_signatures and c.signatures:
        from pnc_pack.format.signing import check_signatures as _check

        _check(c.digest, c.signatures, strict=True)
    delta = parsed.assemble(tensors, [Signature(pk, sig) for pk, sig in c.signatures])
    _remember_origin(delta, data, c, parsed)
    info = FileInfo(
        version=(c.major, c.minor), file_size=c.file_size, header_size=len(c.header),
        payload_compressed=len(c.payload), payload_raw=parsed.raw_size, encoding=parsed.encoding,
        digest=c.digest.hex(), signed_size=c.signed_size, required_features=tuple(parsed.required_features),
        ignored_fields=tuple(parsed.ignored_fields),
    )
    return delta, info


def parse_header_bytes(c: container.Container, limits: Limits = DEFAULT_LIMITS) -> ParsedHeader:
    return parse_header(canonical.unpackb(c.header, limits), c.major, c.minor, limits)


def loads(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> CloneDelta:
    """Decode and check a clone-delta file's bytes; raises a FormatError subclass, ReferenceError or
    SignatureError (see module docstring)."""
    return decode(data, limits=limits)[0]


def read_bytes(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """A delta file's bytes, refusing files larger than the limits allow before reading them."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (no effect on regular files)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):  # a FIFO would block, /dev/zero would feed 2 GiB of zeros
                raise FormatError(f"{path}: not a regular file")
            if st.st_size > limits.max_file_size:
                raise LimitError(f"{path}: {st.st_size} bytes exceeds the largest file the limits allow")
            data = f.read(st.st_size + 1)  # what the file holds (+1 to see growth), not the limit: no 2 GiB buffer
    except PncError:
        raise
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limits.max_file_size:
        raise LimitError(f"{path}: larger than the largest file the limits allow")
    return data


def load(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS) -> CloneDelta:
    return loads(read_bytes(path, limits), limits=limits)


def save(delta: CloneDelta, path: str | os.PathLike, **kw) -> int:
    """Write ``delta`` to ``path`` atomically (temp file, fsync, rename); returns the number of bytes."""
    from pnc_pack.fsutil import atomic_write

    data = dumps(delta, **kw)
    atomic_write(path, data)
    return len(data)


__all__ = ["dumps", "loads", "save", "load", "decode", "digest", "dumps_unsigned", "FileInfo", "read_bytes",
           "PREAMBLE_SIZE"]
