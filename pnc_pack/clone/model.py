"""ClonedNetwork: the network a clone delta describes, rebuilt from the frozen target and source(s).

    x ──> target blocks [0:R] ──> target blocks [R:L_t] ──> target head ───────────────> logits of T_t (unchanged)
                  │                                    └─ f_t ─┐
                  └─> adapter_i ─> masked source_i blocks [R_s:L_s] ─> f_s,i ─> new_i([f_t, f_s,i]) ─> logits of t_s,i

The target's own logits come from the unmodified target path, bit for bit; pretrained parameters and buffers are
never written (they stay frozen, in eval mode); masks are applied with temporary forward hooks (``parts.masked``).
``detach()`` hands back the target module itself.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from pnc_pack.clone.convert import from_raw, to_raw
from pnc_pack.clone.parts import CLASSIFIERS, load_module_tensors, make_adapter, masked
from pnc_pack.errors import ArchitectureError
from pnc_pack.format.delta import CloneDelta


def new_head(in_features: int, k: int) -> nn.Linear:
    return nn.Linear(in_features, k)


class ClonedNetwork(nn.Module):
    def __init__(self, delta: CloneDelta, target: nn.Module, sources: list[nn.Module]):
        super().__init__()
        if len(sources) != len(delta.modules):
            raise ArchitectureError(f"{len(delta.modules)} module(s) in the delta, {len(sources)} source model(s) given")
        if delta.classifier_kind not in CLASSIFIERS:
            raise ArchitectureError(f"unknown classifier kind {delta.classifier_kind!r} (known: {', '.join(CLASSIFIERS)})")
        if target.num_blocks != delta.target_blocks:
            raise ArchitectureError(f"the target has {target.num_blocks} blocks, the delta says {delta.target_blocks}")
        self.delta = delta
        self.target = target
        self._sources = list(sources)  # plain list: a source shared by two modules is one module, not two
        for i, s in enumerate(dict.fromkeys(sources)):
            self.add_module(f"source_{i}", s)
        self.input_shape = tuple(target.input_shape)
        self.adapters = nn.ModuleList()
        self.heads = nn.ModuleList()
        self._masks: list[dict[str, torch.Tensor]] = []
        f_t = target.feature_dim
        for i, (m, src) in enumerate(zip(delta.modules, sources)):
            if src.num_blocks != m.source_blocks:
                raise ArchitectureError(f"module {i}: source has {src.num_blocks} blocks, the delta says {m.source_blocks}")
            points = dict(src.mask_points(m.source_position, m.source_blocks))
            masks = {}
            for mk in m.masks:
                if mk.layer not in points or points[mk.layer] != mk.filters:
                    raise ArchitectureError(f"module {i}: mask {mk.layer!r} ({mk.filters} filters) does not fit the "
                                            f"source's mask points {points}")
                masks[mk.layer] = torch.tensor(mk.to_bools(), dtype=torch.float32)
            self._masks.append(masks)
            adapter = make_adapter(m.adapter_kind, m.adapter_args)
            load_module_tensors(adapter, {k: from_raw(v) for k, v in m.adapter.items()}, f"module {i} adapter")
            self.adapters.append(adapter)
            head = new_head(f_t + src.feature_dim, len(m.clone_classes))
            tensors = {k.split(".", 2)[2]: from_raw(v) for k, v in delta.classifier.items() if k.startswith(f"new.{i}.")}
            load_module_tensors(head, tensors, f"classifier new.{i}")
            self.heads.append(head)
        for p in self.target.parameters():
            p.requires_grad_(False)
        for s in self._sources:
            for p in s.parameters():
                p.requires_grad_(False)
        self.output_labels: list[int] | None = None  # dataset label of each output, when known (set by the loader)

    @classmethod
    def from_delta(cls, delta: CloneDelta, target: nn.Module, sources: list[nn.Module]) -> "ClonedNetwork":
        return cls(delta, target, sources).eval()

    @property
    def sources(self) -> list[nn.Module]:
        return list(self._sources)

    def train(self, mode: bool = True):
        """Only adapters and classifier heads ever enter training mode; pretrained models stay in eval."""
        super().train(mode)
        self.target.eval()
        for s in self._sources:
            s.eval()
        return self

    def trainable_parameters(self):
        return [p for part in (self.adapters, self.heads) for p in part.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.target
        wanted = {m.target_position for m in self.delta.modules}
        taps = {}
        h = x
        for b in range(t.num_blocks):
            if b in wanted:
                taps[b] = h
            h = t.blocks[b](h)
        f_t = t.head_input(h)
        out = [t.head(f_t)]
        for m, src, adapter, head, masks in zip(self.delta.modules, self._sources, self.adapters, self.heads, self._masks):
            a = adapter(taps[m.target_position])
            with masked(src, {k: v.to(a.device) for k, v in masks.items()}):
                f_s = src.head_input(src.forward_blocks(a, m.source_position, m.source_blocks))
            out.append(head(torch.cat([f_t, f_s], 1)))
        return torch.cat(out, 1)

    def detach(self) -> nn.Module:
        """The target, as loaded: nothing of the clone was ever written into it."""
        return self.target

    def to_delta(self) -> CloneDelta:
        """The delta with this model's current adapter and classifier tensors (after a repair, say)."""
        modules = tuple(replace(m, adapter={k: to_raw(v) for k, v in a.state_dict().items()})
                        for m, a in zip(self.delta.modules, self.adapters))
        classifier = {f"new.{i}.{k}": to_raw(v) for i, h in enumerate(self.heads) for k, v in h.state_dict().items()}
        return replace(self.delta, modules=modules, classifier=classifier)
