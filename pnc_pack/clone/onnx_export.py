"""The cloned network as one ONNX graph, checked with onnxruntime before a byte is written.

``export_onnx(cloned, "model.onnx")`` traces the whole clone (target, every module's adapter, masked source tail and
head) with torch's TorchScript-based exporter (``dynamo=False``: on torch 2.13 CPU it exports a slim zoo model in
0.1-2 s where the dynamo exporter takes 13-50 s, with the same outputs). The masks are applied by forward hooks
(:func:`pnc_pack.clone.parts.masked`), which run while tracing: each mask becomes a constant ``Mul`` in the graph.
The batch axis is dynamic; the opset is :data:`OPSET` unless asked otherwise.

Before writing, the graph runs in onnxruntime (CPU) on the sample inputs (given images, else seeded uniform images
in [0, 1]) in a batch size other than the traced one, and is refused (:class:`~pnc_pack.errors.ExportError`,
nothing written) when ``max |onnx - torch| > atol + rtol * max |torch|`` or when an argmax differs where torch's
top two logits are further apart than that tolerance (a closer pair is a tie, counted as ``ties``).

Written atomically: ``model.onnx`` (labels also in its ``metadata_props``) and the sidecar ``model.onnx.json``:
input name, shape and preprocessing, output name and the label of each output, opset, tolerance and the measured
difference, the delta's digest. Needs the optional extra ``pnc-pack[onnx]`` (onnx, onnxruntime).
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pnc_pack.errors import ExportError, UsageError
from pnc_pack.fsutil import atomic_write

OPSET = 17
ATOL = 1e-4
RTOL = 1e-4
INPUT, OUTPUT = "input", "logits"
SIDECAR_FORMAT = "pnc-pack-onnx"
MAX_ONNX_BYTES = (2 << 30) - 1  # protobuf's limit for one message


@dataclass
class OnnxCheck:
    """What the onnxruntime check measured."""

    samples: int
    max_abs_diff: float
    allowed: float
    argmax_agreement: float
    ties: int
    export_seconds: float
    check_seconds: float


@dataclass
class OnnxExport:
    """A verified ONNX graph, not yet written: ``model`` (bytes), ``sidecar`` (a dict), ``check``."""

    model: bytes
    sidecar: dict
    check: OnnxCheck

    def write(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``path`` and ``path + '.json'`` atomically; returns both paths."""
        p = Path(path)
        if p.is_dir():
            raise UsageError(f"{p} is a folder: --export-onnx takes a file name (model.onnx)")
        p.parent.mkdir(parents=True, exist_ok=True)
        side = sidecar_path(p)
        atomic_write(p, self.model)
        atomic_write(side, (json.dumps(self.sidecar, indent=2, sort_keys=True) + "\n").encode())
        return p, side


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".json")


def _modules():
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise UsageError(f"ONNX export needs the optional extra: pip install 'pnc-pack[onnx]' ({exc})") from None
    return onnx, onnxruntime


def _labels(cloned) -> list[dict]:
    labels = cloned.output_labels
    return [{"index": i, "name": lab.name, "from": lab.model,
             "label": None if labels is None else int(labels[i])} for i, lab in enumerate(cloned.delta.labels)]


