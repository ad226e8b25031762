"""The model zoo: architectures by registered name, their block splits, and pretrained-model folders.

Importing this package is cheap and torch-free; names are loaded on first use:

- registry (torch-free until a model is built): ``register_arch(name)``, ``get_arch(name)``,
  ``build_model(arch, arch_args)``, ``list_archs()``;
- ``ZooModel`` (pnc_pack.zoo.base): the contract of every architecture (blocks, head, mask points);
- config (torch-free): ``ModelConfig``, ``read_config(folder)``;
- pretrained: ``save_pretrained(model, config, folder)``, ``load_pretrained(folder, ref=None)``,
  ``local_ref(folder)``;
- training: ``train_model(...)``, ``evaluate(...)``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "register_arch": "pnc_pack.zoo.registry",
    "get_arch": "pnc_pack.zoo.registry",
    "build_model": "pnc_pack.zoo.registry",
    "list_archs": "pnc_pack.zoo.registry",
    "ENTRY_POINT_GROUP": "pnc_pack.zoo.registry",
    "ZooModel": "pnc_pack.zoo.base",
    "mark": "pnc_pack.zoo.base",
    "ModelConfig": "pnc_pack.zoo.config",
    "read_config": "pnc_pack.zoo.config",
    "save_pretrained": "pnc_pack.zoo.pretrained",
    "load_pretrained": "pnc_pack.zoo.pretrained",
    "local_ref": "pnc_pack.zoo.pretrained",
    "train_model": "pnc_pack.zoo.training",
    "evaluate": "pnc_pack.zoo.training",
    "TrainSettings": "pnc_pack.zoo.training",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pnc_pack.zoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
