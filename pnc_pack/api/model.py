"""``apply`` and :class:`ClonedModel`: a delta spec in, the cloned network out, as the Hub libraries shape it
(``ClonedModel.from_pretrained(spec)``, ``cloned.push_to_hub(repo_id)``).

Live modules: ``cloned.attach(delta)`` adds the modules of another delta built on the same target, and
``cloned.remove(...)`` drops modules, without reloading the target. The new delta is opened under the trust policy
the model was applied with (or the one given), its target must be this model's (same architecture and file
digests), its sources are found and checked against their pins as ``apply`` does, and only then is the new state
swapped in, in one assignment (:meth:`~pnc_pack.clone.model.ClonedNetwork.swap_modules`): a forward running in
another thread sees the modules before or after, never half. Any refusal leaves the running model as it was. The
outputs equal those of a fresh ``apply`` of ``compose([current, new])`` or ``remove(current, indices)``.
"""

from __future__ import annotations

import threading
from typing import Iterable, Sequence

from pnc_pack.api.specs import PathLike, locate_model, locate_models, model_role, open_delta
from pnc_pack.clone.model import ClonedNetwork
from pnc_pack.errors import ModelMismatchError, UsageError

_UPDATES = threading.RLock()  # one attach/remove at a time (forward never takes it)


class ClonedModel(ClonedNetwork):
    """The cloned network (:class:`~pnc_pack.clone.model.ClonedNetwork`: target + masked sources + adapters +
    heads) with the Hub-facing methods (``from_pretrained``, ``push_to_hub``), live modules (``attach``,
    ``remove``) and ``export_onnx``."""

    _trusted_keys: tuple = ()
    _require_signature: bool = False
    _models_dir: PathLike | None = None
    _device = None

    @classmethod
    def from_pretrained(cls, delta, **kw) -> "ClonedModel":
        """:func:`apply` ``delta`` (a path, bytes, CloneDelta or ``hf://ORG/NAME[@REV]``); same keywords."""
        return apply(delta, **kw)

    def push_to_hub(self, repo_id: str, **kw) -> str:
        """Push this model's delta (current adapter and classifier tensors) to ``repo_id``; returns the commit sha.
        Keywords as :func:`pnc_pack.hub.push` (``branch``, ``private``, ``message``, ``parent_commit``)."""
        from pnc_pack.hub import push

        return push(self.to_delta(), repo_id, **kw)

    def attach(self, delta, *, source=None, models_dir: PathLike | None = None, trusted_keys: Iterable | None = None,
               require_signature: bool | None = None) -> "ClonedModel":
        """Add the modules of ``delta`` (any delta spec), built on this model's target; returns ``self``.

        ``trusted_keys``/``require_signature`` default to the policy this model was applied with; ``source`` (one
        spec, or one per new module) and ``models_dir`` as in :func:`apply`. Refused, with the model unchanged:
        a delta that is malformed or tampered (FormatError), fails the policy (SignatureError), clones into another
        target (ModelMismatchError), whose source does not match its pins, or whose classes are already here."""
        from pnc_pack.clone.apply import load_sources, per_module
        from pnc_pack.format.compose import _same_model, compose

        keys = self._trusted_keys if trusted_keys is None else tuple(trusted_keys)
        required = self._require_signature if require_signature is None else bool(require_signature)
        new = open_delta(delta, trusted_keys=keys, require_signature=required)
        with _UPDATES:
            current = self.delta
            if not _same_model(new.target, current.target) or new.target_blocks != current.target_blocks:
                raise ModelMismatchError(f"the delta clones into target {new.target.short()} ({new.target.arch}), "
                                         f"this model's target is {current.target.short()} ({current.target.arch}): "
                                         "refused, the model is unchanged")
            composed = compose([current, new])  # label clashes refused here, before anything is loaded
            folders = [locate_model(m.source, s, models_dir if models_dir is not None else self._models_dir)
                       for m, s in zip(new.modules, per_module(source, len(new.modules)))]
            loaded = load_sources([m.source for m in new.modules], folders, device=self._device)
            labels = []
            for lab in new.labels:
                if lab.model != "target":
                    cfg = loaded[int(lab.model.split(":")[1])][1]
                    labels.append(int(cfg.classes[lab.class_index]["label"]))
            self.swap_modules(composed, keep=range(len(current.modules)), new_sources=[s for s, _ in loaded],
                              new_labels=labels)
        return self

    def remove(self, indices: Sequence[int] | None = None, *, source: str | None = None,
               classes: Sequence[int] | None = None) -> "ClonedModel":
        """Drop modules: by index, or those whose source matches ``source`` and/or that clone exactly ``classes``
        (as :func:`pnc_pack.format.compose.find_modules`); returns ``self``. The others are kept as they are."""
        from pnc_pack.format.compose import find_modules
        from pnc_pack.format.compose import remove as remove_modules

        with _UPDATES:
            current = self.delta
            if indices is None:
                if source is None and classes is None:
                    raise UsageError("remove: give module indices, source= or classes=")
                indices = find_modules(current, source=source, classes=classes)
                if not indices:
                    raise UsageError(f"no module matches (source={source!r}, classes={classes!r})")
            indices = [indices] if isinstance(indices, int) else list(indices)
            reduced = remove_modules(current, indices)  # UsageError for an index that is not there
            drop = set(indices)
            self.swap_modules(reduced, keep=[i for i in range(len(current.modules)) if i not in drop])
        return self

    def export_onnx(self, path: PathLike, **kw):
        """:func:`pnc_pack.clone.onnx_export.export_onnx` (one ONNX graph + sidecar, checked with onnxruntime)."""
        from pnc_pack.clone.onnx_export import export_onnx

        return export_onnx(self, path, **kw)


def apply(delta, *, source=None, target=None, models_dir: PathLike | None = None, trusted_keys: Iterable = (),
          require_signature: bool = False, device=None) -> ClonedModel:
    """Rebuild the cloned network a delta describes: read and check the delta (structure, limits, digest), enforce
    the signature policy, find every pinned model (``target``/``source`` folders or ``hf://`` specs, then
    ``models_dir``, a local ref's path, the Hub cache at the pinned commit), check every pin over the exact bytes
    read, and assemble. ``source``: one spec, or one per module. Nothing pretrained is modified;
    ``cloned.detach()`` returns the target, bit for bit as loaded. The policy, ``models_dir`` and ``device`` are
    kept for :meth:`ClonedModel.attach`."""
    from pnc_pack.clone.apply import assemble

    keys = tuple(trusted_keys)
    d = open_delta(delta, trusted_keys=keys, require_signature=require_signature)
    target_dir, source_dirs = locate_models(d, target=target, source=source, models_dir=models_dir)
    roles = {"target": target_dir, **{f"source of module {i}": f for i, f in enumerate(source_dirs)}}
    with model_role(None, roles):  # a file that does not match its pin: the message names whose folder it is
        cloned = assemble(d, target_dir, source_dirs, device=device, cls=ClonedModel)
    cloned._trusted_keys, cloned._require_signature = keys, bool(require_signature)
    cloned._models_dir, cloned._device = models_dir, device
    return cloned
