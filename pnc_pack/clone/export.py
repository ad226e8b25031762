"""The offline form of a clone: the whole cloned network in one folder, usable without the zoo.

``export_cloned(cloned, OUT)`` writes

- ``OUT/model.safetensors``: every tensor of the cloned network — ``target.<name>`` (the target's state),
  ``sources.<i>.<name>`` (each distinct source's state), and the delta's own ``classifier.*`` and
  ``modules.<i>.adapter.*`` tensors — plus, in the safetensors metadata under ``pnc_pack.delta``, the clone delta
  itself (base64; it carries masks, positions, kinds and the label map, and is validated by the codec on load);
- ``OUT/config.json``: a readable summary (architectures, classes, positions, sizes) for people and other tools.

``load_cloned(OUT)`` rebuilds the same network from those two files alone: architectures from the registry,
tensors from safetensors, structure from the delta; no reference is looked up, nothing is unpickled. The outputs
are identical to the exported model's; the weights file is read once and the networks' tensors are views of those
bytes (no copy). Both files are written atomically.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from pnc_pack.errors import ArchitectureError, FormatError
from pnc_pack.fsutil import atomic_write

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
META_KEY = "pnc_pack.delta"
FORMAT = "pnc-pack-offline"
MAX_BYTES = 8 << 30


def _distinct_sources(cloned) -> list:
    seen, out = set(), []
    for s in cloned.sources:
        if id(s) not in seen:
            seen.add(id(s))
            out.append(s)
    return out


def export_cloned(cloned, out: str | os.PathLike) -> int:
    """Write the offline form of ``cloned`` to the folder ``out``; returns the bytes written."""
    import torch
    from safetensors.torch import save as st_save

    from pnc_pack.clone.convert import from_raw
    from pnc_pack.format import codec

    delta = cloned.to_delta()
    blob = codec.dumps(delta)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in cloned.target.state_dict().items():
        tensors[f"target.{k}"] = v.detach().cpu().contiguous().clone()
    distinct = _distinct_sources(cloned)
    for i, s in enumerate(distinct):
        for k, v in s.state_dict().items():
            tensors[f"sources.{i}.{k}"] = v.detach().cpu().contiguous().clone()
    for k, raw in delta.tensors().items():
        tensors[k] = from_raw(raw)
    source_index = [next(i for i, s in enumerate(distinct) if s is m) for m in cloned.sources]
    meta = {META_KEY: base64.b64encode(blob).decode("ascii"), "format": FORMAT, "version": "1",
            "source_index": json.dumps(source_index), "output_labels": json.dumps(cloned.output_labels)}
    data = st_save(tensors, metadata=meta)
    summary = {
        "format": FORMAT, "version": 1,
        "target": {"arch": delta.target.arch, "arch_args": dict(delta.target.arch_args), "ref": delta.target.uri()},
        "modules": [{"source": {"arch": m.source.arch, "arch_args": dict(m.source.arch_args), "ref": m.source.uri()},
                     "target_position": m.target_position, "source_position": m.source_position,
                     "mask_density": (sum(x.kept for x in m.masks) / max(1, sum(x.filters for x in m.masks)))}
                    for m in delta.modules],
        "labels": [{"index": i, "model": lab.model, "class_index": lab.class_index, "name": lab.name}
                   for i, lab in enumerate(delta.labels)],
        "classifier_kind": delta.classifier_kind,
        "weights_bytes": len(data),
    }
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / WEIGHTS, data)
    cfg = json.dumps(summary, indent=2, sort_keys=True).encode()
    atomic_write(folder / CONFIG, cfg)
    return len(data) + len(cfg)


def load_cloned(path: str | os.PathLike, device=None):
    """Load an exported clone (a folder, or its model.safetensors) into a ClonedNetwork; no references needed."""
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.format import codec
    from pnc_pack.zoo.pretrained import empty_model, load_state, read_file
    from pnc_pack.zoo.tensorfile import parse

    p = Path(path)
    f = p / WEIGHTS if p.is_dir() else p
    if not f.is_file():
        raise FormatError(f"{f}: not found (expected an exported clone folder)")
    tensors, meta = parse(read_file(f, None, WEIGHTS, MAX_BYTES), str(f))  # views of one read of the file
    if meta.get("format") != FORMAT or META_KEY not in meta:
        raise FormatError(f"{f}: not an exported pnc-pack clone (no {META_KEY!r} metadata)")
    try:
        blob = base64.b64decode(meta[META_KEY], validate=True)
        source_index = [int(i) for i in json.loads(meta.get("source_index", "[]"))]
        labels = json.loads(meta.get("output_labels", "null"))
        labels = None if labels is None else [int(v) for v in labels]
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{f}: bad metadata: {exc}") from None
    delta = codec.loads(blob)
    if len(source_index) != len(delta.modules):
        raise FormatError(f"{f}: source_index lists {len(source_index)} modules, the delta has {len(delta.modules)}")

    def part(prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    target = empty_model(delta.target.arch, delta.target.arch_args)
    load_state(target, part("target."), f"{f} (target)", assign=True)
    sources_by_index: dict[int, object] = {}
    sources = []
    for m, i in zip(delta.modules, source_index):
        if i not in sources_by_index:
            s = empty_model(m.source.arch, m.source.arch_args)
            load_state(s, part(f"sources.{i}."), f"{f} (source {i})", assign=True)
            sources_by_index[i] = s
        elif (sources_by_index[i].arch, dict(sources_by_index[i].arch_args)) != (m.source.arch, dict(m.source.arch_args)):
            raise ArchitectureError(f"{f}: modules sharing source {i} disagree on its architecture")
        sources.append(sources_by_index[i])
    for model in [target, *sources]:
        model.eval()
        model.requires_grad_(False)
    cloned = ClonedNetwork.from_delta(delta, target, sources)
    cloned.output_labels = labels
    if device is not None:
        cloned.to(device)
    return cloned.eval()
