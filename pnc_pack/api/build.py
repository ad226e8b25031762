"""Building from specs: ``hf://`` models are resolved (pinned to their commits) here, then the builder runs on
folders. Target first everywhere; the builder's own functions have the same signatures and take folders."""

from __future__ import annotations

from typing import Any, Sequence

from pnc_pack.api.specs import locate_model, open_delta, pinned_model, resolve_model
from pnc_pack.format.delta import CloneDelta


def _model(spec):
    """A folder stays a folder (the builder pins it); an ``hf://`` spec becomes a ResolvedModel."""
    from pnc_pack.refs import is_hub_spec

    return resolve_model(spec) if is_hub_spec(spec) else spec


def build_clone(target, source, dataset, clone_classes, **kw) -> CloneDelta:
    """Partial Network Cloning of ``clone_classes`` from ``source`` into ``target`` (folders or ``hf://`` specs):
    :func:`pnc_pack.builder.api.build_clone`, whose keywords (``seed``, ``eval_data``, ``config``, settings) it
    takes."""
    from pnc_pack.builder.api import build_clone as build

    return build(_model(target), _model(source), dataset, clone_classes, **kw)


def build_multi(target, sources: Sequence[tuple[Any, Sequence[int]]], dataset, **kw) -> CloneDelta:
    """One module per (source, classes) pair (SUPP Eq. 5): :func:`pnc_pack.builder.multi.build_multi`."""
    from pnc_pack.builder.multi import build_multi as build

    return build(_model(target), [(_model(s), c) for s, c in sources], dataset, **kw)


def add_source(base, source, classes: Sequence[int], dataset, *, target=None, models_dir=None, **kw) -> CloneDelta:
    """``base`` (any delta spec) plus one module cloning ``classes`` of ``source``, built against exactly the target
    ``base`` pins (found at ``target``, in ``models_dir``, at its local path, or in the Hub cache); the base's modules
    are not retrained. :func:`pnc_pack.builder.multi.add_source`."""
    from pnc_pack.builder.multi import add_source as add

    base = open_delta(base)
    tgt = pinned_model(base.target, target, models_dir)
    base_sources = []
    if kw.get("eval_data") is not None:  # the grown delta is evaluated whole: the base's sources are needed too
        base_sources = [locate_model(m.source, None, models_dir) for m in base.modules]
    return add(base, tgt, _model(source), classes, dataset, base_sources=base_sources, **kw)


def select_source(target, candidates, dataset, clone_classes, **kw):
    """Score candidate sources for ``clone_classes`` (SUPP Eqs. 6-8): :func:`pnc_pack.builder.select.select_source`."""
    from pnc_pack.builder.select import select_source as select

    return select(_model(target), [_model(c) for c in candidates], dataset, clone_classes, **kw)


def build_selected(target, candidates, dataset, clone_classes, **kw):
    """Choose the source, then build from it: :func:`pnc_pack.builder.select.build_selected` -> (delta, selection)."""
    from pnc_pack.builder.select import build_selected as build

    return build(_model(target), [_model(c) for c in candidates], dataset, clone_classes, **kw)
