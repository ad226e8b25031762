"""Six transformers image classifiers as zoo architectures: hf-resnet, hf-regnet, hf-convnext, hf-convnextv2,
hf-mobilenet-v2, hf-efficientnet (arguments: :mod:`pnc_pack.zoo.hf_config`; transformers imported on first build).

Each wraps one fixed transformers class (``hf_config.ALLOWED``), built from a config made of the checked arguments
only; its submodules keep their transformers names, so the state dict's keys are the checkpoint's. Images reach
it through ``prepare_images`` (the processor's resize and RGB, per batch); block 0 is the rest of the
preprocessing (centre crop, rescale, normalise: ``pp_*``) and the embedder/stem; the stages follow:

==================  =========================================================================  =====
family              blocks                                                                     L
==================  =========================================================================  =====
resnet, regnet      embedder, encoder.stages[0..3]                                             5
convnext(v2)        embeddings, encoder.stages[0..3]                                           5
mobilenet-v2        conv_stem, layer[0:2], layer[2:5], layer[5:12], layer[12:16] + conv_1x1    5
efficientnet        embeddings, stages (0,1), (2), (3,4), (5,6) + top conv/BN/activation       5
==================  =========================================================================  =====

``head_input`` is the model's own pooling (ConvNeXt: mean + final LayerNorm; EfficientNet: its AvgPool), ``head``
its final Linear, so ``head(head_input(forward_blocks(x)))`` is the model's logits bit for bit. Mask points (each
after a non-linearity whose output only a linear map or a depthwise-free path consumes, so masking = pruning):
ResNet/RegNet every conv unit's activation and each residual layer's output activation (channels dim 1);
ConvNeXt the MLP activation ``act``, ConvNeXtV2 the ``grn`` output (channels-last: dim -1); MobileNetV2 each
depthwise unit's activation and ``conv_1x1``; EfficientNet each depthwise activation and ``top_activation``.
"""

from __future__ import annotations

import importlib
import json
import math
from typing import Any

import torch
from torch import nn

from pnc_pack.errors import ArchitectureError
from pnc_pack.zoo.base import ZooModel, mark
from pnc_pack.zoo.hf_config import ALLOWED, ARCH_TO_TYPE, KEYS, LIST_KEYS
from pnc_pack.zoo.registry import register_arch

HF_EXTRA = "pip install 'pnc-pack[hf]'"


def transformers_class(name: str):
    """A class of the transformers package by its fixed name (a constant of ALLOWED, never from a file)."""
    try:
        module = importlib.import_module("transformers")
    except ImportError:
        raise ArchitectureError(f"this model needs the transformers package: {HF_EXTRA}") from None
    return getattr(module, name)


