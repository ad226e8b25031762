"""What the spec says about changing one header field: the mutations of tools/mutate.py and their verdicts.

Each function yields (change, new value, verdict) for one field, the verdict ("ok" or an error class) read from
spec/clone-delta-v1.md: a wrong msgpack type is FormatError wherever it is (§4.0); a name past ``max_name`` (255)
LimitError; the content of a reference string ReferenceError (§4.2); an unknown feature or encoding VersionError;
a change that breaks a value's own rule and a rule relating it to another value the class of its own rule (§4.8).
"""

from __future__ import annotations

import copy
from typing import Any, Iterator

DELETE = object()  # a Change value: remove the key
F, L, V, R, S, OK = "FormatError", "LimitError", "VersionError", "ReferenceError", "SignatureError", "ok"
U64 = 2**64 - 1
FREE = {"provenance", "metrics", "classifier_args", "target.arch_args", "modules.*.adapter_args",
        "modules.*.source.arch_args"}  # free maps (§4.1): any key, any value within the limits


def get(h: Any, path: tuple) -> Any:
    for p in path:
        h = h[p]
    return h


# -- what the spec says --------------------------------------------------------------------------------------------
INT_FIELDS = {"version.*", "target_blocks", "modules.*.source_blocks", "modules.*.target_position",
              "modules.*.source_position", "modules.*.clone_classes.*", "modules.*.masks.*.filters",
              "labels.*.class_index", "classifier_args.num_outputs", "tensors.*.shape.*", "payload.raw_size",
              "target.files.*.size", "modules.*.source.files.*.size"}
REF_STR = {"arch", "repo_id", "commit", "local_path", "sha256"}  # reference strings: content is ReferenceError
FORM_KEYS = {"repo_id", "commit", "local_path"}  # which of them a reference has decides hub or local


def _is_ref_str(pattern: str) -> bool:
    return pattern.split(".")[-1] in REF_STR and (pattern.startswith("target") or ".source." in pattern)


def type_swaps(v: Any, pattern: str) -> Iterator[tuple[str, Any]]:
    """Every msgpack type but ``v``'s own, plus bool-for-int and float-for-int: a wrong type is FormatError."""
    samples = {"nil": None, "bool": True, "int": 7, "float": 0.5, "str": "x", "bin": b"x", "array": [], "map": {}}
    own = {bool: "bool", int: "int", float: "float", str: "str", bytes: "bin", list: "array", dict: "map"}.get(type(v))
    for t, s in samples.items():
        if t != own:
            yield f"{t}-for-{own}", s
    if pattern in INT_FIELDS:
        yield "bool-for-int", bool(v)
        yield "float-for-int", float(v)


