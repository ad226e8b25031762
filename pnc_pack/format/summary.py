"""A plain-data summary of a decoded delta: what ``pnc-pack inspect`` prints and the vectors' expected decodes.

Everything in it is JSON-safe (bytes become ``"hex:..."`` strings) and ordered deterministically.
"""

from __future__ import annotations

from typing import Any

from pnc_pack.format.delta import CloneDelta
from pnc_pack.refs import ModelRef


def json_safe(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return "hex:" + bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in sorted(v.items())}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v


def ref_summary(ref: ModelRef) -> dict[str, Any]:
    return {
        "uri": ref.uri(),
        "local": ref.is_local,
        "arch": ref.arch,
        "arch_args": json_safe(dict(ref.arch_args)),
        "files": {n: {"sha256": fd.sha256, "size": fd.size} for n, fd in sorted(ref.files.items())},
    }


def summarize(delta: CloneDelta, info=None) -> dict[str, Any]:
    from pnc_pack.format.signing import fingerprint

    outputs = {(e.model, e.class_index): j for j, e in enumerate(delta.labels)}
    # One dict lookup per class: a scan of the labels per class was 2^16 x 2^16 steps for a header within the
    # limits (``pnc-pack inspect`` would hang; tests/attacks/labels-quadratic.pncd).
    names = {(e.model, e.class_index): e.name for e in delta.labels}
    modules = []
    for i, m in enumerate(delta.modules):
        kept = sum(k.kept for k in m.masks)
        total = sum(k.filters for k in m.masks)
        modules.append({
            "index": i,
            "source": ref_summary(m.source),
            "source_blocks": m.source_blocks,
            "target_position": m.target_position,
            "source_position": m.source_position,
            "classes": [{"class_index": c, "output": outputs.get((f"source:{i}", c)),
                         "name": names.get((f"source:{i}", c))}
                        for c in m.clone_classes],
            "masks": [{"layer": k.layer, "filters": k.filters, "kept": k.kept, "density": round(k.density, 6)}
                      for k in m.masks],
            "mask_density": round(kept / total, 6) if total else None,
            "adapter": {"kind": m.adapter_kind, "args": json_safe(dict(m.adapter_args)),
                        "tensors": sorted(m.adapter)},
        })
    tensors = [{"name": n, "dtype": t.dtype, "shape": list(t.shape), "bytes": t.nbytes}
               for n, t in sorted(delta.tensors().items())]
    out = {
        "target": dict(ref_summary(delta.target), blocks=delta.target_blocks),
        "modules": modules,
        "classifier": {"kind": delta.classifier_kind, "args": json_safe(dict(delta.classifier_args)),
                       "tensors": sorted(delta.classifier)},
        "labels": [{"output": j, "model": e.model, "class_index": e.class_index, "name": e.name}
                   for j, e in enumerate(delta.labels)],
        "tensors": tensors,
        "tensor_bytes": sum(t["bytes"] for t in tensors),
        "metrics": json_safe(dict(delta.metrics)),
        "provenance": json_safe(dict(delta.provenance)),
        "signatures": [{"fingerprint": fingerprint(s.public_key), "public_key": s.public_key.hex()}
                       for s in delta.signatures],
        "has_local_refs": delta.has_local_refs,
    }
    if info is not None:
        out["format"] = {
            "version": f"{info.version[0]}.{info.version[1]}",
            "encoding": info.encoding,
            "digest": info.digest,
            "required_features": list(info.required_features),
            "ignored_fields": list(info.ignored_fields),
        }
        out["sizes"] = {"file": info.file_size, "header": info.header_size, "payload_raw": info.payload_raw,
                        "payload_compressed": info.payload_compressed}
    return out


def printable(text: str) -> str:
    """``text`` with every non-printable character (C0/C1 controls, DEL, ...) escaped: text from a delta never
    reaches a terminal as a control sequence (a local path may hold U+009B, the one-byte CSI, for instance)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def render_text(s: dict[str, Any]) -> str:
    """Human-readable form of :func:`summarize`'s output (strings from the file go through :func:`printable` or
    ``repr``)."""
    lines = []
    if "format" in s:
        f, z = s["format"], s["sizes"]
        lines.append(f"clone delta v{f['version']}  digest sha256:{f['digest']}")
        lines.append(f"  file {z['file']} B = header {z['header']} B + payload {z['payload_compressed']} B "
                     f"({f['encoding']}, {z['payload_raw']} B raw)")
        if f["ignored_fields"]:
            lines.append(f"  ignored optional fields (newer minor): {printable(', '.join(f['ignored_fields']))}")
    t = s["target"]
    lines.append(f"target  {printable(t['uri'])}  arch {t['arch']}  L_t={t['blocks']}"
                 + ("  [local]" if t["local"] else ""))
    for m in s["modules"]:
        src = m["source"]
        lines.append(f"module {m['index']}  source {printable(src['uri'])}  arch {src['arch']}  "
                     f"L_s={m['source_blocks']}  "
                     f"R={m['target_position']}  R_s={m['source_position']}" + ("  [local]" if src["local"] else ""))
        classes = ", ".join(f"{c['class_index']}:{c['name']!r}->out {c['output']}" for c in m["classes"])
        lines.append(f"  clones {classes}")
        for k in m["masks"]:
            lines.append(f"  mask {k['layer']}: {k['kept']}/{k['filters']} filters ({k['density']:.1%})")
        if m["mask_density"] is not None:
            lines.append(f"  mask density overall {m['mask_density']:.1%}")
        lines.append(f"  adapter {m['adapter']['kind']} {m['adapter']['args']}")
    c = s["classifier"]
    lines.append(f"classifier {c['kind']} {c['args']}")
    lines.append("labels  " + ", ".join(f"{e['output']}={e['name']!r} ({e['model']}#{e['class_index']})"
                                        for e in s["labels"]))
    lines.append(f"tensors ({len(s['tensors'])}, {s['tensor_bytes']} B)")
    for x in s["tensors"]:
        lines.append(f"  {x['name']:<40} {x['dtype']:<5} {str(tuple(x['shape'])):<16} {x['bytes']} B")
    if s["metrics"]:
        lines.append(f"metrics {s['metrics']}")
    if s["provenance"]:
        lines.append(f"provenance {s['provenance']}")
    if s["signatures"]:
        for sig in s["signatures"]:
            lines.append(f"signed by ed25519 key sha256:{sig['fingerprint'][:16]}")
    else:
        lines.append("unsigned")
    return "\n".join(lines)
