"""Model cards (README.md) for what pnc-pack puts on the Hub: clone deltas and pretrained-model folders.

A card is YAML metadata between ``---`` lines (what the Hub indexes: ``library_name: pnc-pack``, tags, and for a
delta ``base_model`` + ``base_model_relation: adapter`` so the Hub lists it under the models it needs) followed by a
readable body. The YAML is written by a tiny emitter of our own (strings as JSON-quoted scalars, which YAML reads
as the same strings), so the card is byte-identical for the same delta and needs no YAML library.

A card cannot name the commit it is part of (the commit's sha covers the card), so the commands in a delta card
use the branch it was pushed to and say how to pin: the commit sha ``pnc-pack push`` prints. The delta itself pins
every model at an exact commit and sha256, so even a branch-pinned pull gets exactly the models it was built with.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping

from pnc_pack.refs import ModelRef

DELTA_TAGS = ("pnc-pack", "partial-network-cloning", "clone-delta")
MODEL_TAGS = ("pnc-pack", "pnc-pack-zoo", "image-classification")


# -- a minimal, deterministic YAML emitter -------------------------------------------------------------------------
def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


def _yaml(obj: Mapping[str, Any], indent: int = 0) -> list[str]:
    pad = " " * indent
    lines = []
    for key, value in obj.items():
        k = key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
        if isinstance(value, Mapping):
            if not value:
                lines.append(f"{pad}{k}: {{}}")
            else:
                lines.append(f"{pad}{k}:")
                lines.extend(_yaml(value, indent + 2))
        elif isinstance(value, (list, tuple)):
            if not value:
                lines.append(f"{pad}{k}: []")
            else:
                lines.append(f"{pad}{k}:")
                lines.extend(f"{pad}- {_scalar(x)}" for x in value)
        else:
            lines.append(f"{pad}{k}: {_scalar(value)}")
    return lines


def front_matter(meta: Mapping[str, Any]) -> str:
    return "---\n" + "\n".join(_yaml(meta)) + "\n---\n"


def scalar_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The scalar metrics of ``delta.metrics``, nested maps flattened to dotted keys (sorted)."""
    out: dict[str, Any] = {}
    for k in sorted(metrics, key=str):
        v = metrics[k]
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(scalar_metrics(v, name + "."))
        elif isinstance(v, (bool, int, float, str)) and (not isinstance(v, str) or len(v) <= 200):
            out[name] = v
    return out


def _fmt_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _ref_md(ref: ModelRef, endpoint: str) -> str:
    if ref.is_local:
        return f"local model `{ref.path}`"
    return f"[{ref.repo_id}]({endpoint}/{ref.repo_id}) at commit `{ref.commit}`"


def _names(labels: Iterable, model: str) -> list[str]:
    return [lab.name for lab in labels if lab.model == model]


