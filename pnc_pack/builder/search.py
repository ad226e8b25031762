"""One insertion position: train adapter A^R, classifier F_c^R and mask M from fresh, then score on held-out data.

Per training step (SUPP Alg. 1 lines 10-16, with the additions of :mod:`pnc_pack.builder.config`):

    L = loc·L_loc + kd·L_kd + ce·L_ce + neg·L_neg + sparsity·mean(M)

- L_loc: MSE between the cloned-class logits of the masked source M_s^{[0:R_s]} ∘ M·M_s^{[R_s:L_s]} on b·x and
  G(b), relative to the mean square of G(b) (logit scales differ between models; relative error keeps the weight
  meaningful);
- L_kd: KD (temperature T) of the clone's new-class logits towards G(b) over the cloned classes (k > 1 only);
- L_ce: cross-entropy of the clone's whole output on b·x towards its cloned class;
- L_neg: cross-entropy of the clone's whole output on the data-free negatives towards the target's class.
Frozen parts (target, source) run under no_grad; only A, F_c and the mask scores get gradients.

On any device: the pool, the negatives and the frozen activations live on the device of ``Problem``'s tensors;
the target's final features and logits do not depend on R and are computed once per sample set, the taps once per
position (kept while they fit ``FROZEN_BUDGET``); the batch indices of a whole run are drawn up front from the CPU
generator (the same random stream as drawing them step by step) and moved once, so a step never waits on the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pnc_pack.builder.config import BuildConfig
from pnc_pack.clone.parts import Bridge, masked
from pnc_pack.zoo.optim import make_adam


@dataclass
class Problem:
    """Everything frozen: a fixed pool of perturbed D_t samples b·x with their G(b), and the negatives."""

    target: nn.Module
    source: nn.Module
    clone_idx: list[int]  # source output indices of the cloned classes
    n_old: int
    x_tr: torch.Tensor  # pool of perturbed training samples (target input shape)
    y_tr: torch.Tensor  # their cloned-class index 0..k-1
    g_tr: torch.Tensor  # G(b) on the cloned classes, (n, k)
    x_ho: torch.Tensor  # the same for the held-out anchors
    y_ho: torch.Tensor
    g_ho: torch.Tensor
    neg_x: torch.Tensor
    neg_y: torch.Tensor
    neg_x_ho: torch.Tensor
    neg_y_ho: torch.Tensor
    anchors_ho: torch.Tensor | None = None  # the held-out D_t images themselves, unperturbed (for calibration)
    precision: str = "fp32"  # fp32, or bf16 autocast of the forward passes (pnc_pack.devices)

    def __post_init__(self):
        self.frozen: dict = {}  # freeze's cache (see the module's docs); not a field: never sent or compared

    @property
    def k(self) -> int:
        return len(self.clone_idx)


@dataclass
class Frozen:
    """Activations of the frozen models for one position, computed once: the target's features at block R, its
    final features and logits, and the source's features at block R_s (for L_loc)."""

    tap: torch.Tensor
    f_t: torch.Tensor
    old: torch.Tensor
    src: torch.Tensor | None

    def take(self, idx):
        return Frozen(self.tap[idx], self.f_t[idx], self.old[idx], None if self.src is None else self.src[idx])


FROZEN_BUDGET = {"cpu": 2 << 30, "cuda": 24 << 30}  # bytes of cached taps kept across positions, per device type


@torch.no_grad()
def freeze(p: "Problem", R: int, R_s: int, x: torch.Tensor, with_source: bool, chunk: int | None = None) -> Frozen:
    """The frozen activations of ``x`` (one of ``p``'s sample sets) at position R. The target's final features and
    logits are computed once per set; taps and source prefixes once per position. The same chunks and the same
    block calls as a plain forward pass, so the values are exactly those of one."""
    from pnc_pack.builder.api import source_input
    from pnc_pack.builder.surrogate import chunk_for
    from pnc_pack.devices import compute

    t, s = p.target, p.source
    chunk = chunk or chunk_for(x.device)
    key = (id(x), R, R_s if with_source else None)
    if key in p.frozen:
        return p.frozen[key]
    final = p.frozen.get((id(x), "final"))
    taps, fts, olds, srcs = [], [], [], []
    with compute(x.device, p.precision):
        for i in range(0, len(x), chunk):
            xb = x[i:i + chunk]
            h = t.forward_blocks(xb, 0, R)
            taps.append(h)
            if final is None:
                f_t = t.head_input(t.forward_blocks(h, R, t.num_blocks))
                fts.append(f_t)
                olds.append(t.head(f_t))
            if with_source:
                srcs.append(s.forward_blocks(source_input(s, xb), 0, R_s))
    cat = lambda v: torch.cat(v) if v else torch.empty(0, device=x.device)  # noqa: E731
    if final is None:
        final = p.frozen[(id(x), "final")] = (cat(fts), cat(olds))
    out = Frozen(cat(taps), final[0], final[1], cat(srcs) if with_source else None)
    _keep(p, key, out, x.device)
    return out


