"""The header: CloneDelta metadata <-> a plain map, validated field by field (spec: "Header schema").

``build_header`` writes the map a v1.0 writer emits; ``parse_header`` checks a decoded map against the schema and
returns a :class:`ParsedHeader` from which, with the payload's tensors, the CloneDelta is assembled.

Compatibility (spec: "Compatibility"): every map of the schema has a fixed set of keys. A key this reader does not
know is an error, unless the file's minor version is newer than ours *and* the key is a field name whose path is
listed in the header's ``optional_fields`` (paths like ``"modules.*.quant"``, ``"*"`` standing for any array index
or tensor name; ``[]`` in a 1.0 file); such keys are ignored and reported. A change that old readers must not ignore
is announced in ``required_features``; this reader knows none, so any entry there is refused with VersionError.

The rules of one value (types, names, grammars) are in rules.py, shared with the writer; the checks run in the
spec's order (§4.8), so a file that breaks several rules always gets the class of the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pnc_pack.errors import FormatError, LimitError, VersionError
from pnc_pack.format.delta import DTYPE_SIZES, CloneDelta, ClonedModule, LabelEntry, Mask, RawTensor
from pnc_pack.format.limits import DEFAULT_LIMITS, MAJOR, MINOR, Limits
from pnc_pack.format.payload import ENCODINGS
from pnc_pack.format.rules import (
    FEATURE_RE,
    FIELD_RE,
    KIND_RE,
    MAX_PATH,
    PATH_RE,
    as_int,
    as_list,
    as_map,
    as_str,
    as_text,
    check_tensor_name,
    label_module,
    sorted_unique_strs,
    tname,
)
from pnc_pack.refs import ModelRef

KNOWN_FEATURES: frozenset[str] = frozenset()  # v1.0 defines no optional-to-know features
MAX_BLOCKS = 1 << 16

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
# The order of the checks below is the spec's (§4.8): a file that breaks several rules is refused with the class of
# the first. Every value's own rules (rules.py: type, then length, then grammar or range) come before any rule that
# relates it to another value, and the fields come in the order of the schema tables.
class _Ctx:
    def __init__(self, newer_minor: bool, optional: set[str], limits: Limits):
        self.newer_minor = newer_minor
        self.optional = optional
        self.limits = limits
        self.ignored: list[str] = []

    def fields(self, value: Any, known: frozenset[str], where: str, pattern: str) -> dict[str, Any]:
        """``value`` as a map restricted to ``known`` keys; unknown keys refused or (newer minor, listed) ignored."""
        d = as_map(value, where)
        out = {}
        for k, v in d.items():
            if k in known:
                out[k] = v
                continue
            path = f"{pattern}.{k}" if pattern else k
            if self.newer_minor and FIELD_RE.fullmatch(k) and path in self.optional:
                self.ignored.append(f"{where}.{k}")
                continue
            why = "" if self.newer_minor else f" (the file is version {MAJOR}.{MINOR} or older: no such field)"
            raise FormatError(f"{where}: unknown field {k!r}{why}")
        for k in sorted(known - {"repo_id", "commit", "local_path"}):
            if k not in out:
                raise FormatError(f"{where}: missing field {k!r}")
        return out


def _ref(v: Any, where: str, ctx: _Ctx, pattern: str) -> ModelRef:
    """A reference: its keys and the msgpack types of its values are FormatError, their content ReferenceError."""
    d = ctx.fields(v, REF_KEYS, where, pattern)
    as_str(d["arch"], f"{where}.arch")
    as_map(d["arch_args"], f"{where}.arch_args")
    files = as_map(d["files"], f"{where}.files")
    d["files"] = {}
    for name, fd in files.items():
        fw = f"{where}.files[{name!r}]"
        e = ctx.fields(fd, FILE_KEYS, fw, f"{pattern}.files.*")
        as_str(e["sha256"], f"{fw}.sha256")
        if type(e["size"]) is not int:
            raise FormatError(f"{fw}.size: expected an integer, got {tname(e['size'])}")
        d["files"][name] = e
    for k in ("repo_id", "commit", "local_path"):
        if k in d:
            as_str(d[k], f"{where}.{k}")
    return ModelRef.from_dict(d, where)


def parse_header(h: Any, major: int, minor: int, limits: Limits = DEFAULT_LIMITS) -> ParsedHeader:
    """Validate a decoded header map (see the spec's schema table) against the container's version."""
    h = as_map(h, "header")
    features = []
    if "required_features" in h:  # first: a feature this reader lacks may change what everything else means
        features = sorted_unique_strs(h["required_features"], "header.required_features", FEATURE_RE)
        unknown = [f for f in features if f not in KNOWN_FEATURES]
        if unknown:
            raise VersionError(
                f"header.required_features: this reader does not support {', '.join(map(repr, unknown))}")
    optional = []
    if "optional_fields" in h:
        optional = sorted_unique_strs(h["optional_fields"], "header.optional_fields", PATH_RE)
        for i, p in enumerate(optional):
            if len(p) > MAX_PATH:
                raise FormatError(f"header.optional_fields[{i}]: a path of more than {MAX_PATH} characters")
        if minor == 0 and optional:
            raise FormatError("header.optional_fields: must be [] in a 1.0 file (1.0 has no optional fields)")
    ctx = _Ctx(minor > MINOR, set(optional), limits)
    top = ctx.fields(h, TOP_KEYS, "header", "")
    version = as_list(top["version"], "header.version")
    if len(version) != 2:
        raise FormatError(f"header.version: expected [major, minor], got {len(version)} entries")
    version = [as_int(x, f"header.version[{i}]") for i, x in enumerate(version)]
    if version != [major, minor]:
        raise FormatError(f"header.version {version!r} does not match the preamble's {major}.{minor}")

    target = _ref(top["target"], "header.target", ctx, "target")
    target_blocks = as_int(top["target_blocks"], "header.target_blocks", 1, MAX_BLOCKS)
    modules = [_module(m, i, target_blocks, ctx) for i, m in
               enumerate(as_list(top["modules"], "header.modules", limits.max_modules))]
    classifier_kind = as_str(top["classifier_kind"], "header.classifier_kind", KIND_RE)
    classifier_args = as_map(top["classifier_args"], "header.classifier_args")
    if "num_outputs" not in classifier_args:
        raise FormatError("header.classifier_args: missing field 'num_outputs'")
    n_out = as_int(classifier_args["num_outputs"], "header.classifier_args.num_outputs")
    classifier_tensors = _local_names(top["classifier_tensors"], "header.classifier_tensors", limits)
    labels = _labels(top["labels"], modules, ctx)
    if n_out != len(labels):
        raise FormatError(f"header.classifier_args.num_outputs is {n_out}; it must equal the {len(labels)} labels")
    provenance = as_map(top["provenance"], "header.provenance")
    metrics = as_map(top["metrics"], "header.metrics")
    index = _tensor_index(top["tensors"], ctx)
    named = {f"classifier.{n}" for n in classifier_tensors}
    for i, m in enumerate(modules):
        named.update(f"modules.{i}.adapter.{n}" for n in m["adapter_tensors"])
    if named != set(index):
        missing, extra = sorted(named - set(index)), sorted(set(index) - named)
        raise FormatError(f"header.tensors does not match the tensor names of the classifier and adapters "
                          f"(not in the index: {missing[:5]}, not owned by any part: {extra[:5]})")
    payload = ctx.fields(top["payload"], PAYLOAD_KEYS, "header.payload", "payload")
    encoding = as_str(payload["encoding"], "header.payload.encoding")
    if encoding not in ENCODINGS:
        raise VersionError(f"header.payload.encoding {encoding!r} is not supported (known: {', '.join(ENCODINGS)})")
    raw_size = as_int(payload["raw_size"], "header.payload.raw_size", limit=limits.max_payload_raw)
    return ParsedHeader(
        version=(major, minor), target=target, target_blocks=target_blocks, modules=modules,
        classifier_kind=classifier_kind, classifier_args=classifier_args, classifier_tensors=classifier_tensors,
        labels=labels, provenance=provenance, metrics=metrics, index=index, encoding=encoding, raw_size=raw_size,
        required_features=features, ignored_fields=ctx.ignored,
    )


def _local_names(v: Any, where: str, limits: Limits) -> list[str]:
    names = [check_tensor_name(x, f"{where}[{i}]", limits.max_name)
             for i, x in enumerate(as_list(v, where, limits.max_tensors))]
    if names != sorted(set(names)):
        raise FormatError(f"{where}: names must be sorted and unique")
    return names


def _tensor_index(v: Any, ctx: _Ctx) -> dict[str, tuple[str, tuple[int, ...]]]:
    lim = ctx.limits
    d = as_map(v, "header.tensors")
    if len(d) > lim.max_tensors:
        raise LimitError(f"header.tensors: {len(d)} tensors exceed the limit of {lim.max_tensors}")
    out = {}
    for name, entry in d.items():
        where = f"header.tensors[{name!r}]"
        check_tensor_name(name, where, lim.max_name)
        e = ctx.fields(entry, TENSOR_KEYS, where, "tensors.*")
        dtype = as_str(e["dtype"], f"{where}.dtype")
        if dtype not in DTYPE_SIZES:
            raise FormatError(f"{where}.dtype: unsupported dtype {dtype!r}")
        shape = as_list(e["shape"], f"{where}.shape", lim.max_dims)
        dims = tuple(as_int(s, f"{where}.shape[{j}]", limit=lim.max_dim) for j, s in enumerate(shape))
        n = 1
        for dim in dims:
            n *= dim
        if n > lim.max_elements:
            raise LimitError(f"{where}.shape: {n} elements exceed the limit of {lim.max_elements}")
        out[name] = (dtype, dims)
    return out


def _module(v: Any, i: int, target_blocks: int, ctx: _Ctx) -> dict[str, Any]:
    where = f"header.modules[{i}]"
    lim = ctx.limits
    m = ctx.fields(v, MODULE_KEYS, where, "modules.*")
    source = _ref(m["source"], f"{where}.source", ctx, "modules.*.source")
    source_blocks = as_int(m["source_blocks"], f"{where}.source_blocks", 1, MAX_BLOCKS)
    target_position = as_int(m["target_position"], f"{where}.target_position", 0, target_blocks - 1)
    source_position = as_int(m["source_position"], f"{where}.source_position", 0, source_blocks - 1)
    classes = [as_int(c, f"{where}.clone_classes[{j}]")
               for j, c in enumerate(as_list(m["clone_classes"], f"{where}.clone_classes", lim.max_labels))]
    if not classes or len(set(classes)) != len(classes):
        raise FormatError(f"{where}.clone_classes: must be a non-empty list of unique class indices")
    masks = []
    for j, mk in enumerate(as_list(m["masks"], f"{where}.masks", lim.max_tensors)):
        mw = f"{where}.masks[{j}]"
        md = ctx.fields(mk, MASK_KEYS, mw, "modules.*.masks.*")
        layer = check_tensor_name(md["layer"], f"{mw}.layer", lim.max_name)
        filters = as_int(md["filters"], f"{mw}.filters", 1, limit=lim.max_mask_filters)
        if not isinstance(md["bits"], bytes):
            raise FormatError(f"{mw}.bits: expected bytes (msgpack bin), got {tname(md['bits'])}")
        try:
            masks.append(Mask(layer, filters, md["bits"]))
        except FormatError as exc:
            raise FormatError(f"{mw}: {exc}") from None
    layers = [mk.layer for mk in masks]
    if len(set(layers)) != len(layers):
        raise FormatError(f"{where}.masks: layers must be unique")
    return {
        "source": source,
        "source_blocks": source_blocks,
        "target_position": target_position,
        "source_position": source_position,
        "clone_classes": tuple(classes),
        "masks": tuple(masks),
        "adapter_kind": as_str(m["adapter_kind"], f"{where}.adapter_kind", KIND_RE),
        "adapter_args": as_map(m["adapter_args"], f"{where}.adapter_args"),
        "adapter_tensors": _local_names(m["adapter_tensors"], f"{where}.adapter_tensors", lim),
    }


def _labels(v: Any, modules: list[dict], ctx: _Ctx) -> list[LabelEntry]:
    # Sets, not the clone_classes tuples: 2^16 labels each searched in a 2^16-entry tuple took 24 s (16 s CPU) to
    # load, a hang an attacker gets from a 2.7 MB header (tests/attacks/labels-quadratic.pncd); now 1 s.
    cloned = [frozenset(m["clone_classes"]) for m in modules]
    out, seen = [], set()
    for j, e in enumerate(as_list(v, "header.labels", ctx.limits.max_labels)):
        where = f"header.labels[{j}]"
        d = ctx.fields(e, LABEL_KEYS, where, "labels.*")
        model = as_str(d["model"], f"{where}.model")
        try:
            k = label_module(model)
        except FormatError as exc:
            raise FormatError(f"{where}.model: {exc}") from None
        index = as_int(d["class_index"], f"{where}.class_index")
        name = as_text(d["name"], f"{where}.name", ctx.limits.max_name)
        if k is not None:
            if k >= len(modules):
                raise FormatError(f"{where}.model: {model!r} names module {k}, but there are {len(modules)}")
            if index not in cloned[k]:
                raise FormatError(f"{where}.class_index: {index} is not among module {k}'s clone_classes")
        if (model, index) in seen:
            raise FormatError(f"{where}: ({model}, {index}) appears twice in the label map")
        seen.add((model, index))
        out.append(LabelEntry(model, index, name))
    return out
