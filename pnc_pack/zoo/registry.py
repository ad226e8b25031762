"""The architecture registry: the only way a file (a config, a clone delta) names code.

An architecture is a *factory* registered under a name matching ``refs.ARCH_RE`` (``^[a-z][a-z0-9_-]{0,63}$``):
``factory(**arch_args) -> ZooModel``. Names are looked up

1. among the built-ins (``lenet5``, ``plaincnn``, ``resnet18``, ``resnet50``, ``mobilenetv2``, ``shufflenetv2``, and
   the transformers classifiers ``hf-resnet``, ``hf-regnet``, ``hf-convnext``, ``hf-convnextv2``,
   ``hf-mobilenet-v2``, ``hf-efficientnet`` of :mod:`pnc_pack.zoo.hf`),
   whose modules are a fixed list inside this package, imported on first lookup;
2. only if not found there, among the entry points of installed packages in the group
   ``pnc_pack.architectures`` (``importlib.metadata``), matched by *exact* entry-point name.

A name is never turned into an import path: ``os:system`` or ``os.system`` fails the name pattern and raises
:class:`ArchitectureError` before anything is looked up, and an entry point is loaded only when an installed
package declared it under that exact name. The set of installed packages is what the user trusts, like any other
installed code.

This module is torch-free (``list_archs`` and name checks do not import torch; the first ``get_arch`` does, through
the built-in modules).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from typing import Any, Callable, Mapping

from pnc_pack.errors import ArchitectureError
from pnc_pack.refs import ARCH_RE

ENTRY_POINT_GROUP = "pnc_pack.architectures"

# Fixed list of this package's own architecture modules (constants, never read from a file).
_BUILTIN_MODULES = (
    "pnc_pack.zoo.lenet",
    "pnc_pack.zoo.plaincnn",
    "pnc_pack.zoo.resnet",
    "pnc_pack.zoo.mobilenet",
    "pnc_pack.zoo.shufflenet",
    "pnc_pack.zoo.hf",  # transformers image classifiers; transformers itself is imported on the first build
)

_REGISTRY: dict[str, Callable[..., Any]] = {}
_BUILTINS_LOADED = False
_LOCK = threading.RLock()

# arch_args values must be plain JSON scalars: they go into config.json and into clone-delta headers.
_ARG_TYPES = (bool, int, float, str)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not ARCH_RE.match(name):
        raise ArchitectureError(
            f"bad architecture name {name!r}: expected a registered name matching {ARCH_RE.pattern} "
            f"(known: {', '.join(list_archs())})"
        )
    return name


def register_arch(name: str, *, replace: bool = False):
    """Decorator: ``@register_arch("lenet5")`` on a factory (usually the ZooModel subclass itself)."""
    if not isinstance(name, str) or not ARCH_RE.match(name):
        raise ArchitectureError(f"cannot register architecture {name!r}: name must match {ARCH_RE.pattern}")

    def deco(factory):
        if not callable(factory):
            raise ArchitectureError(f"cannot register architecture {name!r}: factory is not callable")
        with _LOCK:
            if name in _REGISTRY and _REGISTRY[name] is not factory and not replace:
                raise ArchitectureError(f"architecture {name!r} is already registered")
            _REGISTRY[name] = factory
        return factory

    return deco


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    with _LOCK:
        if _BUILTINS_LOADED:
            return
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _BUILTINS_LOADED = True


def _entry_points() -> list:
    try:
        return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # a broken installed distribution must not break lookups of the built-ins
        return []


def _entry_point_names() -> list[str]:
    return sorted({ep.name for ep in _entry_points() if isinstance(ep.name, str) and ARCH_RE.match(ep.name)})


def list_archs(include_entry_points: bool = True) -> list[str]:
    """Names of the registered architectures (built-ins first loaded), plus declared entry-point names."""
    names = set(_REGISTRY) | set(_builtin_names())
    if include_entry_points:
        names |= set(_entry_point_names())
    return sorted(names)


def _builtin_names() -> tuple[str, ...]:
    # Kept in step with the modules above (a test checks it); avoids importing torch just to list names.
    return ("hf-convnext", "hf-convnextv2", "hf-efficientnet", "hf-mobilenet-v2", "hf-regnet", "hf-resnet",
            "lenet5", "mobilenetv2", "plaincnn", "resnet18", "resnet50", "shufflenetv2")


def get_arch(name: str) -> Callable[..., Any]:
    """The factory registered under ``name``; ArchitectureError listing the known names if there is none."""
    check_name(name)
    _load_builtins()
    factory = _REGISTRY.get(name)
    if factory is not None:
        return factory
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        raise ArchitectureError(f"architecture {name!r} is not registered (known: {', '.join(list_archs())})")
    if len({(ep.value) for ep in matches}) > 1:
        raise ArchitectureError(
            f"architecture {name!r} is declared by several installed packages "
            f"({', '.join(sorted(ep.value for ep in matches))}); uninstall all but one"
        )
    try:
        factory = matches[0].load()
    except Exception as exc:
        raise ArchitectureError(
            f"architecture {name!r}: entry point {matches[0].value!r} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise ArchitectureError(f"architecture {name!r}: entry point {matches[0].value!r} is not callable")
    with _LOCK:
        _REGISTRY.setdefault(name, factory)
    return _REGISTRY[name]


def check_arch_args(arch_args: Any, where: str = "arch_args") -> dict[str, Any]:
    """arch_args: a map of identifier-like string keys to JSON scalars (bool, int, float, str)."""
    if arch_args is None:
        return {}
    if not isinstance(arch_args, Mapping):
        raise ArchitectureError(f"{where}: expected a map of argument names to values, got {type(arch_args).__name__}")
    out = {}
    for k, v in arch_args.items():
        if not isinstance(k, str) or not k.isidentifier() or k.startswith("_") or len(k) > 64:
            raise ArchitectureError(f"{where}: bad argument name {k!r}")
        if not isinstance(v, _ARG_TYPES) or (isinstance(v, float) and v != v) or (isinstance(v, str) and len(v) > 256):
            raise ArchitectureError(f"{where}.{k}: value {v!r} is not a plain bool, int, float or short string")
        out[k] = v
    return out


def build_model(arch: str, arch_args: Mapping[str, Any] | None = None):
    """Build ``arch`` with ``arch_args``: a ZooModel (in train mode, freshly initialised by the global torch RNG)."""
    from pnc_pack.zoo.base import ZooModel

    factory = get_arch(arch)
    args = check_arch_args(arch_args)
    try:
        model = factory(**args)
    except ArchitectureError:
        raise
    except (TypeError, ValueError) as exc:
        raise ArchitectureError(f"architecture {arch!r}: bad arguments {args}: {exc}") from exc
    if not isinstance(model, ZooModel):
        raise ArchitectureError(f"architecture {arch!r}: factory returned {type(model).__name__}, not a ZooModel")
    model.arch = arch
    return model
