"""The tensor payload: one canonical safetensors blob, optionally byte-grouped, compressed as one zstd frame.

Layout of the blob (spec: "Tensor payload") is a pure function of the header's tensor index (names, dtypes,
shapes), so a reader computes it *before* decompressing: the raw size, the safetensors JSON header, and every
tensor's byte range. The blob is exactly what ``safetensors.serialize`` writes for the same tensors (tensors ordered
by dtype rank, then name; JSON without spaces; header padded with spaces to 8 bytes; no ``__metadata__``); a test
pins that equivalence. We write it ourselves because safetensors 0.8's framework-free ``serialize`` takes raw data
pointers, and so that the bytes are fixed by the spec rather than by a library version. Reading checks that the
blob's safetensors header equals the computed one byte for byte, then slices each tensor at its computed offsets
(no JSON is parsed from the file at all).

Byte grouping (encoding ``zstd+bytegroup``, ZipNN-style): the data of every float tensor (F64, F32, F16, BF16) of n
elements of k bytes is rewritten as k planes of n bytes, plane j holding byte j (little-endian) of every element.
Exponent and sign bytes then sit together and zstd finds their redundancy. Measured on the weights of an MLP
64-512-512-10 trained on sklearn digits (``python -m tools.bench format``; table in spec/clone-delta-v1.md §6.2):
at zstd level 9 the payload shrinks by 7.6 % (F32), 4.7 % (F16) and 9.6 % (BF16) against plain zstd of the same
blob at the same level, and by 4.7-10.4 % at levels 3 and 19; so it is the writer's default. It costs save speed
(46 vs 157 MB/s on a 16.8 MB delta, zstd works harder on the compressible planes); deltas are small.

Decompression is bounded: the frame must declare its content size equal to the header's ``raw_size`` (which itself
equals the size the tensor index implies and is capped by ``Limits.max_payload_raw``), and the frame is fed to
zstd's streaming decompressor in small input steps so that output can pass the declared size by at most a few
MiB before it is refused. Nothing is allocated up front from a declared size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import zstandard

from pnc_pack.errors import FormatError, LimitError, VersionError
from pnc_pack.format.delta import DTYPE_SIZES, RawTensor
from pnc_pack.format.limits import DEFAULT_LIMITS, MAX_WINDOW_LOG, ZSTD_LEVEL, Limits
from pnc_pack.format.rules import TENSOR_NAME_RE, check_tensor_name  # noqa: F401  (re-exported)

ENCODINGS = ("zstd", "zstd+bytegroup")
DEFAULT_ENCODING = "zstd+bytegroup"
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
# Canonical tensor order: dtype rank (safetensors' order: wider and float types first), then name.
DTYPE_ORDER = ("I64", "F64", "F32", "I32", "BF16", "F16", "I16", "I8", "U8", "BOOL")
_RANK = {d: i for i, d in enumerate(DTYPE_ORDER)}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_RLE_RATIO = 128 * 1024 // 4  # worst case output bytes per input byte of a zstd frame (4-byte RLE blocks)


@dataclass(frozen=True)
class Region:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute offset in the blob
    end: int


@dataclass(frozen=True)
class Layout:
    prefix: bytes  # 8-byte little-endian JSON length + JSON header (padded)
    regions: tuple[Region, ...]
    size: int  # total blob size = the payload's raw size


def plan(index: dict[str, tuple[str, tuple[int, ...]]], limits: Limits = DEFAULT_LIMITS) -> Layout:
    """The canonical safetensors layout for tensors ``name -> (dtype, shape)``; checks the tensor limits."""
    if len(index) > limits.max_tensors:
        raise LimitError(f"{len(index)} tensors exceed the limit of {limits.max_tensors}")
    entries = []
    for name, (dtype, shape) in index.items():
        check_tensor_name(name, f"tensor {name!r}", limits.max_name)
        if dtype not in DTYPE_SIZES:
            raise FormatError(f"tensor {name!r}: unsupported dtype {dtype!r}")
        if len(shape) > limits.max_dims:
            raise LimitError(f"tensor {name!r}: {len(shape)} dimensions exceed the limit of {limits.max_dims}")
        for d in shape:
            if type(d) is not int or d < 0:
                raise FormatError(f"tensor {name!r}: bad dimension {d!r}")
            if d > limits.max_dim:
                raise LimitError(f"tensor {name!r}: dimension {d} exceeds the limit of {limits.max_dim}")
        n = math.prod(shape)
        if n > limits.max_elements:
            raise LimitError(f"tensor {name!r}: {n} elements exceed the limit of {limits.max_elements}")
        entries.append((_RANK[dtype], name, dtype, tuple(shape), n * DTYPE_SIZES[dtype]))
    entries.sort()
    parts, offset, spans = [], 0, []
    for _, name, dtype, shape, nbytes in entries:
        dims = ",".join(str(d) for d in shape)
        parts.append(f'"{name}":{{"dtype":"{dtype}","shape":[{dims}],"data_offsets":[{offset},{offset + nbytes}]}}')
        spans.append((name, dtype, shape, offset, offset + nbytes))
        offset += nbytes
    header = ("{" + ",".join(parts) + "}").encode("ascii")
    header += b" " * (-(8 + len(header)) % 8)
    base = 8 + len(header)
    size = base + offset
    if size > limits.max_payload_raw:
        raise LimitError(f"raw payload of {size} bytes exceeds the limit of {limits.max_payload_raw}")
    regions = tuple(Region(n, d, s, base + a, base + b) for n, d, s, a, b in spans)
    return Layout(len(header).to_bytes(8, "little") + header, regions, size)


def check_bool(data, where: str) -> None:
    """BOOL elements are the bytes 0 and 1 (spec §6.1): any other byte is refused, by readers and writers alike."""
    if bytes(data).translate(None, b"\x00\x01"):
        raise FormatError(f"{where}: a BOOL element is neither 0 nor 1")


def encode_blob(tensors: dict[str, RawTensor], limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, Layout]:
    layout = plan({n: (t.dtype, t.shape) for n, t in tensors.items()}, limits)
    for r in layout.regions:
        if r.dtype == "BOOL":
            check_bool(tensors[r.name].data, f"tensor {r.name!r}")
    return layout.prefix + b"".join(tensors[r.name].data for r in layout.regions), layout


def _float_regions(layout: Layout):
    for r in layout.regions:
        if r.dtype in FLOAT_DTYPES and r.end > r.start:
            yield r, DTYPE_SIZES[r.dtype]


def group_bytes(blob: bytes, layout: Layout) -> bytes:
    """Byte-group every float tensor's data in place of it (see module docstring)."""
    out = bytearray(blob)
    for r, k in _float_regions(layout):
        region = blob[r.start:r.end]
        out[r.start:r.end] = b"".join(region[j::k] for j in range(k))
    return bytes(out)


