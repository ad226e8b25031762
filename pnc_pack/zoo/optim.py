"""The Adam of every pnc-pack training loop (zoo training, the builder, inversion negatives, repair): on the CPU
``torch.optim.Adam``'s update, operation for operation, without ``torch.optim``.

Every ``torch.optim`` optimiser imports ``torch._dynamo`` the first time one is made or stepped (its methods are
wrapped in ``torch._disable_dynamo``, which imports it lazily): seconds of a LeNet build on one CPU thread spent
importing a compiler the build never uses (docs/devices.md). On the CPU ``torch.optim.Adam`` (no foreach, no
fused kernel there) runs ``_single_tensor_adam``; :class:`Adam` runs the same tensor operations in the same order
with the same Python scalars (betas 0.9, 0.999, eps 1e-8, L2 weight decay as torch adds it, no amsgrad), so the
parameters after every step are the same floats, bit for bit (tests/test_builder_speed.py compares them over many
steps). It keeps its step count as a Python float where torch keeps a tensor it reads back with ``.item()`` every
step. On CUDA ``make_adam`` gives ``torch.optim.Adam(fused=True)``.
"""

from __future__ import annotations

import torch

BETAS, EPS = (0.9, 0.999), 1e-8


class Adam:
    """``Adam(groups, weight_decay)`` with groups ``[{"params": [...], "lr": float}, ...]``; ``zero_grad()``,
    ``step()``."""

    def __init__(self, groups, weight_decay: float = 0.0):
        self.param_groups = [{"params": list(g["params"]), "lr": g["lr"]} for g in groups]
        self.weight_decay = weight_decay
        self.state: dict = {}  # parameter -> [step, exp_avg, exp_avg_sq]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = BETAS
        for g in self.param_groups:
            lr = g["lr"]
            for p in g["params"]:
                if p.grad is None:  # torch.optim skips a parameter without a gradient, state and all
                    continue
                st = self.state.get(p)
                if st is None:
                    st = self.state[p] = [0.0, torch.zeros_like(p), torch.zeros_like(p)]
                st[0] += 1.0  # torch keeps it in a float32 tensor and reads it back with .item(): the same float
                step, exp_avg, exp_avg_sq = st
                grad = p.grad
                if self.weight_decay != 0:
                    grad = grad.add(p, alpha=self.weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2 ** 0.5
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
                p.addcdiv_(exp_avg, denom, value=-step_size)


def make_adam(groups, device: torch.device, weight_decay: float = 0.0):
    """Adam for parameters on ``device``: :class:`Adam` on the CPU, ``torch.optim.Adam(fused=True)`` on CUDA (any
    other device: ``torch.optim.Adam`` with its defaults). ``groups``: a list of ``{"params", "lr"}`` dicts."""
    if device.type == "cpu":
        return Adam(groups, weight_decay)
    return torch.optim.Adam(groups, weight_decay=weight_decay, **({"fused": True} if device.type == "cuda" else {}))
