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

from pnc_pack.errors import FormatError, LimitError, PncError
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


def dumps(delta: CloneDelta, *, encoding: str = DEFAULT_ENCODING, level: int = ZSTD_LEVEL,
          limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The file bytes of ``delta``, including its signatures (each must verify; see signing.sign)."""
    unsigned = dumps_unsigned(delta, encoding=encoding, level=level, limits=limits)
    sigs = [(s.public_key, s.signature) for s in delta.signatures]
    if len(sigs) > limits.max_signatures:
        raise LimitError(f"{len(sigs)} signatures exceed the limit of {limits.max_signatures}")
    if sigs:
        from pnc_pack.format.signing import check_signatures

        check_signatures(unsigned[-DIGEST_SIZE:], sigs, strict=True)
    return unsigned + container.signature_section(sigs)


def dumps_unsigned(delta: CloneDelta, *, encoding: str = DEFAULT_ENCODING, level: int = ZSTD_LEVEL,
                   limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Preamble + header + payload + digest: the bytes whose digest signatures sign."""
    tensors = delta.tensors() if isinstance(delta, CloneDelta) else None
    if tensors is None:
        raise FormatError(f"expected a CloneDelta, got {type(delta).__name__}")
    payload, raw_size = encode_payload(tensors, encoding, level, limits)
    header_map = build_header(delta, encoding, raw_size)
    header = canonical.packb(header_map, "header", limits.max_depth)
    if len(header) > limits.max_header_bytes:
        raise LimitError(f"header of {len(header)} bytes exceeds the limit of {limits.max_header_bytes}")
    # Parse our own header back: a writer never emits what a reader would refuse (ranges, label map, index).
    parse_header(canonical.unpackb(header, limits), 1, MINOR, limits)
    return container.build_unsigned(header, payload)


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
