"""ZooModel: the contract every architecture of the zoo (built-in or from an entry point) fulfils.

A ZooModel is split into ``num_blocks`` (L) blocks and a ``head`` (the final classifier), as PNC needs
(PAPER.md §3 item 19: LeNet-5 L=3, plain CNN L=3, ResNet-18/50, MobileNetV2 and ShuffleNetV2 L=5)::

    h_0 = x                                   # the image, shape (N, *input_shape)
    h_b = forward_blocks(h_a, a, b)           # blocks[a:b] applied in order to the input of block a
    features(x) = head_input(h_L)             # the input of the head: for conv nets global-average-pooled and
                                              # flattened, i.e. adaptive_avg_pool2d(h_L, 1).flatten(1);
                                              # for LeNet-5 the last block already ends in a vector (identity)
    forward(x) = head(features(x))            # logits, one per class in the config's output order

``forward_blocks(x, 0, L)`` is therefore *pre-pooling* for the conv nets (a (N, C, H, W) feature map) and
``head_input`` is the only thing between it and the head. ``block_shapes()`` gives the output shape of every block
(without the batch dimension) for the model's ``input_shape``.

Mask points: ``mask_points(a, b)`` lists ``(module_name, n_filters)`` for blocks [a:b], names relative to the model
(``"blocks.1.relu"``). Each named module is used exactly once per forward pass and its output has the filters on
dim 1; multiplying that output by a 0/1 vector of length ``n_filters`` (a forward hook) is exactly pruning those
filters: the points are after the non-linearity (or after the last BN / residual sum where a unit has no
non-linearity), so a zeroed channel stays zero and contributes nothing downstream. Each architecture module
documents its points. Mask points are marked at construction with :func:`mark`.

Non-linearities are never ``inplace`` (a forward hook on an in-place module would see aliased tensors).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pnc_pack.errors import ArchitectureError

MASK_ATTR = "pnc_filters"
MASK_DIM_ATTR = "pnc_mask_dim"  # the dimension of the output that holds the filters (1 unless declared)


def mark(module: nn.Module, n_filters: int, dim: int = 1) -> nn.Module:
    """Mark ``module`` as a mask point whose output has ``n_filters`` filters on dimension ``dim`` (1: channels
    first; -1: channels last, as inside ConvNeXt's blocks)."""
    setattr(module, MASK_ATTR, int(n_filters))
    if dim != 1:
        setattr(module, MASK_DIM_ATTR, int(dim))
    return module


def mask_dim(module: nn.Module) -> int:
    """The dimension a mask point's filters are on (see :func:`mark`)."""
    return int(getattr(module, MASK_DIM_ATTR, 1))


def int_arg(name: str, value: Any, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ArchitectureError(f"argument {name}={value!r}: expected an integer in [{lo}, {hi}]")
    return value


def float_arg(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise ArchitectureError(f"argument {name}={value!r}: expected a number in [{lo}, {hi}]")
    return float(value)


class ZooModel(nn.Module):
    """Base class: subclasses set ``blocks`` (nn.ModuleList), ``head``, ``input_shape`` and ``arch_args`` (the last
    two through :meth:`set_image_args`).

    ``arch`` is the registered name (set by the registry's ``build_model``; subclasses give a default).
    ``arch_args`` holds *every* constructor argument (defaults filled in), so a config or a ModelRef that records
    it rebuilds the same model whatever the defaults become later.
    """

    arch: str = ""

    def __init__(self):
        super().__init__()
        self.arch_args: dict[str, Any] = {}
        self.input_shape: tuple[int, int, int] = (0, 0, 0)
        self._block_shapes: list[tuple[int, ...]] | None = None

    def set_image_args(self, num_classes: Any, in_channels: Any, image_size: Any, *, min_image_size: int = 8) -> None:
        """Check the arguments every zoo image classifier takes (an ArchitectureError names a bad one), record them
        as ``arch_args`` and set ``input_shape`` (square images). An architecture adds its own arguments after,
        checked with :func:`int_arg` / :func:`float_arg`: ``self.arch_args["width"] = int_arg("width", width, ...)``."""
        int_arg("num_classes", num_classes, 1, 100_000)
        int_arg("in_channels", in_channels, 1, 64)
        int_arg("image_size", image_size, min_image_size, 1024)
        self.arch_args = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
        self.input_shape = (in_channels, image_size, image_size)

    def prepare_images(self, X: torch.Tensor) -> torch.Tensor:
        """Dataset images (float32 in [0, 1] or uint8; any size, 1 or 3 channels) as this model takes them:
        :func:`pnc_pack.data.fit_to_shape` to ``input_shape``. A model with its own image processor (hf-*) resizes
        as that processor does (``has_processor``: data of any size is then the model's to fit, never refused)."""
        from pnc_pack.data import fit_to_shape

        return fit_to_shape(X, self.input_shape)

    has_processor = False

    # -- the block split ------------------------------------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def _span(self, a: int, b: int | None) -> tuple[int, int]:
        L = self.num_blocks
        b = L if b is None else b
        if not (isinstance(a, int) and isinstance(b, int) and 0 <= a <= b <= L):
            raise ArchitectureError(f"{self.arch}: bad block span [{a}:{b}] (L={L})")
        return a, b

    def forward_blocks(self, x: torch.Tensor, a: int = 0, b: int | None = None) -> torch.Tensor:
        """Run blocks [a:b] on ``x``, the input of block ``a`` (the image when a=0)."""
        a, b = self._span(a, b)
        for i in range(a, b):
            x = self.blocks[i](x)
        return x

    def head_input(self, h: torch.Tensor) -> torch.Tensor:
        """From the output of the last block to the input of the head (global average pool + flatten)."""
        if h.dim() == 4:
            return F.adaptive_avg_pool2d(h, 1).flatten(1)
        if h.dim() > 2:
            return h.flatten(1)
        return h

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_input(self.forward_blocks(x, 0, self.num_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @property
    def num_classes(self) -> int:
        return int(self.arch_args.get("num_classes", 0))

    @property
    def feature_dim(self) -> int:
        """Size of ``features(x)`` per sample (the head's input)."""
        return int(self.head.in_features)

    # -- mask points -----------------------------------------------------------------------------------------------
    def mask_points(self, a: int = 0, b: int | None = None) -> list[tuple[str, int]]:
        """``[(module name, n_filters)]`` of the mask points in blocks [a:b], in forward order."""
        a, b = self._span(a, b)
        out = []
        for i in range(a, b):
            for name, module in self.blocks[i].named_modules():
                n = getattr(module, MASK_ATTR, None)
                if n is not None:
                    out.append((f"blocks.{i}.{name}" if name else f"blocks.{i}", n))
        return out

    # -- shapes ----------------------------------------------------------------------------------------------------
    def block_shapes(self) -> list[tuple[int, ...]]:
        """Output shape (without batch) of each block for an input of ``input_shape``."""
        if self._block_shapes is None:
            was_training = self.training
            self.eval()
            p = next(self.parameters())
            with torch.no_grad():
                h = torch.zeros((1, *self.input_shape), dtype=p.dtype, device=p.device)
                shapes = []
                for i in range(self.num_blocks):
                    h = self.blocks[i](h)
                    shapes.append(tuple(h.shape[1:]))
            self.train(was_training)
            self._block_shapes = shapes
        return list(self._block_shapes)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, L={self.num_blocks}, input_shape={self.input_shape}"