def ungroup_bytes(blob: bytes | bytearray, layout: Layout) -> bytearray:
    """Inverse of :func:`group_bytes`."""
    out = bytearray(blob)
    for r, k in _float_regions(layout):
        n = (r.end - r.start) // k
        region = bytearray(r.end - r.start)
        for j in range(k):
            region[j::k] = blob[r.start + j * n:r.start + (j + 1) * n]
        out[r.start:r.end] = region
    return out


def compress(blob: bytes, level: int = ZSTD_LEVEL) -> bytes:
    """One zstd frame with the content size, no checksum (the digest covers it), no dictionary, single-threaded."""
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=False, write_content_size=True, write_dict_id=False,
                                    threads=0)
    return cctx.compress(blob)


def encode_payload(tensors: dict[str, RawTensor], encoding: str = DEFAULT_ENCODING, level: int = ZSTD_LEVEL,
                   limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, int]:
    """-> (compressed payload, raw size)."""
    if encoding not in ENCODINGS:
        raise VersionError(f"unknown payload encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
    blob, layout = encode_blob(tensors, limits)
    if encoding == "zstd+bytegroup":
        blob = group_bytes(blob, layout)
    payload = compress(blob, level)
    if len(payload) > limits.max_payload_compressed:
        raise LimitError(
            f"compressed payload of {len(payload)} bytes exceeds the limit {limits.max_payload_compressed}")
    return payload, layout.size


def decompress(payload: bytes, raw_size: int, limits: Limits = DEFAULT_LIMITS) -> bytearray:
    """Decompress exactly one zstd frame to exactly ``raw_size`` bytes, bounded (see module docstring)."""
    if raw_size > limits.max_payload_raw:
        raise LimitError(f"declared raw payload size {raw_size} exceeds the limit of {limits.max_payload_raw}")
    if len(payload) < 4 or bytes(payload[:4]) != ZSTD_MAGIC:
        raise FormatError("payload: not a zstd frame (bad magic at payload offset 0)")
    try:
        params = zstandard.get_frame_parameters(payload)
    except zstandard.ZstdError as exc:
        raise FormatError(f"payload: bad zstd frame header: {exc}") from None
    if params.content_size == zstandard.CONTENTSIZE_UNKNOWN:
        raise FormatError("payload: the zstd frame must declare its content size")
    if params.content_size != raw_size:
        raise FormatError(f"payload: zstd frame declares {params.content_size} bytes, header declares {raw_size}")
    if params.dict_id:
        raise FormatError("payload: zstd dictionaries are not allowed")
    if params.window_size > 1 << MAX_WINDOW_LOG:
        raise LimitError(f"payload: zstd window of {params.window_size} bytes exceeds 2^{MAX_WINDOW_LOG}")
    return bounded_decompress(payload, raw_size)


def bounded_decompress(payload: bytes, raw_size: int) -> bytearray:
    """Stream-decompress one zstd frame, refusing output beyond ``raw_size`` (memory stays near ``raw_size``
    whatever the frame claims), trailing data after the frame, and a frame that ends early."""
    dobj = zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG).decompressobj()
    out = bytearray()
    view = memoryview(payload)
    pos = 0
    try:
        while pos < len(view) and not dobj.eof:
            # Input step so small that even a frame of RLE blocks cannot emit much more than what is still allowed.
            budget = raw_size - len(out) + 1
            step = max(256, min(1 << 20, budget // _RLE_RATIO))
            out += dobj.decompress(view[pos:pos + step])
            pos += step
            if len(out) > raw_size:  # a frame that does not match its own Frame_Content_Size: malformed (§6.3)
                raise FormatError(f"payload: the zstd frame decompresses beyond its declared {raw_size} bytes")
    except zstandard.ZstdError as exc:
        raise FormatError(f"payload: the zstd frame does not decode to its declared {raw_size} bytes "
                          f"(error near payload offset {pos}: {exc})") from None
    if not dobj.eof:
        raise FormatError("payload: truncated zstd frame")
    trailing = len(dobj.unused_data) + max(0, len(view) - pos)
    if trailing:
        raise FormatError(f"payload: {trailing} bytes after the zstd frame")
    if len(out) != raw_size:
        raise FormatError(f"payload: decompressed to {len(out)} bytes, declared {raw_size}")
    return out


def decode_payload(payload: bytes, encoding: str, layout: Layout, limits: Limits = DEFAULT_LIMITS
                   ) -> dict[str, RawTensor]:
    """Payload bytes -> tensors, checking the blob against the canonical layout computed from the header.

    The blob's safetensors header (the first ``len(layout.prefix)`` bytes, never byte-grouped) must equal the
    computed one byte for byte; then every tensor's data is at its computed offsets, so the tensors are sliced
    out directly (ungrouped one at a time). Peak memory is the blob plus the tensors plus one tensor: about
    2 x raw_size. The earlier path (whole-blob ungroup copy, ``bytes(blob)``, ``safetensors.deserialize``) peaked
    higher and ran slower: verifying a 64 MiB delta grew RSS by 392 MB in 0.85 s (random data; zeros: 296 MB),
    now 199 MB in 0.53 s (zeros: 166 MB), file bytes included (tools/bench/attacks.py's child, old vs new code).
    """
    if encoding not in ENCODINGS:
        raise VersionError(f"payload: unknown encoding {encoding!r}")
    blob = decompress(payload, layout.size, limits)
    if bytes(blob[:len(layout.prefix)]) != layout.prefix:
        raise FormatError("payload: safetensors header does not match the header's tensor index "
                          "(names, dtypes, shapes, order or offsets differ, or it is not canonical)")
    grouped = encoding == "zstd+bytegroup"
    view = memoryview(blob)
    out = {}
    try:
        for r in layout.regions:
            k = DTYPE_SIZES[r.dtype]
            region = view[r.start:r.end]
            if grouped and r.dtype in FLOAT_DTYPES and r.end > r.start:
                n = (r.end - r.start) // k
                data = bytearray(r.end - r.start)
                for j in range(k):
                    data[j::k] = region[j * n:(j + 1) * n]
                out[r.name] = RawTensor(r.dtype, r.shape, bytes(data))
                del data
            else:
                if r.dtype == "BOOL":
                    check_bool(region, f"payload: tensor {r.name!r}")
                out[r.name] = RawTensor(r.dtype, r.shape, bytes(region))
            region.release()
    finally:
        view.release()
    return out