def str_cases(h: Any, path: tuple, pattern: str, v: str) -> Iterator[tuple[str, Any, str]]:
    """Content changes of a string field, with the spec's verdict."""
    last = pattern.split(".")[-1]
    if _is_ref_str(pattern):
        yield "trailing-newline", v + "\n", R
        if last == "local_path":
            yield "c1-control", v + "\x9b", OK  # local paths refuse C0 only (§4.2)
            yield "empty", "", R
            yield "other-path", "models/elsewhere", OK
        elif last == "commit":
            yield "branch-name", "main", R
            yield "uppercase", v.upper(), R if v.upper() != v else OK
            yield "other-commit", "0" * 40, OK
        elif last == "sha256":
            yield "short", v[:-1], R
            yield "other-digest", "f" * 64, OK
        elif last == "repo_id":
            yield "three-parts", "a/b/c", R
            yield "other-repo", "someone/model-2", OK
        elif last == "arch":
            yield "unregistered", "zz-unregistered", OK  # "registered" is checked at apply, not by readers (§4.2)
            yield "longest", "a" * 64, OK
            yield "too-long", "a" * 65, R
            yield "import-path", "os.system", R
    elif last in ("classifier_kind", "adapter_kind"):
        yield "trailing-newline", v + "\n", F
        yield "other-kind", "zz-unregistered", OK
        yield "longest", "k" * 64, OK
        yield "too-long", "k" * 300, F  # a kind is not a name: its grammar, not max_name
        yield "import-path", "os.system", F
    elif pattern == "labels.*.model":
        yield "trailing-newline", v + "\n", F
        yield "leading-zero", "source:00", F
        yield "no-such-module", f"source:{len(h['modules'])}", F
    elif pattern == "labels.*.name":
        yield "trailing-newline", v + "\n", F
        yield "c1-control", v + "\x85", F
        yield "del", v + "\x7f", F
        yield "bidi-override", "\u202e" + v, OK
        yield "empty", "", OK
        yield "longest", "n" * 255, OK
        yield "too-long", "n" * 256, L
    elif pattern in ("classifier_tensors.*", "modules.*.adapter_tensors.*"):
        yield "trailing-newline", v + "\n", F
        yield "too-long", "t" * 256, L
        yield "renamed", "zz", F  # no longer the tensor index's names
    elif pattern == "modules.*.masks.*.layer":
        yield "trailing-newline", v + "\n", F
        yield "too-long", "l" * 256, L
        yield "longest", "l" * 255, OK
        yield "path", "a/../b", F
        yield "renamed", "zz.layer", OK
    elif pattern == "tensors.*.dtype":
        yield "unknown", "F33", F
        yield "other-dtype", "I8" if v != "I8" else "U8", F  # the payload no longer matches the index
    elif pattern == "payload.encoding":
        yield "trailing-newline", v + "\n", V
        yield "unknown", "brotli", V
        yield "other-encoding", "zstd" if v != "zstd" else "zstd+bytegroup", OK  # same bytes, other meaning
    elif pattern == "required_features.*" or pattern == "optional_fields.*":
        pass  # the arrays themselves get their cases in array_cases


def int_cases(h: Any, path: tuple, pattern: str, v: int) -> Iterator[tuple[str, Any, str]]:
    """Range changes of an integer field, with the spec's verdict."""
    yield "negative", -1, R if pattern.endswith("files.*.size") else F
    if pattern.startswith("version"):
        yield "other", v + 1, F
    elif pattern == "target_blocks":
        need = max([m["target_position"] for m in h["modules"]], default=-1) + 1
        yield "zero", 0, F
        yield "largest", 65536, OK
        yield "too-large", 65537, F
        yield "u64-max", U64, F
        if need > 1:
            yield "below-a-position", need - 1, F
    elif pattern == "modules.*.source_blocks":
        yield "largest", 65536, OK
        yield "too-large", 65537, F
        yield "at-position", get(h, path[:-1])["source_position"], F
    elif pattern in ("modules.*.target_position", "modules.*.source_position"):
        blocks = h["target_blocks"] if "target" in pattern else get(h, path[:-1])["source_blocks"]
        yield "zero", 0, OK
        yield "last", blocks - 1, OK
        yield "at-blocks", blocks, F
    elif pattern == "modules.*.clone_classes.*":
        yield "u64-max", U64, F  # its label now names a class that is not cloned
    elif pattern == "labels.*.class_index":
        label = get(h, path[:-1])
        taken = {lab["class_index"] for lab in h["labels"] if lab["model"] == label["model"]}
        if label["model"] == "target":
            yield "u64-max", U64, OK if U64 not in taken else F
        else:
            yield "not-cloned", max(taken) + 1000, F
        other = next((c for c in taken if c != v), None)
        if other is not None:
            yield "duplicate", other, F
    elif pattern == "classifier_args.num_outputs":
        yield "plus-one", v + 1, F
    elif pattern == "modules.*.masks.*.filters":
        bits = get(h, path[:-1])["bits"]
        for f in (v + 1, v + 8, 8 * len(bits)):
            ok = len(bits) == (f + 7) // 8 and not (f % 8 and bits[-1] >> (f % 8))
            yield f"filters-{f}", f, OK if ok else F
        yield "zero", 0, F
        yield "over-limit", (1 << 20) + 1, L
        yield "u64-max", U64, L
    elif pattern == "tensors.*.shape.*":
        yield "plus-one", v + 1, F
        yield "over-max-dim", 2**31, L
        yield "u64-max", U64, L
    elif pattern == "payload.raw_size":
        yield "plus-one", v + 1, F
        yield "over-limit", 2**31 + 1, L
        yield "u64-max", U64, L
    elif pattern.endswith("files.*.size"):
        yield "zero", 0, OK
        yield "u64-max", U64, OK