# -- the delta card ------------------------------------------------------------------------------------------------
def delta_card(delta, *, repo_id: str, branch: str, file_name: str, file_sha256: str, file_size: int,
               endpoint: str = "https://huggingface.co") -> str:
    """README.md for a repository holding one clone delta (``delta`` is a CloneDelta)."""
    sources = [m.source for m in delta.modules]
    base_models = []
    for r in sources + [delta.target]:
        if not r.is_local and r.repo_id not in base_models:
            base_models.append(r.repo_id)
    metrics = scalar_metrics(delta.metrics or {})
    meta: dict[str, Any] = {
        "library_name": "pnc-pack",
        "tags": list(DELTA_TAGS),
        "base_model": base_models,
        "base_model_relation": "adapter",
    }
    if metrics:
        meta["pnc_pack_metrics"] = metrics
    meta["pnc_pack_delta"] = {"file": file_name, "sha256": file_sha256, "size": file_size}

    target_names = _names(delta.labels, "target")
    unique = {r.uri(): r for r in delta.refs}
    model_bytes = sum(fd.size for r in unique.values() for fd in r.files.values())
    lines = [front_matter(meta)]
    cloned_all = []
    for i, _ in enumerate(delta.modules):
        cloned_all += _names(delta.labels, f"source:{i}")
    title_classes = ", ".join(cloned_all[:6]) + (" ..." if len(cloned_all) > 6 else "")
    lines.append(f"# Clone delta: {title_classes or 'new classes'} into {delta.target.short()}\n")
    lines.append(
        "This repository holds a **clone delta** made with [pnc-pack](https://pypi.org/project/pnc-pack/) "
        "(Partial Network Cloning, Ye et al., CVPR 2023): it adds classes to a pretrained *target* network by "
        "borrowing a masked part of a pretrained *source* network, plus a small adapter and classifier. It holds "
        "no copy of either model: both are referenced by repository, exact commit and sha256, and fetched from "
        "the Hub when the delta is applied. Applying it never changes a pretrained weight.\n")
    lines.append("| | |\n|---|---|")
    lines.append(f"| target | {_ref_md(delta.target, endpoint)} (`{delta.target.arch}`, "
                 f"{delta.target_blocks} blocks) |")
    lines.append(f"| target classes | {', '.join(target_names) or '-'} |")
    for i, m in enumerate(delta.modules):
        names = _names(delta.labels, f"source:{i}")
        kept = sum(mk.kept for mk in m.masks)
        total = sum(mk.filters for mk in m.masks)
        density = f"{kept / total:.3f} ({kept} of {total} filters kept)" if total else "no mask"
        lines.append(f"| source {i} | {_ref_md(m.source, endpoint)} (`{m.source.arch}`) |")
        lines.append(f"| cloned from source {i} | {', '.join(names) or '-'} |")
        lines.append(f"| insertion position R | {m.target_position} of {delta.target_blocks} target blocks "
                     f"(source blocks {m.source_position}..{m.source_blocks - 1} cloned) |")
        lines.append(f"| mask density | {density} |")
        lines.append(f"| adapter | `{m.adapter_kind}` |")
    lines.append(f"| classifier | `{delta.classifier_kind}` |")
    lines.append(f"| delta size | {_fmt_size(file_size)} (`{file_name}`, sha256 `{file_sha256}`) |")
    lines.append(f"| models it needs | {_fmt_size(model_bytes)} in {len(unique)} pretrained model(s), "
                 "fetched once through the Hub cache |")
    for k, v in metrics.items():
        lines.append(f"| {k} | {_fmt(v)} |")
    lines.append("")
    lines.append("## Use it\n")
    lines.append("```bash\npip install pnc-pack")
    lines.append(f"pnc-pack pull {repo_id}@{branch}            # download and verify {file_name}")
    lines.append(f"pnc-pack apply hf://{repo_id}@{branch}      # fetch the pinned models, rebuild the cloned network")
    lines.append("```\n")
    lines.append(
        f"For a reproducible deployment replace `{branch}` with the commit sha that `pnc-pack push` printed (or "
        "the one in this repository's history): `pnc-pack apply hf://" + repo_id + "@<commit>`. Every model the "
        "delta uses is already pinned to an exact commit and checked by sha256 before it is loaded.\n")
    lines.append("In Python:\n")
    lines.append("```python\nimport pnc_pack\n"
                 f"cloned = pnc_pack.ClonedModel.from_pretrained(\"hf://{repo_id}@{branch}\")  # an nn.Module\n"
                 "target = cloned.detach()  # the target, bit for bit\n```\n")
    return "\n".join(lines)


# -- the pretrained-model card -------------------------------------------------------------------------------------
def model_card(config: Mapping[str, Any], *, repo_id: str, files: Mapping[str, Any]) -> str:
    """README.md for a pretrained-model folder published with ``pnc-pack zoo push``.

    ``config`` holds arch, arch_args, classes, input_shape (config.json); ``files`` maps name -> FileDigest.
    """
    arch = str(config.get("arch", "unknown"))
    classes = config.get("classes") or []
    names = [str(c.get("name", c.get("label"))) if isinstance(c, Mapping) else str(c) for c in classes]
    meta = {
        "library_name": "pnc-pack",
        "tags": list(MODEL_TAGS) + [arch],
        "pipeline_tag": "image-classification",
        "pnc_pack_arch": arch,
    }
    lines = [front_matter(meta)]
    lines.append(f"# {repo_id}\n")
    lines.append(f"A pretrained `{arch}` network in the pnc-pack zoo format: `config.json` (architecture, classes, "
                 "input shape) and `model.safetensors` (weights). pnc-pack builds its architectures from the "
                 "registered name in the config, never from code in a file.\n")
    lines.append("| | |\n|---|---|")
    lines.append(f"| architecture | `{arch}` |")
    args = config.get("arch_args") or {}
    lines.append(f"| arguments | `{json.dumps(args, sort_keys=True)}` |")
    if config.get("input_shape"):
        lines.append(f"| input shape | {tuple(config['input_shape'])} |")
    lines.append(f"| classes ({len(names)}) | {', '.join(names) or '-'} |")
    for name in sorted(files):
        fd = files[name]
        lines.append(f"| `{name}` | {_fmt_size(fd.size)}, sha256 `{fd.sha256}` |")
    lines.append("")
    lines.append("## Use it\n")
    lines.append(f"Reference it as `hf://{repo_id}@<commit>` wherever pnc-pack takes a model (the target or a "
                 "source of a clone); a branch name is resolved to its commit when the delta is built, and the "
                 "delta pins the sha256 of both files.\n")
    return "\n".join(lines)
