"""LeNet-5 (LeCun et al. 1998), the PNC paper's MNIST network, split into L=3 blocks (PAPER.md §3 item 19).

=====  ==========================================================  ==============================
block  layers                                                      mask points (n filters)
=====  ==========================================================  ==============================
0      conv1 (in->6, 5x5, padding 2) -> relu -> maxpool 2          ``blocks.0.relu`` (6)
1      conv2 (6->16, 5x5) -> relu -> maxpool 2                     ``blocks.1.relu`` (16)
2      flatten -> fc1 (16*s*s->120) -> relu1 -> fc2 (120->84) -> relu2
                                                                   ``blocks.2.relu1`` (120), ``blocks.2.relu2`` (84)
head   fc3 (84 -> num_classes)
=====  ==========================================================  ==============================

conv1 is padded by 2 so a 28x28 MNIST image goes through the same shapes as the classic 32x32 LeNet-5
(28 -> 14 -> 10 -> 5, 16*5*5 = 400 inputs to fc1). Masks sit after each ReLU (before max-pooling, which keeps a
zero channel zero), so masking a filter equals pruning it. The last block ends in a vector: ``head_input`` is the
identity and ``features(x) == forward_blocks(x, 0, 3)``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from pnc_pack.zoo.base import ZooModel, mark
from pnc_pack.zoo.registry import register_arch


class MaxPool2(nn.MaxPool2d):
    """``nn.MaxPool2d(2)``. Where no gradient can flow (inference, the builder's frozen passes) it is computed as the
    elementwise maximum of the four strided 2x2 views: the same values (a maximum is exact; NaN propagates as in
    max_pool2d), several times faster on one CPU thread. With a gradient, and when traced or compiled, it is
    max_pool2d itself, so backward routes ties as it always did (tests/test_builder_speed.py)."""

    def __init__(self):
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() != 4 or (x.requires_grad and torch.is_grad_enabled()) or torch.jit.is_tracing()
                or torch.jit.is_scripting() or torch.compiler.is_compiling()):
            return super().forward(x)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        x = x[..., :h, :w]
        return torch.maximum(torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
                             torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


@register_arch("lenet5")
class LeNet5(ZooModel):
    arch = "lenet5"

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        self.set_image_args(num_classes, in_channels, image_size, min_image_size=12)
        s = (image_size // 2 - 4) // 2
        self.blocks = nn.ModuleList([
            nn.Sequential(OrderedDict(
                conv=nn.Conv2d(in_channels, 6, 5, padding=2), relu=mark(nn.ReLU(), 6), pool=MaxPool2(),
            )),
            nn.Sequential(OrderedDict(conv=nn.Conv2d(6, 16, 5), relu=mark(nn.ReLU(), 16), pool=MaxPool2())),
            nn.Sequential(OrderedDict(
                flatten=nn.Flatten(), fc1=nn.Linear(16 * s * s, 120), relu1=mark(nn.ReLU(), 120),
                fc2=nn.Linear(120, 84), relu2=mark(nn.ReLU(), 84),
            )),
        ])
        self.head = nn.Linear(84, num_classes)
