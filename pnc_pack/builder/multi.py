"""Several sources in one clone (SUPP Eq. 5), built: one ``build_clone`` per source against the target alone, then
composed (:mod:`pnc_pack.format.compose`, re-exported here); adding a module builds only that module.

Same inputs and seed give the same bytes: ``build_multi(target, [(A, a), (B, b)], ...)`` without ``eval_data`` is
byte for byte ``compose([build_clone(A, target, ..., a), build_clone(B, target, ..., b)])``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from pnc_pack.errors import UsageError
from pnc_pack.format.compose import (  # noqa: F401 (re-exported)
    Part, add, assemble, compose, find_modules, remove, split, with_eval)
from pnc_pack.format.delta import CloneDelta


# -- building: one build_clone per source, then compose --------------------------------------------------------
def target_spec(delta: CloneDelta) -> str:
    """Where ``build_clone`` finds the delta's target: its local path, or ``hf://REPO@COMMIT``."""
    ref = delta.target
    return str(ref.path) if ref.is_local else f"hf://{ref.repo_id}@{ref.commit}"


def _check_disjoint(groups: Sequence[Sequence[int]], taken: Mapping[int, str] | None = None) -> None:
    seen = dict(taken or {})
    for i, classes in enumerate(groups):
        for c in classes:
            if c in seen:
                raise UsageError(f"class {c} is asked of source {i} and of {seen[c]}: every class must come from one "
                                 "source (to choose between sources for the same classes, use source selection)")
            seen[int(c)] = f"source {i}"


def evaluate_into(delta: CloneDelta, eval_data, **apply_kw) -> CloneDelta:
    """``delta`` with ``metrics["eval"]`` measured on the test split of ``eval_data`` (models located by its refs)."""
    from pnc_pack.clone.apply import apply
    from pnc_pack.clone.evaluate import evaluate_delta_model
    from pnc_pack.data import load_dataset

    ev = load_dataset(eval_data) if isinstance(eval_data, str) else eval_data
    result = evaluate_delta_model(apply(delta, **apply_kw), ev)
    return with_eval(delta, {"data": ev.name, **result})


def build_multi(target, sources: Sequence[tuple[Any, Sequence[int]]], dataset, *, seed: int = 0, eval_data=None,
                config=None, progress=None, **overrides) -> CloneDelta:
    """SUPP Eq. 5: one module per (source, clone classes) pair, each built by ``build_clone`` against ``target``
    alone (same seed and settings), then composed. ``dataset``: one Dataset/spec for all, or one per source.
    With ``eval_data``, every module keeps its own evaluation (alone with the target) and ``metrics["eval"]`` holds
    the whole clone's, per functionality."""
    from pnc_pack.build.api import build_clone
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
    deltas = [build_clone(src, target, ds, classes, seed=seed, eval_data=ev, config=config, progress=progress,
                          **overrides) for (src, classes), ds in zip(sources, datasets)]
    delta = compose(deltas)
    if ev is not None and len(deltas) > 1:
        delta = evaluate_into(delta, ev)
    return delta


def add_source(base: CloneDelta, source, classes: Sequence[int], dataset, *, target=None, seed: int = 0,
               eval_data=None, config=None, progress=None, **overrides) -> CloneDelta:
    """``base`` plus one module cloning ``classes`` of ``source``, built against ``base``'s target (its pinned
    path or hub commit, or ``target``); the base's modules are not retrained."""
    from pnc_pack.build.api import build_clone
    from pnc_pack.data import load_dataset

    classes = [int(c) for c in classes]
    _, parts = split(base)
    taken = {}
    for i, p in enumerate(parts):
        for c in (p.dataset_classes or []):
            taken[c] = f"module {i} of the base delta"
    _check_disjoint([classes], taken)
    ev = load_dataset(eval_data) if isinstance(eval_data, str) else eval_data
    new = build_clone(source, target if target is not None else target_spec(base), dataset, classes, seed=seed,
                      eval_data=ev, config=config, progress=progress, **overrides)
    delta = add(base, new)
    if ev is not None and len(delta.modules) > 1:
        delta = evaluate_into(delta, ev, target=target)
    return delta
