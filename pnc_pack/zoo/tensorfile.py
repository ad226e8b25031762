"""safetensors bytes -> torch tensors that *share* the buffer: no copy between the bytes checked and the weights used.

The safetensors library's load-from-bytes function copies every tensor out of ``data`` (into a ``bytes`` per tensor)
before torch sees it; with the file's own bytes and the model's parameters that is three copies of a model in memory
at once. Here the caller reads the file once into a buffer it owns (and hashes those bytes), and :func:`parse`
returns tensors that are views of that buffer; loading them with ``assign=True`` makes them the model's parameters.

The header is checked as strictly as the safetensors library checks it (``Metadata::validate``): an 8-byte
little-endian header length within bounds, a UTF-8 JSON object without duplicate keys, a string-to-string
``__metadata__``, and for every tensor exactly ``dtype`` (a known one), ``shape`` (non-negative integers) and
``data_offsets`` whose byte count equals the element count times the dtype size; the tensors' byte ranges, sorted,
must tile the data section exactly (no gap, no overlap, nothing after). Anything else is a :class:`FormatError`
naming the file and what is wrong. Tensors whose offset is not a multiple of their element size (never written by
safetensors, which pads the header to 8 bytes and orders tensors by alignment) are copied rather than viewed.
"""

from __future__ import annotations

import json
import sys

import torch

from pnc_pack.errors import FormatError

MAX_HEADER = 100_000_000  # the safetensors library's own limit
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}


def _no_duplicates(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        twice = sorted({k for k, _ in pairs if sum(1 for j, _ in pairs if j == k) > 1})
        raise FormatError(f"duplicate key {twice[0]!r} in the safetensors header")
    return out


def _is_uint(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def read_header(buf, where: str) -> tuple[int, dict, dict]:
    """(data start, {name: (dtype, shape, begin, end)}, metadata) of a safetensors buffer, fully validated."""
    bad = f"{where}: not a valid safetensors file"
    if len(buf) < 8:
        raise FormatError(f"{bad}: {len(buf)} bytes, shorter than the 8-byte header length")
    n = int.from_bytes(buf[:8], "little")
    if n > MAX_HEADER or 8 + n > len(buf):
        raise FormatError(f"{bad}: header length {n} does not fit in {len(buf)} bytes (limit {MAX_HEADER})")
    raw = bytes(buf[8:8 + n])
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except FormatError as exc:
        raise FormatError(f"{bad}: {exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{bad}: header is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{bad}: header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise FormatError(f"{bad}: __metadata__ must map strings to strings")
    entries = {}
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"{bad}: tensor {name!r} must have exactly dtype, shape and data_offsets")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise FormatError(f"{bad}: tensor {name!r} has unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            raise FormatError(f"{bad}: tensor {name!r} has a bad shape {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_uint(o) for o in offs) and offs[0] <= offs[1]):
            raise FormatError(f"{bad}: tensor {name!r} has bad data_offsets {offs!r}")
        count = 1
        for d in shape:
            count *= d
        if count * DTYPES[dtype].itemsize != offs[1] - offs[0]:
            raise FormatError(f"{bad}: tensor {name!r}: {offs[1] - offs[0]} bytes for shape {shape} of {dtype}")
        entries[name] = (dtype, tuple(shape), offs[0], offs[1])
    start, end = 8 + n, 0
    for name, (_, _, b, e) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if b != end:
            raise FormatError(f"{bad}: tensor {name!r} starts at data offset {b}, expected {end} (gap or overlap)")
        end = e
    if start + end != len(buf):
        raise FormatError(f"{bad}: the tensors cover {end} data bytes, the file has {len(buf) - start}")
    return start, entries, meta


def parse(buf: bytearray, where: str) -> tuple[dict[str, torch.Tensor], dict]:
    """({name: tensor}, metadata): tensors are views of ``buf`` (which they keep alive); ``buf`` must be writable
    and must not be reused by the caller."""
    start, entries, meta = read_header(buf, where)
    out = {}
    for name, (dtype, shape, b, e) in entries.items():
        dt = DTYPES[dtype]
        if e == b:
            out[name] = torch.empty(shape, dtype=dt)
            continue
        offset = start + b
        if offset % dt.itemsize or sys.byteorder != "little":
            t = torch.frombuffer(buf, dtype=torch.uint8, count=e - b, offset=offset).clone()
            if sys.byteorder != "little":
                t = t.view(-1, dt.itemsize).flip(1).reshape(-1)
            out[name] = t.view(dt).reshape(shape)
        else:
            out[name] = torch.frombuffer(buf, dtype=dt, count=(e - b) // dt.itemsize, offset=offset).reshape(shape)
        if dt is torch.bool and bool((out[name].view(torch.uint8) > 1).any()):
            raise FormatError(f"{where}: not a valid safetensors file: tensor {name!r} has a BOOL byte other than 0 "
                              "or 1")
    return out, meta
