"""Pretrained-model folders on the Hub: publish one, pin a reference to one, fetch one at its pinned commit.

A model folder is ``config.json`` + ``model.safetensors`` (see :mod:`pnc_pack.zoo.pretrained`), or a transformers
folder (``config.json``, ``preprocessor_config.json``, ``model.safetensors`` or an index and its shards: the files
come from the layout, ``zoo.hf_config.layout_files`` / :func:`hub_layout`). A reference to it
(:class:`~pnc_pack.refs.ModelRef`) is either local (a path) or a Hub repo id with a 40-hex commit; both carry the
sha256 and size of every file, and nothing reads a file before :meth:`ModelRef.check_folder` has checked it.

Hub files always travel through the Hugging Face cache (``$HF_HUB_CACHE``, default ``$HF_HOME/hub``): a model is
downloaded once per machine, shared with every other tool that uses the cache, safe with several processes at once
(huggingface_hub's file locks), and usable offline (``HF_HUB_OFFLINE=1``) once it is there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from pnc_pack.errors import HubOfflineError, ModelMismatchError, ModelNotFoundError
from pnc_pack.hub.card import model_card
from pnc_pack.hub.client import (
    HubSettings,
    api,
    cached_file,
    commit_of,
    download,
    hub_errors,
    is_commit,
    parse_spec,
    record_ref,
    resolve_commit,
    settings,
    user_repo_id,
)
from pnc_pack.hub.upload import commit_files
from pnc_pack.refs import ModelRef, ResolvedModel, is_hub_spec, sha256_file
from pnc_pack.zoo.hf_config import layout_files

MODEL_FILES = ("config.json", "model.safetensors")


def read_model_config(folder: str | os.PathLike) -> dict[str, Any]:
    """config.json of a model folder, validated by the zoo's torch-free ``read_config``, as a plain dict
    (arch, arch_args, classes, input_shape, training)."""
    from pnc_pack.zoo.config import read_config

    return read_config(Path(folder)).to_dict()


# -- publish -------------------------------------------------------------------------------------------------------
def publish_model(folder: str | os.PathLike, repo_id: str, *, private: bool = False, message: str | None = None,
                  branch: str | None = None) -> str:
    """Upload config.json, model.safetensors and a generated README.md card in one commit; returns its sha."""
    folder = Path(folder)
    user_repo_id(repo_id)
    names = layout_files(folder)  # a zoo folder's two files, or every file of a transformers folder
    for name in names:
        if not (folder / name).is_file():
            raise ModelNotFoundError(f"model folder {folder}: file {name!r} not found")
    cfg = read_model_config(folder)
    digests = {name: sha256_file(folder / name) for name in names}
    card = model_card(cfg, repo_id=repo_id, files=digests)
    s = settings()
    files: dict[str, bytes | Path] = {name: folder / name for name in names}
    files["README.md"] = card.encode("utf-8")
    msg = message or f"Publish {cfg['arch']} model ({len(cfg.get('classes') or [])} classes) with pnc-pack"
    return commit_files(s, repo_id, files, message=msg, branch=branch, private=private)


# -- resolve: spec -> (folder, pinned ref) ---------------------------------------------------------------------------
def pin_revision(s: HubSettings, repo_id: str, revision: str | None,
                 probes: tuple[str, ...] = MODEL_FILES) -> str:
    """The 40-hex commit of ``revision`` (branch, tag, short or full sha).

    Online: one ``model_info`` request, unless ``revision`` is a full sha whose ``probes`` files are all cached
    (then no network at all); the request also makes a dead endpoint, a missing repo or revision, or a bad token
    fail at once rather than after huggingface_hub's download retries. Offline: from the cache's refs (what the
    last online look-up of that branch or tag saw), else HubOfflineError.
    """
    revision = revision or "main"
    if is_commit(revision) and all(cached_file(s, repo_id, p, revision) is not None for p in probes):
        return revision
    if s.offline:
        p = cached_file(s, repo_id, probes[0], revision)
        if p is None:
            raise HubOfflineError(
                f"{repo_id}@{revision}: file {probes[0]!r} is not in the local cache {s.cache_dir} and offline mode "
                "is on (HF_HUB_OFFLINE=1); download it once online, or unset HF_HUB_OFFLINE")
        return commit_of(p)
    return resolve_commit(s, repo_id, revision)


def resolve_model(spec: str | os.PathLike) -> ResolvedModel:
    """A model spec -> :class:`~pnc_pack.refs.ResolvedModel` (folder to load from, pinned ModelRef, the spec).

    ``spec`` is a local model folder (-> a local reference) or ``hf://REPO_ID[@REVISION]`` (-> a Hub reference:
    the branch or tag is resolved to its commit first, then both files are downloaded at that commit, so a branch
    that moves meanwhile cannot give a mixed pair).
    """
    if is_hub_spec(spec):
        repo_id, revision = parse_spec(str(spec))
        s = settings()
        commit = pin_revision(s, repo_id, revision)
        names = hub_layout(s, repo_id, commit)
        paths = [download(s, repo_id, name, commit) for name in names]
        record_ref(s, repo_id, revision, commit)
        folder = paths[0].parent
        cfg = read_model_config(folder)
        ref = ModelRef.from_folder(folder, cfg["arch"], cfg["arch_args"], files=names, repo_id=repo_id,
                                   commit=commit)
        return ResolvedModel(folder, ref, str(spec))
    folder = Path(spec)
    if not folder.is_dir():
        raise ModelNotFoundError(f"model folder {folder} not found (a Hub model is written hf://NAMESPACE/NAME)")
    cfg = read_model_config(folder)
    ref = ModelRef.from_folder(folder, cfg["arch"], cfg["arch_args"], files=layout_files(folder))
    return ResolvedModel(folder, ref, str(spec))


def hub_layout(s: HubSettings, repo_id: str, commit: str) -> tuple[str, ...]:
    """Every file a Hub model uses at ``commit``, by its layout (``zoo.hf_config.layout_files``): config.json is
    fetched first; for a transformers model, preprocessor_config.json and model.safetensors, else the index and
    the shards it lists (which one the repository holds: from the cache, else one listing of its files)."""
    from pnc_pack.zoo.hf_config import (
        INDEX_FILE,
        PREPROCESSOR_FILE,
        WEIGHTS_FILE,
        is_hf_config,
        load_json,
        model_type,
        shard_names,
    )

    config = download(s, repo_id, "config.json", commit)
    obj = load_json(config.read_bytes(), f"{repo_id}@{commit[:10]}/config.json")
    if not is_hf_config(obj):
        return MODEL_FILES
    model_type(obj, f"{repo_id}@{commit[:10]}/config.json")  # refused before anything else is fetched
    head = ("config.json", PREPROCESSOR_FILE)
    if cached_file(s, repo_id, WEIGHTS_FILE, commit) is not None:
        return (*head, WEIGHTS_FILE)
    if cached_file(s, repo_id, INDEX_FILE, commit) is None and not s.offline:
        with hub_errors(s, f"listing {repo_id}@{commit[:10]}", repo_id=repo_id, revision=commit):
            listed = set(api(s).list_repo_files(repo_id, revision=commit))
        if WEIGHTS_FILE in listed or INDEX_FILE not in listed:
            return (*head, WEIGHTS_FILE)
    index = download(s, repo_id, INDEX_FILE, commit)
    return (*head, INDEX_FILE, *shard_names(load_json(index.read_bytes(), f"{repo_id}/{INDEX_FILE}")))


# -- fetch: pinned ref -> checked folder ---------------------------------------------------------------------------
def _missing_offline(s: HubSettings, refs: Iterable[ModelRef]) -> list[str]:
    out = []
    for ref in refs:
        if ref.is_local:
            continue
        names = [n for n in sorted(ref.files) if cached_file(s, ref.repo_id, n, ref.commit) is None]
        if names:
            out.append(f"{ref.repo_id}@{ref.commit[:10]} ({', '.join(names)})")
    return out


def _offline_error(s: HubSettings, missing: list[str]) -> HubOfflineError:
    return HubOfflineError(
        f"offline mode (HF_HUB_OFFLINE=1) and not in the local cache {s.cache_dir}: {'; '.join(missing)}; "
        "fetch them once online (pnc-pack pull / apply), or unset HF_HUB_OFFLINE")


def fetch_model(ref: ModelRef, *, models_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding ``ref``'s files, checked against the pins (size + sha256) before it is returned.

    Hub refs: downloaded at the pinned commit through the Hub cache (no network when cached; offline works from a
    warm cache). Local refs: ``ref.path``, else ``models_dir/<basename of ref.path>``.
    Raises ModelNotFoundError / ModelMismatchError (exit 5), or a HubError (10-14).
    """
    if ref.is_local:
        candidates = [Path(ref.path)]
        if models_dir is not None:
            candidates.append(Path(models_dir) / Path(ref.path).name)
        for folder in candidates:
            if folder.is_dir():
                ref.check_folder(folder)
                return folder
        raise ModelNotFoundError(f"local model {ref.path!r} not found (looked in {', '.join(map(str, candidates))})")
    s = settings()
    missing = _missing_offline(s, [ref])
    if missing and s.offline:
        raise _offline_error(s, missing)
    if missing:
        # One quick request first: a dead endpoint, a missing repo or commit, or a bad token fail here at once.
        # Without it, hf_hub_download retries a refused connection 5 times with backoff: 23.2 s measured on the
        # build machine (huggingface_hub 2.4, HEAD to 127.0.0.1:9) before its LocalEntryNotFoundError.
        resolve_commit(s, ref.repo_id, ref.commit)
    names = sorted(ref.files)
    paths = {name: download(s, ref.repo_id, name, ref.commit) for name in names}
    folder = paths[names[0]].parent
    try:
        ref.check_folder(folder)
    except ModelMismatchError as exc:
        if s.offline:
            raise
        # A damaged cache entry is repaired by one fresh download; a server that serves other bytes than the pins
        # fails again, and that error is final.
        download(s, ref.repo_id, Path(exc.file).name, ref.commit, force=True)
        ref.check_folder(folder)
    return folder


def fetch_models(refs: Iterable[ModelRef], *, models_dir: str | os.PathLike | None = None) -> list[Path]:
    """:func:`fetch_model` for several refs; offline, one error names everything that is missing."""
    refs = list(refs)
    s = settings()
    if s.offline:
        missing = _missing_offline(s, refs)
        if missing:
            raise _offline_error(s, missing)
    return [fetch_model(ref, models_dir=models_dir) for ref in refs]
