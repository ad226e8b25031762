"""The loader: a clone delta + the pretrained models it pins -> a ClonedModel.

``apply`` does, in this order, and stops at the first failure with a typed error:

1. read the delta (a path, bytes, a CloneDelta, or ``hf://REPO[@REV]`` pulled through the Hub cache); structure,
   limits and digest are checked by the codec;
2. the signature policy (``trusted_keys``, ``require_signature``): an untrusted or missing signature refuses;
3. locate every referenced model folder (explicit ``target``/``source`` paths, then ``models_dir``, then a local
   reference's stored path, then the Hub cache at the pinned commit) and check every pinned file's size; the
   sha256 of each file is checked over exactly the bytes read, before any tensor is parsed from them;
4. read every pinned file of every model once (in parallel threads), hashing exactly the bytes read, and compare
   with the pins before anything is parsed; then build each architecture from the registry only, take its tensors
   from those same bytes (safetensors, zero-copy) and assemble the ClonedModel. Pretrained parameters are frozen
   and never written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from pnc_pack.errors import ModelNotFoundError, UsageError
from pnc_pack.format.delta import CloneDelta
from pnc_pack.refs import ModelRef

PathLike = str | os.PathLike


def open_delta(delta) -> CloneDelta:
    """A CloneDelta from a CloneDelta, bytes, a file path, or an ``hf://REPO[@REV]`` spec (pulled, verified)."""
    from pnc_pack.format import codec

    if isinstance(delta, CloneDelta):
        return delta
    if isinstance(delta, (bytes, bytearray, memoryview)):
        return codec.loads(bytes(delta))
    if isinstance(delta, str) and delta.startswith("hf://"):
        from pnc_pack.hub import pull

        _path, _commit, loaded = pull(delta)
        return loaded
    if isinstance(delta, (str, os.PathLike)):
        return codec.load(delta)
    raise UsageError(f"expected a clone delta (path, bytes, CloneDelta or hf:// spec), got {type(delta).__name__}")


def check_signature_policy(delta: CloneDelta, trusted_keys: Iterable = (), require_signature: bool = False) -> list:
    """Raise SignatureError unless the delta satisfies the policy; return the trusted signers' fingerprints.

    Every signature present must be valid. With ``trusted_keys``, at least one valid signature must come from one
    of them; with ``require_signature`` (and no trusted keys), at least one valid signature must be present.
    """
    from pnc_pack.format.signing import enforce_policy

    return enforce_policy(delta, trusted_keys=list(trusted_keys), require_signature=require_signature)


def _candidates(ref: ModelRef, explicit: PathLike | None, models_dir: PathLike | None) -> list[Path]:
    if explicit is not None:
        return [Path(explicit)]
    out = []
    if models_dir is not None:
        names = [Path(ref.path).name] if ref.is_local else [ref.repo_id.split("/")[-1], ref.repo_id.replace("/", "--")]
        out += [Path(models_dir) / n for n in names]
    if ref.is_local:
        out.append(Path(ref.path))
    return out


def locate_model(ref: ModelRef, explicit: PathLike | str | None = None, models_dir: PathLike | None = None) -> Path:
    """The folder holding ``ref``'s files, checked against every pin (size, then sha256)."""
    if isinstance(explicit, str) and explicit.startswith("hf://"):
        from pnc_pack.hub import resolve_model

        folder, _ = resolve_model(explicit)
        explicit = folder
    tried = []
    for folder in _candidates(ref, explicit, models_dir):
        if folder.is_dir():
            ref.check_sizes(folder)  # sizes now; sha256 of the exact bytes before they are parsed (load_models)
            return folder
        tried.append(str(folder))
    if explicit is None and not ref.is_local:
        from pnc_pack.hub import fetch_model

        return fetch_model(ref)  # downloads at the pinned commit through the Hub cache, checks the pins
    where = ", ".join(tried) if tried else "nowhere (no path given)"
    hint = " (pass --target/--source or --models-dir)" if ref.is_local else ""
    raise ModelNotFoundError(f"model {ref.short()} ({ref.arch}) not found; looked in {where}{hint}")


def _as_list(source, n: int) -> list:
    if source is None:
        return [None] * n
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    source = list(source)
    if len(source) != n:
        raise UsageError(f"the delta has {n} cloned module(s); {len(source)} source path(s) given")
    return source


def locate_models(delta: CloneDelta, *, target: PathLike | None = None, source=None,
                  models_dir: PathLike | None = None) -> tuple[Path, list[Path]]:
    """Folders for the target and for each module's source, every pin checked before anything is loaded."""
    target_dir = locate_model(delta.target, target, models_dir)
    sources = _as_list(source, len(delta.modules))
    source_dirs = [locate_model(m.source, s, models_dir) for m, s in zip(delta.modules, sources)]
    return target_dir, source_dirs


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


def apply(delta, *, source=None, target=None, models_dir: PathLike | None = None, trusted_keys: Iterable = (),
          require_signature: bool = False, device=None):
    """Rebuild the cloned network a delta describes. Returns a :class:`pnc_pack.clone.model.ClonedModel`.

    ``source`` is a folder (or ``hf://`` spec) for a single-module delta, or a list with one per module.
    Nothing pretrained is modified; ``cloned.detach()`` returns the target model, bit for bit as loaded.
    """
    from pnc_pack.clone.evaluate import output_labels
    from pnc_pack.clone.model import ClonedModel

    d = open_delta(delta)
    check_signature_policy(d, trusted_keys, require_signature)
    target_dir, source_dirs = locate_models(d, target=target, source=source, models_dir=models_dir)
    (target_model, target_cfg), sources = load_models(d, target_dir, source_dirs, device=device)
    cloned = ClonedModel.from_delta(d, target_model, [s for s, _ in sources])
    cloned.output_labels = output_labels(d, target_cfg, [c for _, c in sources])
    if device is not None:
        cloned.to(device)
    return cloned.eval()