class Preprocess(nn.Module):
    """Centre crop, then pixel = x * scale + offset, then (pixel - mean) / std, for images x in [0, 1]."""

    def __init__(self, crop: int, scale: float, offset: float, mean: list[float], std: list[float]):
        super().__init__()
        self.crop, self.scale, self.offset = crop, scale, offset
        self.mean, self.std = tuple(mean), tuple(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop:
            h, w = x.shape[-2:]
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
            x = x[..., top:top + self.crop, left:left + self.crop]
        x = x * self.scale
        if self.offset:
            x = x + self.offset
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


class _Chain(nn.Module):
    """Modules applied in order; kept out of the parent's registry (their owners hold them under their own names)."""

    def __init__(self, *mods):
        super().__init__()
        object.__setattr__(self, "_mods", mods)

    def forward(self, x):
        for m in self._mods:
            x = m(x)
        return x


class HFModel(ZooModel):
    """A transformers image classifier under the ZooModel contract (see the module docstring)."""

    family = ""

    def __init__(self, num_labels: int = 10, **kwargs: Any):
        super().__init__()
        mt = ARCH_TO_TYPE[self.arch]
        pp_keys = ("pp_resize", "pp_crop", "pp_scale", "pp_offset", "pp_mean", "pp_std", "pp_resample")
        unknown = set(kwargs) - set(KEYS[mt]) - set(pp_keys)
        if unknown:
            raise ArchitectureError(f"{self.arch}: unknown argument(s) {sorted(unknown)}")
        if any(k not in kwargs for k in pp_keys):
            raise ArchitectureError(f"{self.arch}: the preprocessing arguments {', '.join(pp_keys)} are required")
        self.arch_args = {"num_labels": num_labels, **kwargs}
        cfg_args = {k: (json.loads(v) if k in LIST_KEYS else v) for k, v in kwargs.items() if k in KEYS[mt]}
        _, config_name, model_name = ALLOWED[mt]
        config = transformers_class(config_name)(num_labels=num_labels, **cfg_args)
        hf = transformers_class(model_name)(config)
        for name, child in hf.named_children():
            setattr(self, name, child)
        self.hf_config = config
        object.__setattr__(self, "_hf", hf)  # the same modules, for forward_hf; not registered twice
        resize, crop = int(kwargs["pp_resize"]), int(kwargs["pp_crop"])
        self.preprocess = Preprocess(crop, float(kwargs["pp_scale"]), float(kwargs["pp_offset"]),
                                     json.loads(kwargs["pp_mean"]), json.loads(kwargs["pp_std"]))
        self.input_shape = (3, resize, resize)
        stem, stages, self._pool, head = self.split()
        self.blocks = [_Chain(self.preprocess, stem)] + [s if isinstance(s, nn.Module) else _Chain(*s) for s in stages]
        self.head = head
        self._prefix = {id(m): n for n, m in self.named_modules()}
        self.mark_points()

    # the blocks and head are views of modules registered under their transformers names
    def __setattr__(self, name, value):
        if name in ("blocks", "head"):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def num_classes(self) -> int:
        return int(self.arch_args["num_labels"])

    def head_input(self, h: torch.Tensor) -> torch.Tensor:
        return self._pool(h)

    def mask_points(self, a: int = 0, b: int | None = None) -> list[tuple[str, int]]:
        a, b = self._span(a, b)
        out = []
        for i in range(a, b):
            for m in _modules(self.blocks[i]):
                n = getattr(m, "pnc_filters", None)
                if n is not None:
                    out.append((self._prefix[id(m)], n))
        return out

    has_processor = True

    def prepare_images(self, X: torch.Tensor) -> torch.Tensor:
        """Dataset images of any size (uint8 or float in [0, 1], grayscale or RGB) as this model's image processor
        hands them over before its crop and normalisation (which block 0 runs): RGB, resized by Pillow with the
        processor's filter (:func:`pnc_pack.zoo.images.processor_resize`)."""
        from pnc_pack.zoo.images import processor_resize

        return processor_resize(X, int(self.arch_args["pp_resize"]), int(self.arch_args["pp_resample"]))

    def forward_hf(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The wrapped transformers model's own forward (its logits) on already preprocessed pixels."""
        self._hf.train(self.training)
        return self._hf(pixel_values=pixel_values).logits


def _modules(block: nn.Module):
    """Every module a block runs, including those of a _Chain (in forward order)."""
    if isinstance(block, _Chain):
        for m in block._mods:
            yield from _modules(m)
    else:
        yield from block.modules()


def _mark_relu(module: nn.Module, n: int, dim: int = 1) -> None:
    if not isinstance(module, nn.Identity):
        mark(module, n, dim)


@register_arch("hf-resnet")
class HFResNet(HFModel):
    arch = "hf-resnet"

    def split(self):
        r = self.resnet
        return r.embedder, list(r.encoder.stages), (lambda h: r.pooler(h).flatten(1)), self.classifier[1]

    def mark_points(self):
        e = self.resnet.embedder.embedder
        _mark_relu(e.activation, e.convolution.out_channels)
        for stage in self.resnet.encoder.stages:
            for layer in stage.layers:
                for unit in layer.layer:
                    _mark_relu(unit.activation, unit.convolution.out_channels)
                _mark_relu(layer.activation, layer.layer[-1].convolution.out_channels)


@register_arch("hf-regnet")
class HFRegNet(HFModel):
    arch = "hf-regnet"

    def split(self):
        r = self.regnet
        return r.embedder, list(r.encoder.stages), (lambda h: r.pooler(h).flatten(1)), self.classifier[1]

    def mark_points(self):
        e = self.regnet.embedder.embedder
        _mark_relu(e.activation, e.convolution.out_channels)
        for stage in self.regnet.encoder.stages:
            for layer in stage.layers:
                convs = [u for u in layer.layer if hasattr(u, "convolution")]
                for unit in convs:
                    _mark_relu(unit.activation, unit.convolution.out_channels)
                _mark_relu(layer.activation, convs[-1].convolution.out_channels)


@register_arch("hf-convnext")
class HFConvNext(HFModel):
    arch = "hf-convnext"

    def split(self):
        c = self.convnext
        return c.embeddings, list(c.encoder.stages), (lambda h: c.layernorm(h.mean([-2, -1]))), self.classifier

    def mark_points(self):
        for stage in self.convnext.encoder.stages:
            for layer in stage.layers:
                mark(layer.act, layer.pwconv1.out_features, -1)


@register_arch("hf-convnextv2")
class HFConvNextV2(HFModel):
    arch = "hf-convnextv2"

    def split(self):
        c = self.convnextv2
        return c.embeddings, list(c.encoder.stages), (lambda h: c.layernorm(h.mean([-2, -1]))), self.classifier

    def mark_points(self):
        for stage in self.convnextv2.encoder.stages:
            for layer in stage.layers:
                mark(layer.grn, layer.pwconv1.out_features, -1)


@register_arch("hf-mobilenet-v2")
class HFMobileNetV2(HFModel):
    arch = "hf-mobilenet-v2"

    def split(self):
        m = self.mobilenet_v2
        layers = list(m.layer)
        stages = [layers[0:2], layers[2:5], layers[5:12], layers[12:16] + [m.conv_1x1]]
        return m.conv_stem, stages, (lambda h: m.pooler(h).flatten(1)), self.classifier

    def mark_points(self):
        m = self.mobilenet_v2
        for unit in [m.conv_stem.conv_3x3, *(layer.conv_3x3 for layer in m.layer), m.conv_1x1]:
            if unit.activation is not None:
                _mark_relu(unit.activation, unit.convolution.out_channels)


@register_arch("hf-efficientnet")
class HFEfficientNet(HFModel):
    arch = "hf-efficientnet"

    def split(self):
        e = self.efficientnet
        cfg = self.hf_config
        stage_of = []
        for i, r in enumerate(cfg.num_block_repeats):
            stage_of += [i] * int(math.ceil(cfg.depth_coefficient * r))
        blocks = list(e.encoder.blocks)
        groups = [(0, 1), (2,), (3, 4), (5, 6)]
        stages = [[b for b, s in zip(blocks, stage_of) if s in g] for g in groups]
        if any(not s for s in stages) or len(cfg.num_block_repeats) != 7:
            raise ArchitectureError(f"{self.arch}: expects 7 stages of at least one block each")
        enc = e.encoder
        stages[-1] += [enc.top_conv, enc.top_bn, enc.top_activation]
        return e.embeddings, stages, (lambda h: e.pooler(h).reshape(h.shape[:2])), self.classifier

    def mark_points(self):
        for block in self.efficientnet.encoder.blocks:
            mark(block.depthwise_conv.depthwise_act, block.depthwise_conv.depthwise_conv.out_channels)
        enc = self.efficientnet.encoder
        mark(enc.top_activation, enc.top_conv.out_channels)