def map_cases(h: Any, path: tuple, pattern: str, v: dict) -> Iterator[tuple[tuple, str, Any, str]]:
    """(path, change, value, verdict) for a map's keys: each key removed, an unknown key added."""
    if pattern in FREE:
        yield path + ("zz_extra",), "extra-key", {"any": [None, True, -1, 0.5, b"\x00"]}, OK
        yield path + ("zz_extra",), "string-over-max-str", "s" * (64 * 1024 + 1), L
        deep: list = []
        for _ in range(40):
            deep = [deep]
        yield path + ("zz_extra",), "nested-too-deep", deep, L
        if pattern == "classifier_args":
            yield path + ("num_outputs",), "missing", DELETE, F
        return
    if pattern.endswith("files"):
        if len(v) == 1:
            yield path + (next(iter(v)),), "no-files", DELETE, R
        first = next(iter(v.values()))
        for fname, verdict_ in (("weights.bin", OK), ("w" * 255, OK), ("w" * 256, R), ("a\n", R), ("a\x85", R),
                                ("a/b", R), ("..", R), ("", R)):
            yield path + (fname,), f"file-name-{fname[:8]!r}", copy.deepcopy(first), verdict_
        return
    if pattern == "tensors":
        first = next(iter(v))
        yield path + ("zz",), "extra-tensor", copy.deepcopy(v[first]), F
        yield path + (first,), "missing-tensor", DELETE, F
        return
    is_ref = pattern in ("target", "modules.*.source")
    for k in v:
        yield path + (k,), "missing", DELETE, R if is_ref and k in FORM_KEYS else F
    yield path + ("zz_extra",), "extra-key", 1, F  # minor 0: no unknown field (§9)
    if is_ref:
        form = "local_path" if "local_path" in v else "commit"
        yield path + ("local_path" if form == "commit" else "commit",), "hub-and-local", \
            "models/x" if form == "commit" else "0" * 40, R


def array_cases(h: Any, path: tuple, pattern: str, v: list) -> Iterator[tuple[str, Any, str]]:
    if pattern == "required_features":
        yield "unknown-feature", ["zz-feature"], V
        yield "bad-feature-name", ["zz\n"], F
        yield "unsorted", ["b", "a"], F
    elif pattern == "optional_fields":
        if not v:
            yield "listed-in-1.0", ["release_notes"], F  # 1.0 files have optional_fields = [] (§9)
        else:
            yield "dropped-entry", v[:-1], F
            yield "unused-path", sorted(v + ["zz"]), OK
            yield "bad-path", sorted(v + ["a..b"]), F
            yield "newline-path", sorted(v + ["zz\n"]), F
            yield "unsorted", list(reversed(v)), F if len(v) > 1 else OK
    elif pattern == "modules.*.masks" and v:
        yield "mask-dropped", v[1:], OK
        yield "mask-duplicated", v + [copy.deepcopy(v[0])], F
    elif pattern == "modules.*.clone_classes":
        yield "empty", [], F
        yield "duplicate", v + [v[0]], F
        yield "extra-class", v + [U64], OK  # a cloned class need not have a label
    elif pattern == "labels":
        yield "label-dropped", v[:-1], F  # num_outputs no longer matches
    elif pattern == "version":
        yield "three-entries", v + [0], F
        yield "one-entry", v[:1], F
    elif pattern.startswith("tensors.") and pattern.endswith("shape"):
        yield "nine-dims", [1] * 9, L
        yield "product-over-max-elements", [2**16, 2**16], L


