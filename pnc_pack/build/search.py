"""One insertion position: train adapter A^R, classifier F_c^R and mask M from fresh, then score on held-out data.

Per training step (SUPP Alg. 1 lines 10-16, with the additions of :mod:`pnc_pack.build.config`):

    L = loc·L_loc + kd·L_kd + ce·L_ce + neg·L_neg + sparsity·mean(M)

- L_loc: MSE between the cloned-class logits of the masked source M_s^{[0:R_s]} ∘ M·M_s^{[R_s:L_s]} on b·x and
  G(b), relative to the mean square of G(b) (logit scales differ between models; relative error keeps the weight
  meaningful);
- L_kd: KD (temperature T) of the clone's new-class logits towards G(b) over the cloned classes (k > 1 only);
- L_ce: cross-entropy of the clone's whole output on b·x towards its cloned class;
- L_neg: cross-entropy of the clone's whole output on the data-free negatives towards the target's class.
Frozen parts (target, source) run under no_grad; only A, F_c and the mask scores get gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pnc_pack.build.config import BuildConfig
from pnc_pack.build.surrogate import perturb
from pnc_pack.clone.parts import Bridge, masked


@dataclass
class Problem:
    target: nn.Module
    source: nn.Module
    clone_idx: list[int]  # source output indices of the cloned classes
    n_old: int
    x_tr: torch.Tensor  # anchors (target input shape)
    y_tr: torch.Tensor  # cloned-class index 0..k-1
    b_tr: torch.Tensor  # (n, per, grid²)
    g_tr: torch.Tensor  # G outputs on the cloned classes, (n, per, k)
    x_ho: torch.Tensor
    y_ho: torch.Tensor
    b_ho: torch.Tensor
    g_ho: torch.Tensor
    neg_x: torch.Tensor
    neg_y: torch.Tensor
    neg_x_ho: torch.Tensor
    neg_y_ho: torch.Tensor

    @property
    def k(self) -> int:
        return len(self.clone_idx)


@dataclass
class Branch:
    """The learnable part of one module at one position."""

    R: int
    R_s: int
    adapter: nn.Module
    head: nn.Linear
    scores: dict  # mask point -> real scores (None when not localising)
    binary: dict | None = None  # mask point -> 0/1 float tensor, once binarised

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
    adapter = Bridge(in_shape(t, R), in_shape(s, R_s))
    head = nn.Linear(t.feature_dim + s.feature_dim, p.k)
    with torch.no_grad():  # start as the source's own classifier rows for the cloned classes (Direct Ensemble)
        head.weight.zero_()
        head.weight[:, t.feature_dim:] = s.head.weight[p.clone_idx]
        head.bias.copy_(s.head.bias[p.clone_idx])
    scores = {}
    if cfg.localize:
        scores = {n: torch.full((f,), cfg.mask_init, requires_grad=True) for n, f in s.mask_points(R_s, s.num_blocks)}
    return Branch(R, R_s, adapter, head, scores)


def clone_logits(p: Problem, br: Branch, x: torch.Tensor) -> torch.Tensor:
    t, s = p.target, p.source
    with torch.no_grad():
        h = t.forward_blocks(x, 0, br.R)
        f_t = t.head_input(t.forward_blocks(h, br.R, t.num_blocks))
        old = t.head(f_t)
    a = br.adapter(h)
    with masked(s, br.masks()):
        f_s = s.head_input(s.forward_blocks(a, br.R_s, s.num_blocks))
    return torch.cat([old, br.head(torch.cat([f_t, f_s], 1))], 1)


def loc_logits(p: Problem, br: Branch, x: torch.Tensor) -> torch.Tensor:
    from pnc_pack.data import fit_to_shape

    s = p.source
    xs = x if tuple(x.shape[1:]) == tuple(s.input_shape) else fit_to_shape(x, s.input_shape)
    with torch.no_grad():
        h = s.forward_blocks(xs, 0, br.R_s)
    with masked(s, br.masks()):
        return s.head(s.head_input(s.forward_blocks(h, br.R_s, s.num_blocks)))[:, p.clone_idx]


def losses(p: Problem, br: Branch, cfg: BuildConfig, x, y, g, nx, ny, train: bool) -> dict:
    grid = cfg.grid
    out = {}
    logits = clone_logits(p, br, x)
    out["ce"] = F.cross_entropy(logits, p.n_old + y)
    if p.k > 1:
        T = cfg.temperature
        out["kd"] = F.kl_div(F.log_softmax(logits[:, p.n_old:] / T, 1), F.softmax(g / T, 1), reduction="batchmean") * T * T
    if cfg.localize and br.scores:
        out["loc"] = F.mse_loss(loc_logits(p, br, x), g) / g.pow(2).mean().clamp(min=1e-6)
        if train and br.binary is None:
            out["sparsity"] = torch.cat([torch.sigmoid(v) for v in br.scores.values()]).mean()
    if len(nx):
        out["neg"] = F.cross_entropy(clone_logits(p, br, nx), ny)
    return out


WEIGHTS = {"ce": "ce_weight", "kd": "kd_weight", "loc": "loc_weight", "neg": "neg_weight", "sparsity": "sparsity"}


def total(parts: dict, cfg: BuildConfig) -> torch.Tensor:
    return sum(getattr(cfg, WEIGHTS[k]) * v for k, v in parts.items())


def _batch(p: Problem, cfg: BuildConfig, gen: torch.Generator, held_out: bool = False, idx=None):
    x, y, b, g = (p.x_ho, p.y_ho, p.b_ho, p.g_ho) if held_out else (p.x_tr, p.y_tr, p.b_tr, p.g_tr)
    n, per = b.shape[:2]
    a = torch.randint(0, n, (cfg.batch_size,), generator=gen) if idx is None else idx
    m = torch.randint(0, per, (len(a),), generator=gen)
    return perturb(x[a], b[a, m], cfg.grid), y[a], g[a, m]


def _neg_batch(p: Problem, cfg: BuildConfig, gen: torch.Generator):
    if not len(p.neg_x):
        return p.neg_x, p.neg_y
    j = torch.randint(0, len(p.neg_x), (cfg.batch_size,), generator=gen)
    return p.neg_x[j], p.neg_y[j]


def train(p: Problem, br: Branch, cfg: BuildConfig, steps: int, gen: torch.Generator, progress=None, task=None):
    groups = [{"params": br.parameters(), "lr": cfg.lr}]
    if br.scores and br.binary is None:
        groups.append({"params": list(br.scores.values()), "lr": cfg.mask_lr})
    opt = torch.optim.Adam(groups)
    br.adapter.train()
    for _ in range(steps):
        x, y, g = _batch(p, cfg, gen)
        nx, ny = _neg_batch(p, cfg, gen)
        loss = total(losses(p, br, cfg, x, y, g, nx, ny, train=True), cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress.advance(task)
    br.adapter.eval()


@torch.no_grad()
def held_out_loss(p: Problem, br: Branch, cfg: BuildConfig, seed: int) -> dict:
    """The converged loss on held-out anchors (fixed perturbations, all held-out negatives): what picks R*."""
    gen = torch.Generator().manual_seed(seed)
    n = len(p.x_ho)
    reps = max(1, math.ceil(4 * cfg.batch_size / max(n, 1)))
    idx = torch.arange(n).repeat(reps)
    x, y, g = _batch(p, cfg, gen, held_out=True, idx=idx)
    parts = losses(p, br, cfg, x, y, g, p.neg_x_ho, p.neg_y_ho, train=False)
    out = {k: round(float(v), 6) for k, v in parts.items()}
    out["total"] = round(float(total(parts, cfg)), 6)
    return out


def binarize(br: Branch) -> dict:
    """score > 0 (sigmoid > 0.5) keeps a filter; every mask point keeps at least its best filter."""
    out = {}
    for n, s in br.scores.items():
        keep = (s.detach() > 0).float()
        if keep.sum() == 0:
            keep[int(s.detach().argmax())] = 1.0
        out[n] = keep
    return out
