"""pnc-pack: Partial Network Cloning and the clone-delta format.

``import pnc_pack`` is cheap and never imports torch; the torch-using parts load on first use.
"""

from __future__ import annotations

import importlib

from pnc_pack.errors import PncError  # noqa: F401
from pnc_pack.format.delta import CloneDelta, ClonedModule, LabelEntry, Mask, RawTensor  # noqa: F401
from pnc_pack.refs import FileDigest, ModelRef  # noqa: F401
from pnc_pack.version import __version__  # noqa: F401

# name -> module that defines it; imported on first access (keeps torch out of `import pnc_pack`).
_LAZY = {
    "save": "pnc_pack.format.codec",
    "loads": "pnc_pack.format.codec",
    "dumps": "pnc_pack.format.codec",
    "load": "pnc_pack.api.specs",  # open_delta: a path, bytes or hf:// spec
    "sign": "pnc_pack.format.signing",
    "keygen": "pnc_pack.format.signing",
    "verify": "pnc_pack.api.specs",
    "VerificationReport": "pnc_pack.verification",
    "BuildConfig": "pnc_pack.builder.config",
    "build_clone": "pnc_pack.api.build",
    "build_multi": "pnc_pack.api.build",
    "add_source": "pnc_pack.api.build",
    "select_source": "pnc_pack.api.build",
    "build_selected": "pnc_pack.api.build",
    "compose": "pnc_pack.format.compose",
    "remove": "pnc_pack.format.compose",
    "apply": "pnc_pack.api.model",
    "ClonedModel": "pnc_pack.api.model",
    "conditional_similarity": "pnc_pack.api.similarity",
    "load_cloned": "pnc_pack.clone.export",
    "export_onnx": "pnc_pack.clone.onnx_export",
    "push": "pnc_pack.hub",
    "pull": "pnc_pack.api.specs",
    "PulledDelta": "pnc_pack.hub",
    "publish_model": "pnc_pack.hub",
    "resolve_model": "pnc_pack.api.specs",
    "fetch_model": "pnc_pack.hub",
}
_ALIASES = {"load": "open_delta"}  # public name -> the function's own name in its module


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), _ALIASES.get(name, name))
    raise AttributeError(f"module 'pnc_pack' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