def _keep(p: "Problem", key, fz: Frozen, device: torch.device) -> None:
    """Cache ``fz`` for the next use of the same position (re-tune, calibration) while the budget allows."""
    size = lambda f: f.tap.nbytes + (0 if f.src is None else f.src.nbytes)  # noqa: E731
    used = sum(size(v) for k, v in p.frozen.items() if isinstance(v, Frozen))
    if used + size(fz) <= FROZEN_BUDGET.get(device.type, FROZEN_BUDGET["cpu"]):
        p.frozen[key] = fz


@dataclass
class Branch:
    """The learnable part of one module at one position."""

    R: int
    R_s: int
    adapter: nn.Module
    head: nn.Linear
    scores: dict  # mask point -> real scores (None when not localising)
    binary: dict | None = None  # mask point -> 0/1 float tensor, once binarised
    insert: bool = True  # false ('PNC w/o Insert'): adapter frozen, the insertion losses do not reach the mask

    def masks(self) -> dict:
        if self.binary is not None:
            return self.binary
        return {n: torch.sigmoid(s) for n, s in self.scores.items()}

    def parameters(self):
        return list(self.adapter.parameters()) + list(self.head.parameters())


def source_position(R: int, L_t: int, L_s: int) -> int:
    """R_s = ceil(R_t · L_s / L_t) (SUPP §3.2)."""
    return min(L_s - 1, math.ceil(R * L_s / L_t))


def in_shape(model, block: int) -> tuple[int, ...]:
    return tuple(model.input_shape) if block == 0 else tuple(model.block_shapes()[block - 1])


def fresh_branch(p: Problem, R: int, cfg: BuildConfig) -> Branch:
    t, s = p.target, p.source
    R_s = source_position(R, t.num_blocks, s.num_blocks)
    dev = next(s.parameters()).device
    adapter = Bridge(in_shape(t, R), in_shape(s, R_s)).to(dev)  # initialised on the CPU: the same values anywhere
    head = nn.Linear(t.feature_dim + s.feature_dim, p.k).to(dev)
    with torch.no_grad():  # start as the source's own classifier rows for the cloned classes (Direct Ensemble)
        head.weight.zero_()
        head.weight[:, t.feature_dim:] = s.head.weight[p.clone_idx]
        head.bias.copy_(s.head.bias[p.clone_idx])
    scores = {}
    if cfg.localize:
        scores = {n: torch.full((f,), cfg.mask_init, device=dev, requires_grad=True)
                  for n, f in s.mask_points(R_s, s.num_blocks)}
    return Branch(R, R_s, adapter, head, scores, insert=cfg.insert)


def clone_logits(p: Problem, br: Branch, fz: Frozen) -> torch.Tensor:
    s = p.source
    a = br.adapter(fz.tap)
    masks = br.masks() if br.insert else {n: m.detach() for n, m in br.masks().items()}
    with masked(s, masks):
        f_s = s.head_input(s.forward_blocks(a, br.R_s, s.num_blocks))
    return torch.cat([fz.old, br.head(torch.cat([fz.f_t, f_s], 1))], 1)


def loc_logits(p: Problem, br: Branch, fz: Frozen) -> torch.Tensor:
    s = p.source
    with masked(s, br.masks()):
        return s.head(s.head_input(s.forward_blocks(fz.src, br.R_s, s.num_blocks)))[:, p.clone_idx]


def losses(p: Problem, br: Branch, cfg: BuildConfig, fz: Frozen, y, g, fneg: Frozen | None, ny, train: bool) -> dict:
    out = {}
    logits = clone_logits(p, br, fz)
    if cfg.uses("ce"):
        out["ce"] = F.cross_entropy(logits, p.n_old + y)
    if cfg.objective != "pnc":  # the paper's two KD terms as one: the whole output vs [M_t(b·x) | G(b)]
        T = cfg.temperature
        teacher = torch.cat([fz.old, g], 1)
        out["kd"] = F.kl_div(F.log_softmax(logits / T, 1), F.softmax(teacher / T, 1), reduction="batchmean") * T * T
    elif p.k > 1:
        T = cfg.temperature
        out["kd"] = F.kl_div(F.log_softmax(logits[:, p.n_old:] / T, 1), F.softmax(g / T, 1), reduction="batchmean") * T * T
    if cfg.localize and br.scores:
        out["loc"] = F.mse_loss(loc_logits(p, br, fz), g) / g.pow(2).mean().clamp(min=1e-6)
        if train and br.binary is None:
            out["sparsity"] = torch.cat([torch.sigmoid(v) for v in br.scores.values()]).mean()
    if fneg is not None and len(ny):
        out["neg"] = F.cross_entropy(clone_logits(p, br, fneg), ny)
    return out


