"""Canonical msgpack: the one encoding of a header value (spec/clone-delta-v1.md, "Canonical msgpack").

Rules: maps have str keys, sorted by their UTF-8 bytes, without duplicates; integers use the shortest msgpack
encoding (what msgpack-python emits: positive fixint/uint8..64, negative fixint/int8..64); floats are finite and
always float64; text is str (valid UTF-8), bytes are bin; arrays are arrays; no ext types; nesting depth at most
``Limits.max_depth``. A reader unpacks with size limits enforced *while* unpacking (msgpack's own max_*_len), rejects
duplicate and non-str keys in ``object_pairs_hook``, counts values (``Limits.max_header_values``) from the
container hooks, checks depth and floats, then re-encodes the value and compares bytes: any other encoding of the
same value (unsorted keys, a float32, a long int form, a str8 where a fixstr fits, ...) is refused. Re-encoding is
simpler and stricter than checking each rule separately.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack

from pnc_pack.errors import FormatError, LimitError
from pnc_pack.format.limits import DEFAULT_LIMITS, Limits

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


class _DuplicateKey(Exception):
    pass


def to_canonical(obj: Any, where: str = "header", max_depth: int = DEFAULT_LIMITS.max_depth, _depth: int = 1) -> Any:
    """Return ``obj`` as plain msgpack-able data with sorted maps; raise FormatError naming the bad value's path.

    Accepted: None, bool, int (64-bit range), finite float, str, bytes-like (-> bytes), list/tuple (-> list),
    Mapping with str keys (-> dict sorted by key).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        if not _INT_MIN <= obj <= _INT_MAX:
            raise FormatError(f"{where}: integer {obj} outside the 64-bit range msgpack can hold")
        return int(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise FormatError(f"{where}: non-finite float {obj!r} has no canonical encoding")
        return float(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if _depth > max_depth:
        raise LimitError(f"{where}: nesting deeper than {max_depth}")
    if isinstance(obj, (list, tuple)):
        return [to_canonical(v, f"{where}[{i}]", max_depth, _depth + 1) for i, v in enumerate(obj)]
    if isinstance(obj, dict) or hasattr(obj, "items"):
        items = list(obj.items())
        for k, _ in items:
            if not isinstance(k, str):
                raise FormatError(f"{where}: map key {k!r} is not a string")
        items.sort(key=lambda kv: kv[0].encode("utf-8", "surrogatepass"))
        return {k: to_canonical(v, f"{where}.{k}", max_depth, _depth + 1) for k, v in items}
    raise FormatError(f"{where}: value of type {type(obj).__name__} cannot be stored in a header")


def packb(obj: Any, where: str = "header", max_depth: int = DEFAULT_LIMITS.max_depth) -> bytes:
    """Canonical msgpack bytes of ``obj`` (see module docstring)."""
    prepared = to_canonical(obj, where, max_depth)
    try:
        return msgpack.packb(prepared, use_bin_type=True, strict_types=True, datetime=False)
    except (UnicodeEncodeError, ValueError, OverflowError, TypeError) as exc:
        raise FormatError(f"{where}: cannot encode: {exc}") from None


class _TooManyValues(Exception):
    pass


class _Counter:
    """Counts the values unpacked so far, from msgpack's container hooks, and stops the unpacker past the limit.

    Every value but the top-level one sits in an array or a map, and a container's hook runs as soon as its items
    are built, so ``1 + sum of container lengths (2 per map entry)`` counts every value, and the count is checked
    after at most one container (``max_array`` or ``max_map`` items) more than the limit has been built. Without
    it a 16 MiB header of one-byte empty arrays or maps unpacked into 15 million Python objects (measured before
    the limit: 2.3 GB peak RSS and 30-46 s CPU before the canonical check refused it). The 1.1 MB version,
    tests/attacks/msgpack-value-flood.pncd, went from 164 MB / 3.1 s to 85 MB / 0.5 s (tools/bench/attacks.py).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.n = 1

    def add(self, n: int) -> None:
        self.n += n
        if self.n > self.limit:
            raise _TooManyValues(self.n)

    def list_hook(self, items):
        self.add(len(items))
        return items

    def pairs_hook(self, pairs):
        self.add(2 * len(pairs))
        return _pairs_hook(pairs)


def _pairs_hook(pairs):
    out = {}
    for k, v in pairs:
        if not isinstance(k, str):
            raise FormatError(f"map key {k!r} is not a string")
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _ext_hook(code, data):
    raise FormatError(f"msgpack ext type {code} is not allowed in a header")


def _check_tree(obj: Any, limits: Limits, where: str) -> None:
    """Depth and float checks, iteratively (no recursion on hostile input)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            if depth > limits.max_depth:
                raise LimitError(f"{where}: nesting deeper than {limits.max_depth}")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((c, depth + 1) for c in children if isinstance(c, (list, dict, float)))
        elif isinstance(value, float) and not math.isfinite(value):
            raise FormatError(f"{where}: non-finite float {value!r}")


def unpackb(data: bytes, limits: Limits = DEFAULT_LIMITS, where: str = "header") -> Any:
    """Unpack one canonical msgpack value from ``data`` (all of it), enforcing limits and canonical form."""
    if len(data) > limits.max_header_bytes:
        raise LimitError(f"{where}: {len(data)} bytes exceeds the limit of {limits.max_header_bytes}")
    counter = _Counter(limits.max_header_values)
    unpacker = msgpack.Unpacker(
        raw=False,
        use_list=True,
        strict_map_key=True,
        object_pairs_hook=counter.pairs_hook,
        list_hook=counter.list_hook,
        ext_hook=_ext_hook,
        max_buffer_size=max(len(data), 1),
        max_str_len=limits.max_str,
        max_bin_len=limits.max_bin,
        max_array_len=limits.max_array,
        max_map_len=limits.max_map,
        max_ext_len=0,
        timestamp=0,
    )
    try:
        unpacker.feed(data)
        value = unpacker.unpack()
        consumed = unpacker.tell()
    except FormatError as exc:
        raise FormatError(f"{where}: {exc}") from None
    except _TooManyValues:
        raise LimitError(f"{where}: more than {limits.max_header_values} msgpack values") from None
    except _DuplicateKey as exc:
        raise FormatError(f"{where}: duplicate map key {exc.args[0]!r}") from None
    except msgpack.OutOfData:
        raise FormatError(f"{where}: truncated msgpack") from None
    except msgpack.StackError:
        raise LimitError(f"{where}: nesting deeper than {limits.max_depth}") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"{where}: string is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # msgpack reports exceeded max_*_len and malformed bytes as ValueError subclasses
        msg = str(exc)
        cls = LimitError if "exceeds max" in msg and "max_ext_len" not in msg else FormatError
        raise cls(f"{where}: bad msgpack: {msg}") from None
    except Exception as exc:  # TypeError (unhashable key), ...: still bad input
        raise FormatError(f"{where}: bad msgpack: {type(exc).__name__}: {exc}") from None
    if consumed != len(data):
        raise FormatError(f"{where}: {len(data) - consumed} bytes of trailing data after the msgpack value")
    _check_tree(value, limits, where)
    try:
        again = packb(value, where, limits.max_depth)
    except LimitError:
        raise
    except FormatError as exc:
        raise FormatError(f"{where}: not canonical msgpack: {exc}") from None
    if again != data:
        at = next((i for i, (a, b) in enumerate(zip(again, data)) if a != b), min(len(again), len(data)))
        raise FormatError(
            f"{where}: not canonical msgpack (first difference at byte {at}: map keys must be sorted, "
            "ints shortest, floats float64, text as str and bytes as bin)"
        )
    return value
