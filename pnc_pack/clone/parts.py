"""The learned parts of a clone, by registered kind: adapters, the classifier, and filter masks.

A delta names kinds (``adapter_kind``, ``classifier_kind``); this module is the only place that turns a kind into
code, through the ``ADAPTERS`` table. An unknown kind is an ArchitectureError, never an import.

Adapter ``bridge`` (PAPER.md §3 item 12, [INFERRED]): maps the target's features at block R (shape ``in_shape``)
to the input the source's block R_s expects (``out_shape``). For maps (C,H,W): a 1x1 convolution C_t -> C_s,
then a fixed bilinear resize when the resolutions differ; for vectors: a linear map. It starts as the identity
(or a channel repeat/mean) so that a same-architecture pair begins exactly at "feed the source the target's
features"; at R=0 it acts on the image.

Classifier ``target-head-linear`` ([INFERRED] PAPER.md §3 item 13, shaped by the loader's exactness rule): the
logits of the target's own classes are the frozen target head's output, unchanged; each module i adds a linear
layer ``new.<i>`` over [target features, module-i source-branch features] giving that module's new classes.
Keeping one linear layer per module makes modules removable without touching the others.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading

import torch
import torch.nn.functional as F
from torch import nn

from pnc_pack.errors import ArchitectureError


class Bridge(nn.Module):
    def __init__(self, in_shape, out_shape):
        super().__init__()
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if len(self.in_shape) == 3 and len(self.out_shape) == 3:
            ci, co = self.in_shape[0], self.out_shape[0]
            self.proj = nn.Conv2d(ci, co, 1)
            w = torch.zeros(co, ci, 1, 1)
            for o in range(co):
                w[o, o % ci if ci <= co else o, 0, 0] = 1.0 if ci <= co else 0.0
            if ci > co:
                w[:, :, 0, 0] = 1.0 / ci
            with torch.no_grad():
                self.proj.weight.copy_(w)
                self.proj.bias.zero_()
        elif len(self.in_shape) >= 1 and len(self.out_shape) == 1:
            di, do = math.prod(self.in_shape), self.out_shape[0]
            self.proj = nn.Linear(di, do)
            with torch.no_grad():
                self.proj.weight.copy_(torch.eye(do, di))
                self.proj.bias.zero_()
        else:
            raise ArchitectureError(f"adapter bridge: cannot map features {self.in_shape} to {self.out_shape}")

    def forward(self, h):
        if isinstance(self.proj, nn.Linear):
            return self.proj(h.flatten(1))
        h = self.proj(h)
        if tuple(h.shape[-2:]) != self.out_shape[1:]:
            h = F.interpolate(h, size=self.out_shape[1:], mode="bilinear", align_corners=False)
        return h


ADAPTERS = {"bridge": Bridge}
CLASSIFIERS = ("target-head-linear",)


def make_adapter(kind: str, args) -> nn.Module:
    if kind not in ADAPTERS:
        raise ArchitectureError(f"unknown adapter kind {kind!r} (known: {', '.join(sorted(ADAPTERS))})")
    try:
        return ADAPTERS[kind](args["in_shape"], args["out_shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchitectureError(f"adapter {kind!r}: bad arguments {dict(args)!r}: {exc}") from None


def load_module_tensors(module: nn.Module, tensors: dict, where: str) -> None:
    """Strictly load ``tensors`` (name -> torch tensor) into ``module``; ArchitectureError naming what differs."""
    own = module.state_dict()
    if set(own) != set(tensors):
        raise ArchitectureError(f"{where}: tensors {sorted(tensors)} do not match the expected {sorted(own)}")
    for k, v in own.items():
        if tuple(tensors[k].shape) != tuple(v.shape) or tensors[k].dtype != v.dtype:
            raise ArchitectureError(f"{where}: tensor {k!r} has shape {list(tensors[k].shape)} {tensors[k].dtype}, "
                                    f"expected {list(v.shape)} {v.dtype}")
    module.load_state_dict(tensors, strict=True)


_ACTIVE: contextvars.ContextVar[dict] = contextvars.ContextVar("pnc_pack_masks", default={})
_HOOK_LOCK = threading.Lock()


def _mask_hook(module, inp, out):
    m = _ACTIVE.get().get(id(module))
    if m is None:
        return None
    if getattr(module, "pnc_mask_dim", 1) == -1:  # channels-last (zoo.base.mark): filters on the last dim
        return out * m.view(*([1] * (out.dim() - 1)), -1)
    return out * m.view(1, -1, *([1] * (out.dim() - 2)))


def _ensure_hook(module: nn.Module) -> None:
    with _HOOK_LOCK:
        if not any(h is _mask_hook for h in module._forward_hooks.values()):
            module.register_forward_hook(_mask_hook)


@contextlib.contextmanager
def masked(model: nn.Module, masks: dict):
    """Within the block, the outputs of ``model``'s mask points are multiplied by ``masks[name]`` on dim 1 (on the
    last dim for a point marked channels-last: ``zoo.base.mark(..., dim=-1)``).

    Each mask point carries one permanent forward hook that does nothing unless the *current context* (a
    ``contextvars`` variable: per thread) names a mask for it; this block sets that mask for its own thread only.
    So a source shared by several modules, used unmasked, or run by several threads at once (a served model) is
    never masked by another caller's block, and no hook is added or removed while another thread runs forward.
    """
    active = dict(_ACTIVE.get())
    for name, m in masks.items():
        module = model.get_submodule(name)
        _ensure_hook(module)
        active[id(module)] = m
    token = _ACTIVE.set(active)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
