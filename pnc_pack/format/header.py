"""The header: CloneDelta metadata <-> a plain map, validated field by field (spec: "Header schema").

``build_header`` writes the map a v1.0 writer emits; ``parse_header`` checks a decoded map against the schema and
returns a :class:`ParsedHeader` from which, with the payload's tensors, the CloneDelta is assembled.

Compatibility (spec: "Compatibility"): every map of the schema has a fixed set of keys. A key this reader does not
know is an error, unless the file's minor version is newer than ours *and* the key's path is listed in the header's
``optional_fields`` (paths like ``"modules.*.quant"``, ``"*"`` standing for any array index or tensor name); such
keys are ignored and reported. A change that old readers must not ignore is announced in ``required_features``;
this reader knows none, so any entry there is refused with VersionError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pnc_pack.errors import FormatError, LimitError, VersionError
from pnc_pack.format.delta import DTYPE_SIZES, ClonedModule, CloneDelta, LabelEntry, Mask, RawTensor
from pnc_pack.format.limits import DEFAULT_LIMITS, MAJOR, MINOR, Limits
from pnc_pack.format.payload import ENCODINGS, check_tensor_name
from pnc_pack.refs import ModelRef

KNOWN_FEATURES: frozenset[str] = frozenset()  # v1.0 defines no optional-to-know features
KIND_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")  # adapter / classifier kinds: registered names, never import paths
FEATURE_RE = re.compile(r"^[a-z][a-z0-9_.\-]{0,63}$")
PATH_RE = re.compile(r"^(?:[A-Za-z0-9_\-]+|\*)(?:\.(?:[A-Za-z0-9_\-]+|\*))*$")
LABEL_MODEL_RE = re.compile(r"^(?:target|source:(?:0|[1-9][0-9]{0,8}))$")
MAX_BLOCKS = 1 << 16
MAX_INT = 2**63 - 1

TOP_KEYS = frozenset({
    "version", "required_features", "optional_fields", "target", "target_blocks", "modules", "classifier_kind",
    "classifier_args", "classifier_tensors", "labels", "provenance", "metrics", "tensors", "payload",
})
MODULE_KEYS = frozenset({
    "source", "source_blocks", "target_position", "source_position", "clone_classes", "masks", "adapter_kind",
    "adapter_args", "adapter_tensors",
})
MASK_KEYS = frozenset({"layer", "filters", "bits"})
LABEL_KEYS = frozenset({"model", "class_index", "name"})
TENSOR_KEYS = frozenset({"dtype", "shape"})
PAYLOAD_KEYS = frozenset({"encoding", "raw_size"})
REF_KEYS = frozenset({"arch", "arch_args", "files", "repo_id", "commit", "local_path"})
FILE_KEYS = frozenset({"sha256", "size"})


@dataclass
class ParsedHeader:
    version: tuple[int, int]
    target: ModelRef
    target_blocks: int
    modules: list[dict[str, Any]]  # ClonedModule fields except the adapter tensors; plus "adapter_tensors" names
    classifier_kind: str
    classifier_args: dict[str, Any]
    classifier_tensors: list[str]
    labels: list[LabelEntry]
    provenance: dict[str, Any]
    metrics: dict[str, Any]
    index: dict[str, tuple[str, tuple[int, ...]]]  # payload tensor name -> (dtype, shape)
    encoding: str
    raw_size: int
    required_features: list[str] = field(default_factory=list)
    ignored_fields: list[str] = field(default_factory=list)  # unknown optional fields of a newer minor

    def assemble(self, tensors: dict[str, RawTensor], signatures=()) -> CloneDelta:
        modules = []
        for i, m in enumerate(self.modules):
            adapter = {n: tensors[f"modules.{i}.adapter.{n}"] for n in m["adapter_tensors"]}
            fields_ = {k: v for k, v in m.items() if k != "adapter_tensors"}
            modules.append(ClonedModule(adapter=adapter, **fields_))
        return CloneDelta(
            target=self.target, target_blocks=self.target_blocks, modules=tuple(modules),
            classifier_kind=self.classifier_kind, classifier_args=self.classifier_args,
            classifier={n: tensors[f"classifier.{n}"] for n in self.classifier_tensors},
            labels=tuple(self.labels), provenance=self.provenance, metrics=self.metrics,
            signatures=tuple(signatures),
        )


# -- writer ------------------------------------------------------------------------------------------------------
def build_header(delta: CloneDelta, encoding: str, raw_size: int) -> dict[str, Any]:
    """The v1.0 header map of ``delta`` (not yet validated: the codec parses it back before writing)."""
    if not isinstance(delta, CloneDelta):
        raise FormatError(f"expected a CloneDelta, got {type(delta).__name__}")
    tensors = delta.tensors()
    return {
        "version": [MAJOR, MINOR],
        "required_features": [],
        "optional_fields": [],
        "target": delta.target.to_dict(),
        "target_blocks": delta.target_blocks,
        "modules": [
            {
                "source": m.source.to_dict(),
                "source_blocks": m.source_blocks,
                "target_position": m.target_position,
                "source_position": m.source_position,
                "clone_classes": list(m.clone_classes),
                "masks": [{"layer": k.layer, "filters": k.filters, "bits": bytes(k.bits)} for k in m.masks],
                "adapter_kind": m.adapter_kind,
                "adapter_args": dict(m.adapter_args),
                "adapter_tensors": sorted(m.adapter),
            }
            for m in delta.modules
        ],
        "classifier_kind": delta.classifier_kind,
        "classifier_args": dict(delta.classifier_args),
        "classifier_tensors": sorted(delta.classifier),
        "labels": [{"model": e.model, "class_index": e.class_index, "name": e.name} for e in delta.labels],
        "provenance": dict(delta.provenance),
        "metrics": dict(delta.metrics),
        "tensors": {n: {"dtype": t.dtype, "shape": list(t.shape)} for n, t in sorted(tensors.items())},
        "payload": {"encoding": encoding, "raw_size": raw_size},
    }


# -- reader ------------------------------------------------------------------------------------------------------
class _Ctx:
    def __init__(self, newer_minor: bool, optional: set[str], limits: Limits):
        self.newer_minor = newer_minor
        self.optional = optional
        self.limits = limits
        self.ignored: list[str] = []

    def fields(self, value: Any, known: frozenset[str], where: str, pattern: str) -> dict[str, Any]:
        """``value`` as a map restricted to ``known`` keys; unknown keys refused or (newer minor, listed) ignored."""
        d = _map(value, where)
        out = {}
        for k, v in d.items():
            if k in known:
                out[k] = v
                continue
            path = f"{pattern}.{k}" if pattern else k
            if self.newer_minor and path in self.optional:
                self.ignored.append(f"{where}.{k}")
                continue
            why = "" if self.newer_minor else f" (the file is version {MAJOR}.{MINOR} or older: no such field)"
            raise FormatError(f"{where}: unknown field {k!r}{why}")
        for k in sorted(known - {"repo_id", "commit", "local_path"}):
            if k not in out:
                raise FormatError(f"{where}: missing field {k!r}")
        return out


def _map(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise FormatError(f"{where}: expected a map, got {_tname(v)}")
    return v


def _list(v: Any, where: str, max_len: int | None = None) -> list:
    if not isinstance(v, list):
        raise FormatError(f"{where}: expected an array, got {_tname(v)}")
    if max_len is not None and len(v) > max_len:
        raise LimitError(f"{where}: {len(v)} entries exceed the limit of {max_len}")
    return v


def _int(v: Any, where: str, lo: int = 0, hi: int = MAX_INT) -> int:
    if type(v) is not int:
        raise FormatError(f"{where}: expected an integer, got {_tname(v)}")
    if not lo <= v <= hi:
        raise FormatError(f"{where}: {v} is outside [{lo}, {hi}]")
    return v


def _str(v: Any, where: str, regex: re.Pattern | None = None, max_len: int = DEFAULT_LIMITS.max_name) -> str:
    if not isinstance(v, str):
        raise FormatError(f"{where}: expected a string, got {_tname(v)}")
    if len(v) > max_len:
        raise LimitError(f"{where}: string of {len(v)} characters exceeds the limit of {max_len}")
    if regex is not None and not regex.match(v):
        raise FormatError(f"{where}: {v!r} is not allowed here (must match {regex.pattern})")
    if regex is None and any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise FormatError(f"{where}: control characters are not allowed in {v!r}")
    return v


def _sorted_unique_strs(v: Any, where: str, regex: re.Pattern, limits: Limits) -> list[str]:
    items = [_str(x, f"{where}[{i}]", regex) for i, x in enumerate(_list(v, where, limits.max_tensors))]
    if items != sorted(set(items)):
        raise FormatError(f"{where}: entries must be sorted and unique")
    return items


def _tname(v: Any) -> str:
    return {dict: "map", list: "array", str: "string", bytes: "bytes", int: "integer", float: "float",
            bool: "boolean", type(None): "nil"}.get(type(v), type(v).__name__)


def _ref(v: Any, where: str, ctx: _Ctx, pattern: str) -> ModelRef:
    d = ctx.fields(v, REF_KEYS, where, pattern)
    files = _map(d.get("files"), f"{where}.files")
    d["files"] = {name: ctx.fields(fd, FILE_KEYS, f"{where}.files[{name!r}]", f"{pattern}.files.*")
                  for name, fd in files.items()}
    _map(d["arch_args"], f"{where}.arch_args")
    return ModelRef.from_dict(d, where)


def parse_header(h: Any, major: int, minor: int, limits: Limits = DEFAULT_LIMITS) -> ParsedHeader:
    """Validate a decoded header map (see the spec's schema table) against the container's version."""
    if not isinstance(h, dict):
        raise FormatError(f"header: expected a map, got {_tname(h)}")
    features = _sorted_unique_strs(h.get("required_features", []), "header.required_features", FEATURE_RE, limits)
    unknown = [f for f in features if f not in KNOWN_FEATURES]
    if unknown:
        raise VersionError(f"header.required_features: this reader does not support {', '.join(map(repr, unknown))}")
    optional = _sorted_unique_strs(h.get("optional_fields", []), "header.optional_fields", PATH_RE, limits)
    ctx = _Ctx(minor > MINOR, set(optional), limits)
    top = ctx.fields(h, TOP_KEYS, "header", "")
    version = _list(top["version"], "header.version")
    if len(version) != 2 or version != [major, minor]:
        raise FormatError(f"header.version {version!r} does not match the preamble's {major}.{minor}")

    target = _ref(top["target"], "header.target", ctx, "target")
    target_blocks = _int(top["target_blocks"], "header.target_blocks", 1, MAX_BLOCKS)
    index = _tensor_index(top["tensors"], ctx)
    modules = [_module(m, i, target_blocks, ctx) for i, m in
               enumerate(_list(top["modules"], "header.modules", limits.max_modules))]
    classifier_kind = _str(top["classifier_kind"], "header.classifier_kind", KIND_RE)
    classifier_args = _map(top["classifier_args"], "header.classifier_args")
    classifier_tensors = _local_names(top["classifier_tensors"], "header.classifier_tensors", limits)
    labels = _labels(top["labels"], modules, ctx)
    n_out = classifier_args.get("num_outputs")
    if type(n_out) is not int or n_out != len(labels):
        raise FormatError(f"header.classifier_args.num_outputs is {n_out!r}; it must equal the {len(labels)} labels")

    named = [f"classifier.{n}" for n in classifier_tensors]
    for i, m in enumerate(modules):
        named += [f"modules.{i}.adapter.{n}" for n in m["adapter_tensors"]]
    for n in named:
        check_tensor_name(n, "header", limits.max_name)
    if set(named) != set(index):
        missing = sorted(set(named) - set(index))
        extra = sorted(set(index) - set(named))
        raise FormatError(f"header.tensors does not match the tensor names of the classifier and adapters "
                          f"(not in the index: {missing[:5]}, not owned by any part: {extra[:5]})")
    payload = ctx.fields(top["payload"], PAYLOAD_KEYS, "header.payload", "payload")
    encoding = _str(payload["encoding"], "header.payload.encoding")
    if encoding not in ENCODINGS:
        raise VersionError(f"header.payload.encoding {encoding!r} is not supported (known: {', '.join(ENCODINGS)})")
    raw_size = _int(payload["raw_size"], "header.payload.raw_size")
    if raw_size > limits.max_payload_raw:
        raise LimitError(f"header.payload.raw_size {raw_size} exceeds the limit of {limits.max_payload_raw}")
    return ParsedHeader(
        version=(major, minor), target=target, target_blocks=target_blocks, modules=modules,
        classifier_kind=classifier_kind, classifier_args=classifier_args, classifier_tensors=classifier_tensors,
        labels=labels, provenance=_map(top["provenance"], "header.provenance"),
        metrics=_map(top["metrics"], "header.metrics"), index=index, encoding=encoding, raw_size=raw_size,
        required_features=features, ignored_fields=ctx.ignored,
    )


def _local_names(v: Any, where: str, limits: Limits) -> list[str]:
    names = [check_tensor_name(x, f"{where}[{i}]", limits.max_name)
             for i, x in enumerate(_list(v, where, limits.max_tensors))]
    if names != sorted(set(names)):
        raise FormatError(f"{where}: names must be sorted and unique")
    return names


def _tensor_index(v: Any, ctx: _Ctx) -> dict[str, tuple[str, tuple[int, ...]]]:
    d = _map(v, "header.tensors")
    if len(d) > ctx.limits.max_tensors:
        raise LimitError(f"header.tensors: {len(d)} tensors exceed the limit of {ctx.limits.max_tensors}")
    out = {}
    for name, entry in d.items():
        where = f"header.tensors[{name!r}]"
        check_tensor_name(name, where, ctx.limits.max_name)
        e = ctx.fields(entry, TENSOR_KEYS, where, "tensors.*")
        dtype = _str(e["dtype"], f"{where}.dtype")
        if dtype not in DTYPE_SIZES:
            raise FormatError(f"{where}.dtype: unsupported dtype {dtype!r}")
        shape = _list(e["shape"], f"{where}.shape", ctx.limits.max_dims)
        dims = tuple(_int(s, f"{where}.shape[{j}]", 0, 2**64 - 1) for j, s in enumerate(shape))
        for j, d in enumerate(dims):
            if d > ctx.limits.max_dim:
                raise LimitError(f"{where}.shape[{j}]: {d} exceeds the limit of {ctx.limits.max_dim} per dimension")
        out[name] = (dtype, dims)
    return out


def _module(v: Any, i: int, target_blocks: int, ctx: _Ctx) -> dict[str, Any]:
    where = f"header.modules[{i}]"
    m = ctx.fields(v, MODULE_KEYS, where, "modules.*")
    source_blocks = _int(m["source_blocks"], f"{where}.source_blocks", 1, MAX_BLOCKS)
    classes = [_int(c, f"{where}.clone_classes[{j}]", 0, MAX_INT)
               for j, c in enumerate(_list(m["clone_classes"], f"{where}.clone_classes", ctx.limits.max_labels))]
    if not classes or len(set(classes)) != len(classes):
        raise FormatError(f"{where}.clone_classes: must be a non-empty list of unique class indices")
    masks = []
    for j, mk in enumerate(_list(m["masks"], f"{where}.masks", ctx.limits.max_tensors)):
        mw = f"{where}.masks[{j}]"
        md = ctx.fields(mk, MASK_KEYS, mw, "modules.*.masks.*")
        layer = _str(md["layer"], f"{mw}.layer")
        check_tensor_name(layer, f"{mw}.layer", ctx.limits.max_name)
        filters = _int(md["filters"], f"{mw}.filters", 1, MAX_INT)
        if filters > ctx.limits.max_mask_filters:
            raise LimitError(f"{mw}.filters: {filters} exceeds the limit of {ctx.limits.max_mask_filters}")
        if not isinstance(md["bits"], bytes):
            raise FormatError(f"{mw}.bits: expected bytes (msgpack bin), got {_tname(md['bits'])}")
        try:
            masks.append(Mask(layer, filters, md["bits"]))
        except FormatError as exc:
            raise FormatError(f"{mw}: {exc}") from None
    layers = [mk.layer for mk in masks]
    if len(set(layers)) != len(layers):
        raise FormatError(f"{where}.masks: layers must be unique")
    return {
        "source": _ref(m["source"], f"{where}.source", ctx, "modules.*.source"),
        "source_blocks": source_blocks,
        "target_position": _int(m["target_position"], f"{where}.target_position", 0, target_blocks - 1),
        "source_position": _int(m["source_position"], f"{where}.source_position", 0, source_blocks - 1),
        "clone_classes": tuple(classes),
        "masks": tuple(masks),
        "adapter_kind": _str(m["adapter_kind"], f"{where}.adapter_kind", KIND_RE),
        "adapter_args": _map(m["adapter_args"], f"{where}.adapter_args"),
        "adapter_tensors": _local_names(m["adapter_tensors"], f"{where}.adapter_tensors", ctx.limits),
    }


def _labels(v: Any, modules: list[dict], ctx: _Ctx) -> list[LabelEntry]:
    # Sets, not the clone_classes tuples: 2^16 labels each searched in a 2^16-entry tuple took 24 s (16 s CPU) to
    # load, a hang an attacker gets from a 2.7 MB header (tests/attacks/labels-quadratic.pncd); now 1 s.
    cloned = [frozenset(m["clone_classes"]) for m in modules]
    out, seen = [], set()
    for j, e in enumerate(_list(v, "header.labels", ctx.limits.max_labels)):
        where = f"header.labels[{j}]"
        d = ctx.fields(e, LABEL_KEYS, where, "labels.*")
        model = _str(d["model"], f"{where}.model", LABEL_MODEL_RE)
        index = _int(d["class_index"], f"{where}.class_index", 0, MAX_INT)
        name = _str(d["name"], f"{where}.name", max_len=ctx.limits.max_name)
        if model != "target":
            k = int(model.split(":")[1])
            if k >= len(modules):
                raise FormatError(f"{where}.model: {model!r} names module {k}, but there are {len(modules)}")
            if index not in cloned[k]:
                raise FormatError(f"{where}.class_index: {index} is not among module {k}'s clone_classes")
        if (model, index) in seen:
            raise FormatError(f"{where}: ({model}, {index}) appears twice in the label map")
        seen.add((model, index))
        out.append(LabelEntry(model, index, name))
    return out
