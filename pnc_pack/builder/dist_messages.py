"""Messages between the ranks of a distributed build: one uint8 tensor each, a JSON header then raw tensor bytes.

No pickle crosses a rank boundary: :func:`pack` / :func:`unpack` carry a JSON-able header and named tensors, and the
``*_out`` / ``*_in`` pairs turn what units share (models, model specs, datasets, a trained branch) into that form
and back. Used by :mod:`pnc_pack.builder.distributed` (gloo, point to point with rank 0, small CPU payloads).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

_DTYPES = {str(d).removeprefix("torch."): d for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                                       torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                                                       torch.bool)}


def pack(meta: dict, tensors: dict | None = None) -> torch.Tensor:
    entries, chunks, off = [], [], 0
    for name, t in (tensors or {}).items():
        t = t.detach().to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)
        entries.append([name, str(t.dtype).removeprefix("torch."), list(t.shape), off, int(raw.numel())])
        chunks.append(raw)
        off += int(raw.numel())
    head = json.dumps({"meta": meta, "tensors": entries}).encode()
    first = torch.frombuffer(bytearray(struct.pack("<Q", len(head)) + head), dtype=torch.uint8)
    return torch.cat([first, *chunks])


def unpack(blob: torch.Tensor) -> tuple[dict, dict]:
    n = struct.unpack("<Q", blob[:8].numpy().tobytes())[0]
    head = json.loads(blob[8:8 + n].numpy().tobytes())
    data, out = blob[8 + n:], {}
    for name, dtype, shape, off, size in head["tensors"]:
        out[name] = data[off:off + size].clone().view(_DTYPES[dtype]).reshape(shape)
    return head["meta"], out


def model_out(prefix: str, model) -> tuple[dict, dict]:
    from pnc_pack.zoo.pretrained import state_tensors

    return ({"arch": model.arch, "arch_args": dict(model.arch_args)},
            {f"{prefix}/{k}": v for k, v in state_tensors(model).items()})


def model_in(prefix: str, meta: dict, tensors: dict):
    from pnc_pack.zoo.pretrained import empty_model, load_state

    model = empty_model(meta["arch"], meta["arch_args"])
    state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}
    load_state(model, state, f"{prefix} sent by rank 0", assign=True)
    model.eval()
    model.requires_grad_(False)
    return model


def spec_out(m) -> dict:
    from pnc_pack.refs import ResolvedModel

    if isinstance(m, ResolvedModel):
        return {"folder": str(m.folder), "ref": m.ref.to_dict(), "spec": m.spec}
    return {"path": str(m)}


def spec_in(d: dict):
    from pnc_pack.refs import ModelRef, ResolvedModel

    return d["path"] if "path" in d else ResolvedModel(Path(d["folder"]), ModelRef.from_dict(d["ref"]), d["spec"])


def dataset_out(prefix: str, ds) -> tuple[dict, dict]:
    return ({"name": ds.name, "class_names": list(ds.class_names)},
            {f"{prefix}/train/x": ds.train[0], f"{prefix}/train/y": ds.train[1],
             f"{prefix}/test/x": ds.test[0], f"{prefix}/test/y": ds.test[1]})


def dataset_in(prefix: str, meta: dict, t: dict):
    from pnc_pack.data import Dataset

    return Dataset(meta["name"], (t[f"{prefix}/train/x"], t[f"{prefix}/train/y"]),
                   (t[f"{prefix}/test/x"], t[f"{prefix}/test/y"]), list(meta["class_names"]))


def branch_out(br, rep: dict, rng: torch.Tensor | None) -> tuple[dict, dict]:
    t = {f"adapter/{k}": v for k, v in br.adapter.state_dict().items()}
    t.update({f"head/{k}": v for k, v in br.head.state_dict().items()})
    t.update({f"scores/{k}": v for k, v in br.scores.items()})
    if rng is not None:
        t["rng"] = rng
    return {"report": rep}, t


def branch_in(p, cfg, R: int, t: dict):
    from pnc_pack.builder import search as S

    with torch.random.fork_rng(devices=[]):  # the fresh parts are overwritten: no draw may leak into the global RNG
        br = S.fresh_branch(p, R, cfg)
    br.adapter.load_state_dict({k[8:]: v for k, v in t.items() if k.startswith("adapter/")})
    br.head.load_state_dict({k[5:]: v for k, v in t.items() if k.startswith("head/")})
    br.scores = {n: t[f"scores/{n}"].to(s.device).requires_grad_(True) for n, s in br.scores.items()}
    br.adapter.eval()
    return br
