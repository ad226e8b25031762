"""Several sources in one clone (SUPP Eq. 5), built: one ``build_clone`` per source against the target alone, then
composed (:mod:`pnc_pack.format.compose`, re-exported here); adding a module builds only that module.

Same inputs and seed give the same bytes: ``build_multi(target, [(A, a), (B, b)], ...)`` without ``eval_data`` is
byte for byte ``compose([build_clone(target, A, ..., a), build_clone(target, B, ..., b)])``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from pnc_pack.errors import UsageError
from pnc_pack.format.compose import Part, add, assemble, compose, find_modules, remove, split, with_eval  # noqa: F401 (re-exported)
from pnc_pack.format.delta import CloneDelta


# -- building: one build_clone per source, then compose --------------------------------------------------------
def _check_disjoint(groups: Sequence[Sequence[int]], taken: Mapping[int, str] | None = None) -> None:
    seen = dict(taken or {})
    for i, classes in enumerate(groups):
        for c in classes:
            if c in seen:
                raise UsageError(f"class {c} is asked of source {i} and of {seen[c]}: every class must come from one "
                                 "source (to choose between sources for the same classes, use source selection)")
            seen[int(c)] = f"source {i}"


def evaluate_into(delta: CloneDelta, eval_data, target, sources: Sequence, device=None) -> CloneDelta:
    """``delta`` with ``metrics["eval"]`` measured on the test split of ``eval_data``; ``target`` and ``sources``
    (one per module) are the model folders (or ResolvedModels) the delta's pins name."""
    from pnc_pack.builder.api import resolve
    from pnc_pack.clone.apply import assemble as assemble_model
    from pnc_pack.clone.evaluate import evaluate_delta_model
    from pnc_pack.data import load_dataset

    ev = load_dataset(eval_data) if isinstance(eval_data, str) else eval_data
    cloned = assemble_model(delta, resolve(target)[0], [resolve(s)[0] for s in sources], device=device)
    return with_eval(delta, {"data": ev.name, **evaluate_delta_model(cloned, ev, resize=True)})  # as D_t is fitted


def build_multi(target, sources: Sequence[tuple[Any, Sequence[int]]], dataset, *, seed: int = 0, eval_data=None,
                config=None, progress=None, **overrides) -> CloneDelta:
    """SUPP Eq. 5: one module per (source, clone classes) pair, each built by ``build_clone`` against ``target``
    alone (same seed and settings), then composed. ``dataset``: one Dataset/spec for all, or one per source.
    With ``eval_data``, every module keeps its own evaluation (alone with the target) and ``metrics["eval"]`` holds
    the whole clone's, per functionality. Models: folders or ResolvedModels (:func:`pnc_pack.api.build_multi`
    takes ``hf://`` specs too)."""
    from pnc_pack.builder.api import build_clone
    from pnc_pack.builder.distributed import active
    from pnc_pack.data import load_dataset

    sources = [(s, [int(c) for c in classes]) for s, classes in sources]
    if not sources:
        raise UsageError("no source given")
    _check_disjoint([c for _, c in sources])
    datasets = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset] * len(sources)
    if len(datasets) != len(sources):
        raise UsageError(f"{len(datasets)} datasets for {len(sources)} sources: give one, or one per source")
    loaded: dict[int, Any] = {}
    datasets = [loaded.setdefault(id(d), load_dataset(d) if isinstance(d, str) else d) for d in datasets]
    ev = load_dataset(eval_data) if isinstance(eval_data, str) else eval_data
    runner = active()  # the ranks of a torch.distributed build (builder/distributed.py), or None: here, in order
    if runner is not None:
        deltas = runner.modules(target, [(src, classes, ds) for (src, classes), ds in zip(sources, datasets)],
                                seed=seed, eval_data=ev, config=config, overrides=overrides)
    else:
        deltas = [build_clone(target, src, ds, classes, seed=seed, eval_data=ev, config=config, progress=progress,
                              **overrides) for (src, classes), ds in zip(sources, datasets)]
    delta = compose(deltas)
    if ev is not None and len(deltas) > 1:
        delta = evaluate_into(delta, ev, target, [s for s, _ in sources], device=overrides.get("device"))
    return delta


def add_source(base: CloneDelta, target, source, classes: Sequence[int], dataset, *, base_sources: Sequence = (),
               seed: int = 0, eval_data=None, config=None, progress=None, **overrides) -> CloneDelta:
    """``base`` plus one module cloning ``classes`` of ``source``, built against ``target`` (the folder or
    ResolvedModel of ``base``'s pinned target); the base's modules are not retrained. With ``eval_data``,
    ``base_sources`` are the folders of the base's modules' sources (:func:`pnc_pack.api.add_source` finds them
    from the pins)."""
    from pnc_pack.builder.api import build_clone
    from pnc_pack.data import load_dataset

    classes = [int(c) for c in classes]
    _, parts = split(base)
    taken = {}
    for i, p in enumerate(parts):
        for c in (p.dataset_classes or []):
            taken[c] = f"module {i} of the base delta"
    _check_disjoint([classes], taken)
    ev = load_dataset(eval_data) if isinstance(eval_data, str) else eval_data
    if ev is not None and len(base_sources) != len(base.modules):
        raise UsageError(f"evaluating the grown delta needs the {len(base.modules)} source folder(s) of the base's "
                         f"modules, got {len(base_sources)}")
    new = build_clone(target, source, dataset, classes, seed=seed, eval_data=ev, config=config, progress=progress,
                      **overrides)
    delta = add(base, new)
    if ev is not None and len(delta.modules) > 1:
        delta = evaluate_into(delta, ev, target, [*base_sources, source], device=overrides.get("device"))
    return delta
