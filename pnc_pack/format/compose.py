"""Clone deltas module by module, torch-free: compose several, add, remove, split (SUPP Eq. 5).

M_c = Insert_{ρ}(M_t, M_f^ρ, R^ρ): each module ρ has its own mask, R, R_s, adapter and classifier head
``new.<ρ>`` over [f_t, f_s^ρ] (``target-head-linear``, :mod:`pnc_pack.clone.parts`), and the target's own logits
stay the frozen target head's. So modules are independent by construction: a module is built against the target
alone (:mod:`pnc_pack.builder.multi`), and a delta with several modules is the *composition* of single-module deltas.

- :func:`compose` joins deltas of the same target: modules renumbered in order, ``new.<i>`` tensors and
  ``source:<i>`` label origins renumbered with them, the target's labels first, then each module's classes.
- :func:`add` = compose(base, new): nothing of the base is retrained or changed.
- :func:`remove` drops modules. Since every module's logits depend only on the target and its own source, the
  remaining modules' logits are exactly what they were; removing the last module added gives back, byte for byte,
  the delta before it was added (provenance and metrics of each module travel with it), and removing every module
  leaves a delta with no module, whose model *is* the target.

What is *not* independent is the argmax across modules: a module's head was trained to beat the target's logits
on its own classes (and to stay below them on the builder's negatives), never against another module's logits.
Images of module A's classes can be routed to module B's classes; ``pnc_pack.clone.evaluate`` reports that routing
per functionality, and tools/bench/multi.py measures it (Table 3 of the supplementary).

Provenance and metrics: a delta with one module keeps that module's own (as ``build_clone`` wrote them); a delta
with several keeps ``{"modules": [one record per module], ...}`` in both, plus ``metrics["eval"]`` of the whole
clone when it was measured. Every result is unsigned (its content is new): sign it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from pnc_pack.errors import FormatError, UsageError
from pnc_pack.format.delta import CloneDelta, ClonedModule, LabelEntry, RawTensor

CLASSIFIER = "target-head-linear"
METHOD = "partial-network-cloning, several sources (SUPP Eq. 5)"


@dataclass(frozen=True)
class Part:
    """One module of a delta with everything that belongs to it alone."""

    module: ClonedModule
    head: Mapping[str, RawTensor]  # the head's tensors by local name ("weight", "bias")
    labels: tuple[LabelEntry, ...]  # its outputs, model field to be renumbered
    provenance: Mapping[str, Any]
    metrics: Mapping[str, Any]

    @property
    def class_names(self) -> list[str]:
        return [lab.name for lab in self.labels]

    @property
    def dataset_classes(self) -> list[int] | None:
        """The dataset labels this module clones, when the builder recorded them (provenance ``clone_classes``)."""
        c = self.provenance.get("clone_classes") if isinstance(self.provenance, Mapping) else None
        return [int(v) for v in c] if isinstance(c, (list, tuple)) and len(c) == len(self.labels) else None


def _records(d: Mapping[str, Any], key_n: int) -> list | None:
    v = d.get("modules") if isinstance(d, Mapping) else None
    return list(v) if isinstance(v, (list, tuple)) and len(v) == key_n and all(isinstance(x, Mapping) for x in v) \
        else None


def split(delta: CloneDelta) -> tuple[tuple[LabelEntry, ...], list[Part]]:
    """(the target's label entries, one Part per module). Refuses label maps not laid out as the loader reads them:
    target outputs first, then module 0's classes in ``clone_classes`` order, then module 1's, ..."""
    if delta.classifier_kind != CLASSIFIER:
        raise UsageError(f"only {CLASSIFIER!r} deltas can be composed (this one is {delta.classifier_kind!r})")
    n = len(delta.modules)
    old = tuple(lab for lab in delta.labels if lab.model == "target")
    want = list(old)
    for i, m in enumerate(delta.modules):
        want += [LabelEntry(f"source:{i}", c, "") for c in m.clone_classes]
    got = [(lab.model, lab.class_index) for lab in delta.labels]
    if got != [(lab.model, lab.class_index) for lab in want]:
        raise FormatError("the label map is not laid out as target outputs, then each module's classes in order")
    prov, mets = _records(delta.provenance, n), _records(delta.metrics, n)
    parts, start = [], len(old)
    for i, m in enumerate(delta.modules):
        k = len(m.clone_classes)
        prefix = f"new.{i}."
        head = {name[len(prefix):]: t for name, t in delta.classifier.items() if name.startswith(prefix)}
        p = prov[i] if prov is not None else (dict(delta.provenance) if n == 1 else {})
        mt = mets[i] if mets is not None else (dict(delta.metrics) if n == 1 else {})
        parts.append(Part(m, head, tuple(delta.labels[start:start + k]), p, mt))
        start += k
    return old, parts


def _same_model(a, b) -> bool:
    """Same pretrained model: same architecture, arguments and file digests (paths or hub ids may differ)."""
    return a.arch == b.arch and dict(a.arch_args) == dict(b.arch_args) and dict(a.files) == dict(b.files)


def assemble(template: CloneDelta, old: Sequence[LabelEntry], parts: Sequence[Part],
             eval_metrics: Mapping[str, Any] | None = None) -> CloneDelta:
    """A delta of ``template``'s target with ``parts`` as modules 0, 1, ... (signatures dropped: new content)."""
    seen: dict[str, str] = {lab.name: "the target" for lab in old}
    for i, p in enumerate(parts):
        for name in p.class_names:
            if name in seen:
                raise UsageError(f"class {name!r} would be cloned by module {i} and by {seen[name]}: every class "
                                 "must come from one place")
            seen[name] = f"module {i}"
    labels = tuple(old)
    classifier: dict[str, RawTensor] = {}
    for i, p in enumerate(parts):
        labels += tuple(LabelEntry(f"source:{i}", lab.class_index, lab.name) for lab in p.labels)
        classifier.update({f"new.{i}.{k}": v for k, v in p.head.items()})
    if len(parts) == 1:
        provenance, metrics = dict(parts[0].provenance), dict(parts[0].metrics)
    else:
        provenance = {"builder": "pnc-pack", "method": METHOD, "modules": [dict(p.provenance) for p in parts]}
        metrics = {"modules": [dict(p.metrics) for p in parts]}
    if eval_metrics is not None:
        metrics["eval"] = dict(eval_metrics)
    args = dict(template.classifier_args)
    args.update(num_outputs=len(labels), num_old=len(old))
    return CloneDelta(template.target, template.target_blocks, tuple(p.module for p in parts), CLASSIFIER, args,
                      classifier, labels, provenance, metrics, signatures=())


def compose(deltas: Sequence[CloneDelta]) -> CloneDelta:
    """One delta with every module of ``deltas`` in order (all of the same target)."""
    deltas = list(deltas)
    if not deltas:
        raise UsageError("nothing to compose: no delta given")
    first = deltas[0]
    old, parts = split(first)
    for j, d in enumerate(deltas[1:], 1):
        if not _same_model(d.target, first.target) or d.target_blocks != first.target_blocks:
            raise UsageError(f"delta {j} clones into target {d.target.short()}, delta 0 into {first.target.short()}: "
                             "modules can only be combined on the same target")
        o, p = split(d)
        if [(lab.class_index, lab.name) for lab in o] != [(lab.class_index, lab.name) for lab in old]:
            raise UsageError(f"delta {j}'s target label map differs from delta 0's")
        parts += p
    return assemble(first, old, parts)


def add(base: CloneDelta, new: CloneDelta) -> CloneDelta:
    """``base`` with ``new``'s module(s) appended; nothing of ``base`` changes."""
    return compose([base, new])


def remove(delta: CloneDelta, indices: Iterable[int]) -> CloneDelta:
    """``delta`` without the modules at ``indices``; the rest keep their order (and are renumbered)."""
    old, parts = split(delta)
    drop = set()
    for i in indices:
        if not isinstance(i, int) or not 0 <= i < len(parts):
            raise UsageError(f"no module {i}: the delta has modules 0..{len(parts) - 1}" if parts else
                             f"no module {i}: the delta has no module")
        drop.add(i)
    return assemble(delta, old, [p for i, p in enumerate(parts) if i not in drop])


def find_modules(delta: CloneDelta, *, source: str | None = None, classes: Sequence[int] | None = None) -> list[int]:
    """Indices of the modules whose source matches ``source`` (a path, hub repo id or URI, or the start of a
    sha256 of its weights) and/or that clone exactly ``classes`` (dataset labels, or class names)."""
    _, parts = split(delta)
    out = []
    for i, p in enumerate(parts):
        ref = p.module.source
        if source is not None:
            names = {ref.uri(), ref.short(), str(ref.path or ""), str(ref.repo_id or "")}
            digest = ref.files.get("model.safetensors")
            ok = source in names or (len(source) >= 8 and digest is not None and digest.sha256.startswith(source))
            if not ok and ref.path and source.rstrip("/") == str(ref.path).rstrip("/"):
                ok = True
            if not ok:
                continue
        if classes is not None:
            want = sorted(int(c) for c in classes)
            have = p.dataset_classes
            if (sorted(have) if have is not None else None) != want and sorted(p.class_names) != sorted(map(str, want)):
                continue
        out.append(i)
    return out


def with_eval(delta: CloneDelta, result: Mapping[str, Any]) -> CloneDelta:
    """``delta`` with the whole clone's evaluation stored in ``metrics["eval"]``."""
    old, parts = split(delta)
    return assemble(delta, old, parts, eval_metrics=result)
