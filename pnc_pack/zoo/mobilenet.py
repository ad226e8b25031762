"""CIFAR-style MobileNetV2 (Sandler et al. 2018), split into L=5 blocks: stem + 4 groups of inverted-residual stages.

CIFAR variant (as in the common CIFAR re-implementations): the stem conv has stride 1 and the second stage
(24 channels) stride 1, so 32x32 inputs reach the head at 4x4. Stages ``(t, c, n, s)`` and grouping:

=====  ====================================================================  =====================
block  layers                                                                output (32x32, w=1)
=====  ====================================================================  =====================
0      stem: conv 3x3 (in -> 32) -> BN -> ReLU6                              32 x 32 x 32
1      (1, 16, 1, 1), (6, 24, 2, 1)                                          24 x 32 x 32
2      (6, 32, 3, 2)                                                         32 x 16 x 16
3      (6, 64, 4, 2), (6, 96, 3, 1)                                          96 x 8 x 8
4      (6, 160, 3, 2), (6, 320, 1, 1), conv 1x1 (-> 1280) -> BN -> ReLU6     1280 x 4 x 4
head   global average pool -> linear (1280 -> classes)
=====  ====================================================================  =====================

``width_mult`` scales every channel count (rounded to a multiple of 8, at least 8); the last conv keeps
1280 channels unless ``width_mult > 1`` (as in the original).

Mask points: the stem's ``relu``; in every inverted residual the ReLU6 after the expansion (``expand_relu``, absent
when t=1) and after the depthwise conv (``dw_relu``) - each equals pruning that conv's filter - and ``out`` (an
Identity after the projection BN and the residual sum; the projection is linear, so the block output is the first
point after its last BN: masking there equals pruning that output channel); the last conv's ``relu``.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from pnc_pack.zoo.base import ZooModel, float_arg, mark
from pnc_pack.zoo.registry import register_arch

_GROUPS = (
    ((1, 16, 1, 1), (6, 24, 2, 1)),
    ((6, 32, 3, 2),),
    ((6, 64, 4, 2), (6, 96, 3, 1)),
    ((6, 160, 3, 2), (6, 320, 1, 1)),
)


def _div8(v: float) -> int:
    return max(8, int(v + 4) // 8 * 8)


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, t: int):
        super().__init__()
        hidden = c_in * t
        self.use_res = stride == 1 and c_in == c_out
        if t != 1:
            self.expand = nn.Conv2d(c_in, hidden, 1, bias=False)
            self.expand_bn = nn.BatchNorm2d(hidden)
            self.expand_relu = mark(nn.ReLU6(), hidden)
        else:
            self.expand = None
        self.dw = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)
        self.dw_bn = nn.BatchNorm2d(hidden)
        self.dw_relu = mark(nn.ReLU6(), hidden)
        self.project = nn.Conv2d(hidden, c_out, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(c_out)
        self.out = mark(nn.Identity(), c_out)

    def forward(self, x):
        h = x
        if self.expand is not None:
            h = self.expand_relu(self.expand_bn(self.expand(h)))
        h = self.dw_relu(self.dw_bn(self.dw(h)))
        h = self.project_bn(self.project(h))
        return self.out(x + h if self.use_res else h)


@register_arch("mobilenetv2")
class MobileNetV2(ZooModel):
    arch = "mobilenetv2"

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width_mult: float = 1.0):
        super().__init__()
        self.set_image_args(num_classes, in_channels, image_size)
        width_mult = self.arch_args["width_mult"] = float_arg("width_mult", width_mult, 0.05, 4.0)
        c_stem = _div8(32 * width_mult)
        blocks = [nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, c_stem, 3, 1, 1, bias=False), bn=nn.BatchNorm2d(c_stem),
            relu=mark(nn.ReLU6(), c_stem),
        ))]
        c_in = c_stem
        for g, group in enumerate(_GROUPS):
            layers = []
            for t, c, n, s in group:
                c_out = _div8(c * width_mult)
                for j in range(n):
                    layers.append(InvertedResidual(c_in, c_out, s if j == 0 else 1, t))
                    c_in = c_out
            if g == len(_GROUPS) - 1:
                c_last = _div8(1280 * width_mult) if width_mult > 1.0 else 1280
                layers.append(nn.Sequential(OrderedDict(
                    conv=nn.Conv2d(c_in, c_last, 1, bias=False), bn=nn.BatchNorm2d(c_last),
                    relu=mark(nn.ReLU6(), c_last),
                )))
                c_in = c_last
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
