"""The rules for one header value (spec/clone-delta-v1.md §4.0), shared by the reader and the writer.

Each check takes the value and the path to name in the message, and raises the spec's class: a value of the wrong
msgpack type is FormatError (never ReferenceError, whatever the field); a name longer than ``max_name`` is
LimitError; a value that breaks its grammar or range is FormatError. A value's own rules are checked in that order
(type, then length, then grammar), so the class of a value that breaks several of them is fixed (spec §4.8).

Grammars are matched whole (``fullmatch`` and ``\\A``/``\\Z`` anchors): ``$`` matches before a final newline, so a
``$``-anchored pattern let ``"target\\n"`` and ``"<40 hex>\\n"`` through (issue 20). Integers are ``int`` and not
``bool`` (``[true, 0]`` is not a version) nor ``float`` (``1.0`` is not ``1``).
"""

from __future__ import annotations

import re
from typing import Any

from pnc_pack.errors import FormatError, LimitError
from pnc_pack.format.limits import DEFAULT_LIMITS

U64_MAX = 2**64 - 1  # the largest msgpack integer: the bound of every int field without one of its own
KIND_RE = re.compile(r"\A[a-z][a-z0-9_\-]{0,63}\Z")  # adapter / classifier kinds: registered names, never code
FEATURE_RE = re.compile(r"\A[a-z][a-z0-9_.\-]{0,63}\Z")  # required_features entries
FIELD_RE = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")  # the key of a field a newer minor adds (ignorable when listed)
PATH_RE = re.compile(r"\A(?:[a-z][a-z0-9_]{0,63}|\*)(?:\.(?:[a-z][a-z0-9_]{0,63}|\*))*\Z")  # optional_fields
LABEL_MODEL_RE = re.compile(r"\A(?:target|source:(0|[1-9][0-9]{0,8}))\Z")  # group 1: the module index
TENSOR_NAME_RE = re.compile(r"\A[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?\Z")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # control characters: Unicode category Cc (C0, DEL, C1)
MAX_PATH = 255  # characters of one optional_fields path


def tname(v: Any) -> str:
    """The msgpack type name of a decoded value, for messages."""
    return {dict: "map", list: "array", str: "string", bytes: "bytes", int: "integer", float: "float",
            bool: "boolean", type(None): "nil"}.get(type(v), type(v).__name__)


def as_map(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise FormatError(f"{where}: expected a map, got {tname(v)}")
    return v


def as_list(v: Any, where: str, max_len: int | None = None) -> list:
    if not isinstance(v, list):
        raise FormatError(f"{where}: expected an array, got {tname(v)}")
    if max_len is not None and len(v) > max_len:
        raise LimitError(f"{where}: {len(v)} entries exceed the limit of {max_len}")
    return v


def as_int(v: Any, where: str, lo: int = 0, hi: int = U64_MAX, limit: int | None = None) -> int:
    """An integer in [lo, hi] (FormatError outside); above ``limit`` (a §10 limit) LimitError."""
    if type(v) is not int:  # bool is a subclass of int, and 1.0 == 1: both refused
        raise FormatError(f"{where}: expected an integer, got {tname(v)}")
    if not lo <= v <= hi:
        raise FormatError(f"{where}: {v} is outside [{lo}, {hi}]")
    if limit is not None and v > limit:
        raise LimitError(f"{where}: {v} exceeds the limit of {limit}")
    return v


def as_str(v: Any, where: str, regex: re.Pattern | None = None, max_len: int | None = None) -> str:
    """A string; longer than ``max_len`` LimitError; not matching ``regex`` (whole) FormatError."""
    if not isinstance(v, str):
        raise FormatError(f"{where}: expected a string, got {tname(v)}")
    if max_len is not None and len(v) > max_len:
        raise LimitError(f"{where}: string of {len(v)} characters exceeds the limit of {max_len}")
    if regex is not None and not regex.fullmatch(v):
        raise FormatError(f"{where}: {v!r} is not allowed here (must match {regex.pattern})")
    return v


def as_text(v: Any, where: str, max_len: int = DEFAULT_LIMITS.max_name) -> str:
    """Human-readable text (a label name): at most ``max_len`` characters, no control character (C0, DEL, C1)."""
    s = as_str(v, where, max_len=max_len)
    bad = CONTROL_RE.search(s)
    if bad:
        raise FormatError(f"{where}: control character U+{ord(bad.group()):04X} is not allowed in {s!r}")
    return s


def check_tensor_name(name: Any, where: str = "tensor", max_len: int = DEFAULT_LIMITS.max_name) -> str:
    """A tensor or layer name (spec §5): letters, digits, '_', '.', '-', no '..', at most ``max_len`` characters."""
    as_str(name, where, max_len=max_len)
    if not TENSOR_NAME_RE.fullmatch(name) or ".." in name:
        raise FormatError(f"{where}: bad tensor name {name!r} (letters, digits, '_', '.', '-'; no '..')")
    return name


def label_module(model: str) -> int | None:
    """The module index of a label's ``model`` (None for ``"target"``); the string must match LABEL_MODEL_RE."""
    m = LABEL_MODEL_RE.fullmatch(model)
    if m is None:
        raise FormatError(f"label model {model!r} is not 'target' or 'source:<i>'")
    return None if m.group(1) is None else int(m.group(1))


def sorted_unique_strs(v: Any, where: str, regex: re.Pattern, max_len: int | None = None) -> list[str]:
    items = [as_str(x, f"{where}[{i}]", regex, max_len) for i, x in enumerate(as_list(v, where))]
    if items != sorted(set(items)):
        raise FormatError(f"{where}: entries must be sorted and unique")
    return items
