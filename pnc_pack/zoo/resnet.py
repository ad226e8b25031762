"""CIFAR-style ResNet-18 and ResNet-50 (He et al. 2016; 3x3 stem, no max-pool), split into L=5 blocks.

=====  =============================================  ===============================================
block  layers                                         output (for image_size 32, width w)
=====  =============================================  ===============================================
0      stem: conv 3x3 (in -> w) -> BN -> ReLU          w x 32 x 32
1      layer1 (stride 1)                              w*e x 32 x 32     (e = 1 for ResNet-18, 4 for -50)
2      layer2 (stride 2)                              2w*e x 16 x 16
3      layer3 (stride 2)                              4w*e x 8 x 8
4      layer4 (stride 2)                              8w*e x 4 x 4
head   global average pool -> fc (8w*e -> classes)    ``features(x) = pool(forward_blocks(x, 0, 5))``
=====  =============================================  ===============================================

Mask points (every one after a ReLU, so masking a filter zeroes that channel exactly as pruning it would):

- stem: ``blocks.0.relu`` (w);
- each BasicBlock (ResNet-18): ``relu1`` (the inner conv-BN-ReLU unit: equals pruning conv1's filter) and
  ``relu2`` (the block output, after the residual sum: equals pruning that output channel of the block, i.e.
  conv2's filter *and* the shortcut's channel);
- each Bottleneck (ResNet-50): ``relu1``, ``relu2`` (inner units) and ``relu3`` (block output).

Names look like ``blocks.2.0.relu1`` (block 2 = layer2, residual block 0). ``width`` (default 64, the standard
ResNet) scales every stage; tests use 4-8.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from pnc_pack.zoo.base import ZooModel, int_arg, mark
from pnc_pack.zoo.registry import register_arch


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = mark(nn.ReLU(), planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(c_in, planes, stride)
        self.relu2 = mark(nn.ReLU(), planes)

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = mark(nn.ReLU(), planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = mark(nn.ReLU(), planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut = _shortcut(c_in, c_out, stride)
        self.relu3 = mark(nn.ReLU(), c_out)

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu3(out + self.shortcut(x))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class _ResNet(ZooModel):
    block_cls: type = BasicBlock
    layers: tuple[int, ...] = (2, 2, 2, 2)

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: int = 64):
        super().__init__()
        self.set_image_args(num_classes, in_channels, image_size)
        self.arch_args["width"] = int_arg("width", width, 1, 1024)
        stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), bn=nn.BatchNorm2d(width),
            relu=mark(nn.ReLU(), width),
        ))
        blocks, c_in = [stem], width
        for i, n in enumerate(self.layers):
            planes = width * 2**i
            stage = []
            for j in range(n):
                stage.append(self.block_cls(c_in, planes, (1 if i == 0 else 2) if j == 0 else 1))
                c_in = planes * self.block_cls.expansion
            blocks.append(nn.Sequential(*stage))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


@register_arch("resnet18")
class ResNet18(_ResNet):
    arch = "resnet18"
    block_cls = BasicBlock
    layers = (2, 2, 2, 2)


@register_arch("resnet50")
class ResNet50(_ResNet):
    arch = "resnet50"
    block_cls = Bottleneck
    layers = (3, 4, 6, 3)