def _samples(cloned, samples, n: int, seed: int) -> torch.Tensor:
    shape = tuple(cloned.input_shape)
    if samples is None:
        return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))
    from pnc_pack.data import fit_to_shape

    x = torch.as_tensor(samples, dtype=torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or len(x) == 0:
        raise UsageError(f"sample inputs must be images [N, C, H, W] (N >= 1), got shape {list(x.shape)}")
    return fit_to_shape(x, shape)


def build_onnx(cloned, *, samples=None, n_random: int = 64, opset: int = OPSET, atol: float = ATOL,
               rtol: float = RTOL, seed: int = 0) -> OnnxExport:
    """Trace ``cloned`` to ONNX and check it with onnxruntime on ``samples`` (images; default ``n_random`` seeded
    uniform images); ExportError when it does not answer like torch. Nothing is written."""
    onnx, ort = _modules()
    from pnc_pack.format import codec

    if atol < 0 or rtol < 0:
        raise UsageError(f"tolerances must be >= 0 (atol {atol}, rtol {rtol})")
    x = _samples(cloned, samples, n_random, seed)
    was_training = cloned.training
    cloned.eval()
    device = next(cloned.parameters()).device
    dummy = torch.rand((2, *cloned.input_shape), generator=torch.Generator().manual_seed(seed + 1)).to(device)
    t0 = time.perf_counter()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(cloned, (dummy,), buf, dynamo=False, opset_version=int(opset), input_names=[INPUT],
                              output_names=[OUTPUT], dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                              do_constant_folding=True)
    except Exception as exc:  # the exporter raises many kinds; the clone is not exportable as it stands
        raise ExportError(f"torch.onnx.export failed (opset {opset}): {type(exc).__name__}: {exc}") from None
    finally:
        cloned.train(was_training)
    export_seconds = time.perf_counter() - t0
    digest = codec.digest(cloned.to_delta()).hex()
    labels = _labels(cloned)
    model = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(model, {"pnc_pack.delta_sha256": digest, "pnc_pack.labels": json.dumps(labels),
                                        "pnc_pack.target": cloned.delta.target.uri()})
    model.producer_name = "pnc-pack"
    data = model.SerializeToString()
    if len(data) > MAX_ONNX_BYTES:
        raise ExportError(f"the ONNX graph is {len(data)} bytes, over protobuf's 2 GiB limit")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ExportError(f"the exported graph is not valid ONNX: {exc}") from None
    t1 = time.perf_counter()
    check = _check(cloned, data, x, ort, atol, rtol, device)
    check.export_seconds, check.check_seconds = round(export_seconds, 3), round(time.perf_counter() - t1, 3)
    sidecar = {
        "format": SIDECAR_FORMAT, "version": 1, "opset": int(opset),
        "input": {"name": INPUT, "shape": ["batch", *map(int, cloned.input_shape)], "dtype": "float32",
                  "layout": "NCHW",
                  "preprocessing": "pixel values scaled to [0, 1] (no mean/std normalisation); resized bilinearly "
                                   "to H x W (antialiased when shrinking) and clamped to [0, 1]; 1 channel repeated "
                                   "to C, or C channels averaged to 1 (pnc_pack.data.fit_to_shape)",
                  **_in_graph(cloned.target)},
        "output": {"name": OUTPUT, "shape": ["batch", len(labels)], "meaning": "logits; argmax is the prediction",
                   "labels": labels},
        "tolerance": {"atol": atol, "rtol": rtol, "rule": "max|onnx - torch| <= atol + rtol * max|torch|"},
        "check": asdict(check),
        "delta_sha256": digest,
        "target": cloned.delta.target.uri(),
        "modules": [m.source.uri() for m in cloned.delta.modules],
    }
    return OnnxExport(data, sidecar, check)


def _in_graph(target) -> dict:
    """A transformers target (hf-*) normalises inside its block 0: the graph takes [0, 1] images all the same."""
    pp = getattr(target, "preprocess", None)
    if not all(hasattr(pp, k) for k in ("crop", "scale", "offset", "mean", "std")):
        return {}
    crop = f"centre crop to {pp.crop} x {pp.crop}, " if pp.crop else ""
    return {"in_graph": f"{crop}pixel * {pp.scale:g} + {pp.offset:g}, then (pixel - mean) / std with mean "
                        f"{list(pp.mean)}, std {list(pp.std)}: part of the graph, not to be done by the caller"}


def _check(cloned, data: bytes, x: torch.Tensor, ort, atol: float, rtol: float, device) -> OnnxCheck:
    import numpy as np

    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"onnxruntime cannot load the exported graph: {exc}") from None
    with torch.no_grad():
        want = torch.cat([cloned(x[i:i + 256].to(device)).cpu() for i in range(0, len(x), 256)]).numpy()
    got = np.concatenate([session.run([OUTPUT], {INPUT: x[i:i + 256].numpy()})[0] for i in range(0, len(x), 256)])
    if got.shape != want.shape:
        raise ExportError(f"onnxruntime gives outputs of shape {list(got.shape)}, torch {list(want.shape)}")
    diff = float(np.abs(got.astype(np.float64) - want).max())
    allowed = atol + rtol * float(np.abs(want).max())
    top2 = np.sort(want, axis=1)[:, -2:] if want.shape[1] > 1 else np.zeros((len(want), 2))
    margin = top2[:, 1] - top2[:, 0]
    agree = got.argmax(1) == want.argmax(1)
    ties = int(((~agree) & (margin <= allowed)).sum())
    check = OnnxCheck(len(x), diff, allowed, float(agree.mean()), ties, 0.0, 0.0)
    if not np.isfinite(diff) or diff > allowed:
        raise ExportError(f"onnxruntime differs from torch by {diff:.3g} on {len(x)} samples (allowed {allowed:.3g}); "
                          "nothing written")
    if int((~agree).sum()) > ties:
        raise ExportError(f"onnxruntime's argmax differs from torch's on {int((~agree).sum()) - ties} of {len(x)} "
                          "samples; nothing written")
    return check


def export_onnx(cloned, path: str | os.PathLike, **kw) -> OnnxExport:
    """Export ``cloned`` to ``path`` (one ONNX graph) and ``path + '.json'`` (the sidecar), after checking it with
    onnxruntime (:func:`build_onnx`, whose keywords it takes). Returns the :class:`OnnxExport`."""
    out = build_onnx(cloned, **kw)
    out.write(path)
    return out
