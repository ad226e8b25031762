"""``pnc_pack.conditional_similarity``: the paper's Sim(M_c|D_f, M|D_f) of a clone against its target and sources
on each functionality's data (:mod:`pnc_pack.builder.similarity`), from a delta spec or an applied clone."""

from __future__ import annotations

from pnc_pack.api.specs import PathLike


def conditional_similarity(delta, data, *, split: str = "test", anchors: int = 50, masks_per_anchor: int = 100,
                           seed: int = 0, resize: bool = False, source=None, target=None,
                           models_dir: PathLike | None = None, device=None) -> dict:
    """``delta``: a ClonedNetwork (``pnc_pack.apply``'s result) or anything :func:`pnc_pack.apply` takes (then
    ``source``, ``target``, ``models_dir`` and ``device`` go to it); ``data``: a dataset spec or a Dataset. Returns
    the dict ``pnc-pack eval --similarity --json`` prints under ``"similarity"``."""
    from pnc_pack.builder.similarity import conditional_similarity as measure
    from pnc_pack.clone.model import ClonedNetwork

    if not isinstance(delta, ClonedNetwork):
        from pnc_pack.api.model import apply

        delta = apply(delta, source=source, target=target, models_dir=models_dir, device=device)
    return measure(delta, data, split=split, anchors=anchors, masks_per_anchor=masks_per_anchor, seed=seed,
                   resize=resize)
