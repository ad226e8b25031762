"""A plain CNN (no skips), the PNC paper's small CIFAR target (SUPP Tab. 1), split into L=3 blocks.

Block i (i = 0, 1, 2): conv 3x3 (-> width * 2**i channels, padding 1, no bias) -> BN -> ReLU -> maxpool 2.
Head: global average pool -> linear (4*width -> num_classes). Mask points: ``blocks.i.relu`` (width * 2**i).
Masks sit after the ReLU (before the pooling), so masking a filter equals pruning it.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from pnc_pack.zoo.base import ZooModel, int_arg, mark
from pnc_pack.zoo.registry import register_arch


@register_arch("plaincnn")
class PlainCNN(ZooModel):
    arch = "plaincnn"

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: int = 32):
        super().__init__()
        self.set_image_args(num_classes, in_channels, image_size)
        self.arch_args["width"] = int_arg("width", width, 1, 1024)
        blocks, c_in = [], in_channels
        for i in range(3):
            c = width * 2**i
            blocks.append(nn.Sequential(OrderedDict(
                conv=nn.Conv2d(c_in, c, 3, padding=1, bias=False), bn=nn.BatchNorm2d(c),
                relu=mark(nn.ReLU(), c), pool=nn.MaxPool2d(2),
            )))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in, num_classes)
