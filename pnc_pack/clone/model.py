"""ClonedNetwork: the network a clone delta describes, rebuilt from the frozen target and source(s).

    x ──> target blocks [0:R] ──> target blocks [R:L_t] ──> target head ───────────────> logits of T_t (unchanged)
                  │                                    └─ f_t ─┐
                  └─> adapter_i ─> masked source_i blocks [R_s:L_s] ─> f_s,i ─> new_i([f_t, f_s,i]) ─> logits of t_s,i

The target's own logits come from the unmodified target path, bit for bit; pretrained parameters and buffers are
never written (they stay frozen, in eval mode); masks are applied by per-thread forward hooks (``parts.masked``).
``detach()`` hands back the target module itself.

Live modules: everything ``forward`` reads besides the target (the delta, each module's source, adapter, head and
masks, the output labels) is one immutable :class:`Live` snapshot, read once per call. :meth:`swap_modules` builds
a new snapshot completely and installs it with one reference assignment, so a forward running in another thread
sees the modules before or after a change, never half of it (``pnc_pack.api.model.ClonedModel.attach``/``remove``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import torch
from torch import nn

from pnc_pack.clone.convert import from_raw, to_raw
from pnc_pack.clone.parts import CLASSIFIERS, load_module_tensors, make_adapter, masked
from pnc_pack.errors import ArchitectureError
from pnc_pack.format.delta import CloneDelta, ClonedModule

_SWAP_LOCK = threading.Lock()  # swaps are rare: one lock for all (a lock attribute would stop deepcopy)


def new_head(in_features: int, k: int) -> nn.Linear:
    return nn.Linear(in_features, k)


@dataclass(frozen=True)
class Branch:
    """One cloned module as forward runs it."""

    module: ClonedModule
    source: nn.Module
    adapter: nn.Module
    head: nn.Module
    masks: Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Live:
    """What forward reads, as one immutable snapshot."""

    delta: CloneDelta
    branches: tuple[Branch, ...]
    output_labels: tuple[int, ...] | None = None


def make_branches(delta: CloneDelta, target: nn.Module, sources: Sequence[nn.Module],
                  first: int = 0) -> tuple[Branch, ...]:
    """The branches of ``delta``'s modules ``first``.. (one source each), tensors checked against the shapes;
    ArchitectureError naming what does not fit."""
    if len(sources) != len(delta.modules) - first:
        raise ArchitectureError(f"{len(delta.modules) - first} module(s) in the delta, {len(sources)} source model(s) "
                                "given")
    if delta.classifier_kind not in CLASSIFIERS:
        raise ArchitectureError(f"unknown classifier kind {delta.classifier_kind!r} (known: {', '.join(CLASSIFIERS)})")
    if target.num_blocks != delta.target_blocks:
        raise ArchitectureError(f"the target has {target.num_blocks} blocks, the delta says {delta.target_blocks}")
    out = []
    f_t = target.feature_dim
    for i, src in enumerate(sources, first):
        m = delta.modules[i]
        if src.num_blocks != m.source_blocks:
            raise ArchitectureError(f"module {i}: source has {src.num_blocks} blocks, the delta says {m.source_blocks}")
        points = dict(src.mask_points(m.source_position, m.source_blocks))
        masks = {}
        for mk in m.masks:
            if mk.layer not in points or points[mk.layer] != mk.filters:
                raise ArchitectureError(f"module {i}: mask {mk.layer!r} ({mk.filters} filters) does not fit the "
                                        f"source's mask points {points}")
            masks[mk.layer] = torch.tensor(mk.to_bools(), dtype=torch.float32)
        adapter = make_adapter(m.adapter_kind, m.adapter_args)
        load_module_tensors(adapter, {k: from_raw(v) for k, v in m.adapter.items()}, f"module {i} adapter")
        head = new_head(f_t + src.feature_dim, len(m.clone_classes))
        tensors = {k.split(".", 2)[2]: from_raw(v) for k, v in delta.classifier.items() if k.startswith(f"new.{i}.")}
        load_module_tensors(head, tensors, f"classifier new.{i}")
        for p in src.parameters():
            p.requires_grad_(False)
        out.append(Branch(m, src.eval(), adapter, head, masks))
    return tuple(out)


class ClonedNetwork(nn.Module):
    def __init__(self, delta: CloneDelta, target: nn.Module, sources: list[nn.Module]):
        super().__init__()
        self.target = target
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.input_shape = tuple(target.input_shape)
        self._install(Live(delta, make_branches(delta, target, sources)))

    def _install(self, live: Live) -> None:
        """Register ``live``'s parts as submodules (state_dict, ``.to``), then make it the one forward reads."""
        distinct = list(dict.fromkeys(b.source for b in live.branches))  # a shared source is one module, not two
        for name in [n for n in self._modules if n.startswith("source_")]:
            if int(name.split("_")[1]) >= len(distinct):
                del self._modules[name]
        for i, s in enumerate(distinct):
            self._modules[f"source_{i}"] = s
        self._modules["adapters"] = nn.ModuleList([b.adapter for b in live.branches])
        self._modules["heads"] = nn.ModuleList([b.head for b in live.branches])
        self.__dict__["_live"] = live  # the one assignment a concurrent forward can observe

    @classmethod
    def from_delta(cls, delta: CloneDelta, target: nn.Module, sources: list[nn.Module]) -> "ClonedNetwork":
        return cls(delta, target, sources).eval()

    @property
    def delta(self) -> CloneDelta:
        return self._live.delta

    @property
    def output_labels(self) -> list[int] | None:
        """The dataset label of each output, when known (set by the loader)."""
        labels = self._live.output_labels
        return None if labels is None else list(labels)

    @output_labels.setter
    def output_labels(self, labels) -> None:
        self.__dict__["_live"] = replace(self._live, output_labels=None if labels is None else tuple(labels))

    @property
    def _sources(self) -> list[nn.Module]:
        return [b.source for b in self._live.branches]

    @property
    def sources(self) -> list[nn.Module]:
        return self._sources

    def swap_modules(self, delta: CloneDelta, keep: Sequence[int], new_sources: Sequence[nn.Module] = (),
                     new_labels: Sequence[int] | None = None) -> None:
        """Become ``delta``, whose modules are this model's modules ``keep`` (in that order, reused as they are),
        then one new module per entry of ``new_sources`` (built from ``delta``). ``new_labels``: the dataset labels
        of the new modules' outputs. The new snapshot is built completely before it replaces the old one; a forward
        running meanwhile finishes on the old one."""
        with _SWAP_LOCK:
            live = self._live
            kept = tuple(replace(live.branches[j], module=delta.modules[i]) for i, j in enumerate(keep))
            added = make_branches(delta, self.target, list(new_sources), first=len(kept))
            device = next(self.target.parameters(), torch.empty(0)).device
            for b in added:
                b.adapter.to(device).train(self.training)
                b.head.to(device).train(self.training)
            labels = None
            if live.output_labels is not None and (new_labels is not None or not new_sources):
                new_labels = () if new_labels is None else new_labels
                n_old = sum(1 for lab in live.delta.labels if lab.model == "target")
                old_by_module, start = [], n_old
                for b in live.branches:
                    k = len(b.module.clone_classes)
                    old_by_module.append(live.output_labels[start:start + k])
                    start += k
                labels = live.output_labels[:n_old] + tuple(v for j in keep for v in old_by_module[j]) \
                    + tuple(int(v) for v in new_labels)
                if len(labels) != len(delta.labels):
                    raise ArchitectureError(f"{len(labels)} output labels for a delta with {len(delta.labels)} outputs")
            self._install(Live(delta, kept + added, labels))

    def train(self, mode: bool = True):
        """Only adapters and classifier heads ever enter training mode; pretrained models stay in eval."""
        super().train(mode)
        self.target.eval()
        for s in self._sources:
            s.eval()
        return self

    def trainable_parameters(self):
        return [p for b in self._live.branches for part in (b.adapter, b.head) for p in part.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(self._live, x)  # one snapshot for the whole call

    def forward_labelled(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int] | None]:
        """(logits, the dataset label of each output) from one snapshot: consistent while modules come and go."""
        live = self._live
        return self._forward(live, x), None if live.output_labels is None else list(live.output_labels)

    def _forward(self, live: Live, x: torch.Tensor) -> torch.Tensor:
        t = self.target
        wanted = {b.module.target_position for b in live.branches}
        taps = {}
        h = x
        for b in range(t.num_blocks):
            if b in wanted:
                taps[b] = h
            h = t.blocks[b](h)
        f_t = t.head_input(h)
        out = [t.head(f_t)]
        for br in live.branches:
            m = br.module
            a = br.adapter(taps[m.target_position])
            with masked(br.source, {k: v.to(a.device) for k, v in br.masks.items()}):
                f_s = br.source.head_input(br.source.forward_blocks(a, m.source_position, m.source_blocks))
            out.append(br.head(torch.cat([f_t, f_s], 1)))
        return torch.cat(out, 1)

    def detach(self) -> nn.Module:
        """The target, as loaded: nothing of the clone was ever written into it."""
        return self.target

    def to_delta(self) -> CloneDelta:
        """The delta with this model's current adapter and classifier tensors (after a repair, say)."""
        live = self._live
        modules = tuple(replace(b.module, adapter={k: to_raw(v) for k, v in b.adapter.state_dict().items()})
                        for b in live.branches)
        classifier = {f"new.{i}.{k}": to_raw(v) for i, b in enumerate(live.branches)
                      for k, v in b.head.state_dict().items()}
        return replace(live.delta, modules=modules, classifier=classifier)