WEIGHTS = {"ce": "ce_weight", "kd": "kd_weight", "loc": "loc_weight", "neg": "neg_weight", "sparsity": "sparsity"}


def total(parts: dict, cfg: BuildConfig) -> torch.Tensor:
    return sum(getattr(cfg, WEIGHTS[k]) * v for k, v in parts.items())


def draw_batches(n: int, n_neg: int, steps: int, batch_size: int, gen: torch.Generator):
    """The batch indices of ``steps`` steps, drawn from ``gen`` in the order a step-by-step loop draws them (pool
    batch, then negatives batch, per step): (steps, batch) tensors of pool and negatives indices (None without
    negatives)."""
    i, j = [], []
    for _ in range(steps):
        i.append(torch.randint(0, n, (batch_size,), generator=gen))
        if n_neg:
            j.append(torch.randint(0, n_neg, (batch_size,), generator=gen))
    return torch.stack(i) if i else torch.empty(0, batch_size, dtype=torch.long), torch.stack(j) if j else None


def train(p: Problem, br: Branch, cfg: BuildConfig, steps: int, gen: torch.Generator, progress=None, task=None):
    from pnc_pack.devices import compute

    loc = bool(cfg.localize and br.scores)
    fz = freeze(p, br.R, br.R_s, p.x_tr, loc)
    fneg = freeze(p, br.R, br.R_s, p.neg_x, False) if len(p.neg_x) else None
    dev = p.x_tr.device
    groups = [{"params": br.parameters() if br.insert else list(br.head.parameters()), "lr": cfg.lr}]
    if br.scores and br.binary is None:
        groups.append({"params": list(br.scores.values()), "lr": cfg.mask_lr})
    opt = make_adam(groups, dev)
    ii, jj = draw_batches(len(p.y_tr), len(p.neg_y) if fneg is not None else 0, steps, cfg.batch_size, gen)
    ii = ii.to(dev)
    jj = None if jj is None else jj.to(dev)
    br.adapter.train()
    for step in range(steps):
        i = ii[step]
        j = jj[step] if jj is not None else None
        with compute(dev, p.precision):
            parts = losses(p, br, cfg, fz.take(i), p.y_tr[i], p.g_tr[i], None if j is None else fneg.take(j),
                           p.neg_y[j] if j is not None else p.neg_y, train=True)
            loss = total(parts, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress.advance(task)
    br.adapter.eval()


@torch.no_grad()
def held_out_loss(p: Problem, br: Branch, cfg: BuildConfig) -> dict:
    """The converged loss on the held-out pool and negatives (never trained on): what picks R*."""
    from pnc_pack.devices import compute

    loc = bool(cfg.localize and br.scores)
    fz = freeze(p, br.R, br.R_s, p.x_ho, loc)
    fneg = freeze(p, br.R, br.R_s, p.neg_x_ho, False) if len(p.neg_x_ho) else None
    with compute(p.x_ho.device, p.precision):
        parts = losses(p, br, cfg, fz, p.y_ho, p.g_ho, fneg, p.neg_y_ho, train=False)
    out = {k: round(float(v), 6) for k, v in parts.items()}
    out["total"] = round(float(total(parts, cfg)), 6)
    return out


def routing_margin(logits: torch.Tensor, n_old: int) -> torch.Tensor:
    """Largest cloned-class logit minus largest target logit: > 0 routes an image to a cloned class."""
    return logits[:, n_old:].max(1).values - logits[:, :n_old].max(1).values


def recall_shift(margin: torch.Tensor, recall: float) -> float:
    """The amount to take off the cloned classes' biases so that a share ``recall`` of ``margin`` stays > 0."""
    return float(torch.quantile(margin, 1 - recall))


@torch.no_grad()
def calibrate(p: Problem, br: Branch, recall: float) -> dict:
    """Shift the new classes' biases so that a share ``recall`` of the held-out D_t anchors (unperturbed, never
    trained on) is routed to a cloned class, i.e. max new logit > max target logit. Returns what was measured."""
    from pnc_pack.devices import compute

    fz = freeze(p, br.R, br.R_s, p.anchors_ho, False)
    with compute(fz.tap.device, p.precision):
        logits = clone_logits(p, br, fz).float()
    margin = routing_margin(logits, p.n_old)
    before = float((margin > 0).float().mean())
    shift = recall_shift(margin, recall)
    br.head.bias -= shift
    after = float((margin - shift > 0).float().mean())
    return {"bias_shift": round(shift, 6), "held_out_recall_before": round(before, 4),
            "held_out_recall_after": round(after, 4)}


def binarize(br: Branch) -> dict:
    """score > 0 (sigmoid > 0.5) keeps a filter; every mask point keeps at least its best filter."""
    out = {}
    for n, s in br.scores.items():
        keep = (s.detach() > 0).float()
        if keep.sum() == 0:
            keep[int(s.detach().argmax())] = 1.0
        out[n] = keep
    return out
