"""``apply`` and :class:`ClonedModel`: a delta spec in, the cloned network out, as the Hub libraries shape it
(``ClonedModel.from_pretrained(spec)``, ``cloned.push_to_hub(repo_id)``)."""

from __future__ import annotations

from typing import Iterable

from pnc_pack.api.specs import PathLike, locate_models, open_delta
from pnc_pack.clone.model import ClonedNetwork


class ClonedModel(ClonedNetwork):
    """The cloned network (:class:`~pnc_pack.clone.model.ClonedNetwork`: target + masked sources + adapters +
    heads) with the Hub-facing methods: ``from_pretrained`` (any delta spec) and ``push_to_hub``."""

    @classmethod
    def from_pretrained(cls, delta, **kw) -> "ClonedModel":
        """:func:`apply` ``delta`` (a path, bytes, CloneDelta or ``hf://ORG/NAME[@REV]``); same keywords."""
        return apply(delta, **kw)

    def push_to_hub(self, repo_id: str, **kw) -> str:
        """Push this model's delta (current adapter and classifier tensors) to ``repo_id``; returns the commit sha.
        Keywords as :func:`pnc_pack.hub.push` (``branch``, ``private``, ``message``, ``parent_commit``)."""
        from pnc_pack.hub import push

        return push(self.to_delta(), repo_id, **kw)


def apply(delta, *, source=None, target=None, models_dir: PathLike | None = None, trusted_keys: Iterable = (),
          require_signature: bool = False, device=None) -> ClonedModel:
    """Rebuild the cloned network a delta describes: read and check the delta (structure, limits, digest), enforce
    the signature policy, find every pinned model (``target``/``source`` folders or ``hf://`` specs, then
    ``models_dir``, a local ref's path, the Hub cache at the pinned commit), check every pin over the exact bytes
    read, and assemble. ``source``: one spec, or one per module. Nothing pretrained is modified;
    ``cloned.detach()`` returns the target, bit for bit as loaded."""
    from pnc_pack.clone.apply import assemble

    d = open_delta(delta, trusted_keys=trusted_keys, require_signature=require_signature)
    target_dir, source_dirs = locate_models(d, target=target, source=source, models_dir=models_dir)
    return assemble(d, target_dir, source_dirs, device=device, cls=ClonedModel)
