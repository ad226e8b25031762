"""pnc-pack: Partial Network Cloning and the clone-delta format.

``import pnc_pack`` is cheap and never imports torch; the torch-using parts load on first use.
"""

from __future__ import annotations

import importlib

from pnc_pack.errors import PncError  # noqa: F401
from pnc_pack.format.delta import CloneDelta, ClonedModule, LabelEntry, Mask, RawTensor  # noqa: F401
from pnc_pack.refs import FileDigest, ModelRef  # noqa: F401

__version__ = "0.1.0"

# name -> module that defines it; imported on first access (keeps torch out of `import pnc_pack`).
_LAZY = {
    "save": "pnc_pack.format.codec",
    "load": "pnc_pack.format.codec",
    "loads": "pnc_pack.format.codec",
    "dumps": "pnc_pack.format.codec",
    "sign": "pnc_pack.format.signing",
    "keygen": "pnc_pack.format.signing",
    "verify": "pnc_pack.verification",
    "VerificationReport": "pnc_pack.verification",
    "build_clone": "pnc_pack.build",
    "apply": "pnc_pack.clone.apply",
    "ClonedModel": "pnc_pack.clone.model",
    "load_cloned": "pnc_pack.clone.export",
    "push": "pnc_pack.hub",
    "pull": "pnc_pack.hub",
    "publish_model": "pnc_pack.hub",
    "resolve_model": "pnc_pack.hub",
    "fetch_model": "pnc_pack.hub",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pnc_pack' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
