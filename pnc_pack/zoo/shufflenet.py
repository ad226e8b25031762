"""CIFAR-style ShuffleNetV2 (Ma et al. 2018), split into L=5 blocks: conv1, stage2, stage3, stage4, conv5.

CIFAR variant: conv1 is 3x3 with stride 1 and the max-pool of the ImageNet model is dropped (as for the CIFAR
ResNets), so 32x32 inputs reach conv5 at 4x4.

=====  ===========================================================  =========================
block  layers                                                       output (32x32, w=1.0)
=====  ===========================================================  =========================
0      conv1: conv 3x3 (in -> 24) -> BN -> ReLU                     24 x 32 x 32
1      stage2: 4 units (first with stride 2)                        116 x 16 x 16
2      stage3: 8 units                                              232 x 8 x 8
3      stage4: 4 units                                              464 x 4 x 4
4      conv5: conv 1x1 (-> 1024) -> BN -> ReLU                      1024 x 4 x 4
head   global average pool -> linear (1024 -> classes)
=====  ===========================================================  =========================

Stage widths are (116, 232, 464) times ``width_mult`` rounded to a multiple of 4 (the official 0.5x/1.0x/1.5x
values are 48/116/176 etc.; this rounding gives 56/116/176: close, not identical), conv5 has 1024 channels (2048
when ``width_mult >= 2``).

Mask points (all after a ReLU or at a unit's output): conv1 ``relu``; in every unit ``b2_relu1`` and ``b2_relu2``
(branch 2's first and last 1x1 conv units), ``b1_relu`` (branch 1's 1x1 unit, stride-2 units only), and ``out``
(an Identity after concatenation and channel shuffle: the unit's output, masking there equals pruning that
channel of the unit's output); conv5 ``relu``. The depthwise convs have no non-linearity and no mask point.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from pnc_pack.zoo.base import ZooModel, float_arg, mark
from pnc_pack.zoo.registry import register_arch


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.stride = stride
        b = c_out // 2
        if stride > 1:
            self.b1_dw = nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False)
            self.b1_dw_bn = nn.BatchNorm2d(c_in)
            self.b1_conv = nn.Conv2d(c_in, b, 1, bias=False)
            self.b1_bn = nn.BatchNorm2d(b)
            self.b1_relu = mark(nn.ReLU(), b)
        c2 = c_in if stride > 1 else b
        self.b2_conv1 = nn.Conv2d(c2, b, 1, bias=False)
        self.b2_bn1 = nn.BatchNorm2d(b)
        self.b2_relu1 = mark(nn.ReLU(), b)
        self.b2_dw = nn.Conv2d(b, b, 3, stride, 1, groups=b, bias=False)
        self.b2_dw_bn = nn.BatchNorm2d(b)
        self.b2_conv2 = nn.Conv2d(b, b, 1, bias=False)
        self.b2_bn2 = nn.BatchNorm2d(b)
        self.b2_relu2 = mark(nn.ReLU(), b)
        self.out = mark(nn.Identity(), c_out)

    def _branch2(self, x):
        h = self.b2_relu1(self.b2_bn1(self.b2_conv1(x)))
        h = self.b2_dw_bn(self.b2_dw(h))
        return self.b2_relu2(self.b2_bn2(self.b2_conv2(h)))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self._branch2(x2)), dim=1)
        else:
            b1 = self.b1_relu(self.b1_bn(self.b1_conv(self.b1_dw_bn(self.b1_dw(x)))))
            out = torch.cat((b1, self._branch2(x)), dim=1)
        return self.out(channel_shuffle(out, 2))


@register_arch("shufflenetv2")
class ShuffleNetV2(ZooModel):
    arch = "shufflenetv2"

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width_mult: float = 1.0):
        super().__init__()
        self.set_image_args(num_classes, in_channels, image_size)
        width_mult = self.arch_args["width_mult"] = float_arg("width_mult", width_mult, 0.05, 4.0)
        c1 = 24
        blocks = [nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, c1, 3, 1, 1, bias=False), bn=nn.BatchNorm2d(c1), relu=mark(nn.ReLU(), c1),
        ))]
        c_in = c1
        for base, repeats in ((116, 4), (232, 8), (464, 4)):
            c_out = max(4, int(round(base * width_mult / 4)) * 4)
            units = []
            for j in range(repeats):
                units.append(ShuffleUnit(c_in, c_out, 2 if j == 0 else 1))
                c_in = c_out
            blocks.append(nn.Sequential(*units))
        c5 = 2048 if width_mult >= 2.0 else 1024
        blocks.append(nn.Sequential(OrderedDict(
            conv=nn.Conv2d(c_in, c5, 1, bias=False), bn=nn.BatchNorm2d(c5), relu=mark(nn.ReLU(), c5),
        )))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c5, num_classes)
