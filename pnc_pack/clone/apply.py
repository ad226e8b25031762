"""Assemble the cloned network from a clone delta and the model folders its pins name.

This room knows folders, not the Hub: :mod:`pnc_pack.api` turns specs (paths, ``hf://`` repos) into a CloneDelta
and folders, then calls :func:`assemble`, which does, in this order, stopping at the first failure with a typed
error:

1. read every pinned file of every model once (in parallel threads), hashing exactly the bytes read, and compare
   with the pins before anything is parsed (no gap between check and use);
2. build each architecture from the registry only, take its tensors from those same bytes (safetensors,
   zero-copy) and assemble the :class:`~pnc_pack.clone.model.ClonedNetwork`. Pretrained parameters are frozen
   and never written.

:func:`find_local` is where a model folder is looked for on disk (explicit path, ``models_dir``, a local
reference's stored path), its file sizes checked on the way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from pnc_pack.errors import ModelNotFoundError, UsageError
from pnc_pack.format.delta import CloneDelta
from pnc_pack.refs import ModelRef

PathLike = str | os.PathLike


def candidates(ref: ModelRef, explicit: PathLike | None = None, models_dir: PathLike | None = None) -> list[Path]:
    """Where ``ref``'s folder may be on disk, in the order they are tried."""
    if explicit is not None:
        return [Path(explicit)]
    out = []
    if models_dir is not None:
        names = [Path(ref.path).name] if ref.is_local else [ref.repo_id.split("/")[-1], ref.repo_id.replace("/", "--")]
        out += [Path(models_dir) / n for n in names]
    if ref.is_local:
        out.append(Path(ref.path))
    return out


def find_local(ref: ModelRef, explicit: PathLike | None = None, models_dir: PathLike | None = None) -> Path | None:
    """The first existing candidate folder for ``ref``, its file sizes checked against the pins (the sha256 of the
    exact bytes follows in :func:`load_models`); None when no candidate exists and the ref is a Hub one that may
    still be fetched; ModelNotFoundError naming every place tried otherwise."""
    tried = []
    for folder in candidates(ref, explicit, models_dir):
        if folder.is_dir():
            ref.check_sizes(folder)
            return folder
        tried.append(str(folder))
    if explicit is None and not ref.is_local:
        return None
    where = ", ".join(tried) if tried else "nowhere (no path given)"
    hint = " (pass --target/--source or --models-dir)" if ref.is_local else ""
    raise ModelNotFoundError(f"model {ref.short()} ({ref.arch}) not found; looked in {where}{hint}")


def per_module(source, n: int) -> list:
    """``source`` (None, one folder, or one per module) as a list of ``n`` entries."""
    if source is None:
        return [None] * n
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    source = list(source)
    if len(source) != n:
        raise UsageError(f"the delta has {n} cloned module(s); {len(source)} source path(s) given")
    return source


def load_models(delta: CloneDelta, target_dir: Path, source_dirs: Sequence[Path], device=None):
    """((target, config), [(source, config)]): frozen ZooModels; a source shared by several modules is loaded once.

    Every file of every model is read and checked against its pins (in parallel threads) before any is parsed.
    """
    from pnc_pack.zoo.pretrained import load_pretrained, read_models

    jobs: dict[tuple, tuple[Path, ModelRef]] = {("target",): (Path(target_dir), delta.target)}  # never shared
    keys = []
    for m, folder in zip(delta.modules, source_dirs):
        keys.append(("source", str(Path(folder).resolve()), m.source.uri()))
        jobs.setdefault(keys[-1], (Path(folder), m.source))
    files = dict(zip(jobs, read_models(list(jobs.values()))))
    loaded = {key: load_pretrained(folder, ref, device=device, files=files.pop(key))
              for key, (folder, ref) in jobs.items()}
    return loaded[("target",)], [loaded[k] for k in keys]


def assemble(delta: CloneDelta, target_dir: PathLike, source_dirs: Sequence[PathLike], *, device=None, cls=None):
    """The cloned network ``delta`` describes, from the target folder and one source folder per module (each
    checked against its pins before it is parsed). ``cls``: the ClonedNetwork subclass to make (the API's
    ClonedNetwork). Nothing pretrained is modified; ``detach()`` returns the target, bit for bit as loaded.
    ``device``: auto (None too: cuda when available, else cpu), cpu, cuda or cuda:N, checked before any file is read."""
    from pnc_pack.clone.evaluate import output_labels
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.devices import resolve_device

    device = resolve_device(device)
    source_dirs = per_module(source_dirs, len(delta.modules))
    (target_model, target_cfg), sources = load_models(delta, Path(target_dir), [Path(s) for s in source_dirs],
                                                      device=device)
    cloned = (cls or ClonedNetwork).from_delta(delta, target_model, [s for s, _ in sources])
    cloned.output_labels = output_labels(delta, target_cfg, [c for _, c in sources])
    cloned.trained_on = (target_cfg.training or {}).get("data")  # evaluate.fitted: that data is fitted as in training
    cloned.to(device)
    return cloned.eval()


def load_sources(refs: Sequence[ModelRef], source_dirs: Sequence[PathLike], device=None) -> list:
    """[(source, config)] for modules being added to a loaded clone (``ClonedModel.attach``): every file of every
    source read and checked against its pins before any is parsed; a source pinned twice is loaded once."""
    from pnc_pack.zoo.pretrained import load_pretrained, read_models

    jobs: dict[tuple, tuple[Path, ModelRef]] = {}
    keys = []
    for ref, folder in zip(refs, source_dirs):
        keys.append((str(Path(folder).resolve()), ref.uri()))
        jobs.setdefault(keys[-1], (Path(folder), ref))
    files = dict(zip(jobs, read_models(list(jobs.values()))))
    loaded = {key: load_pretrained(folder, ref, device=device, files=files.pop(key))
              for key, (folder, ref) in jobs.items()}
    return [loaded[k] for k in keys]
