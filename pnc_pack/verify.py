"""``pnc_pack.verify``: the short name of :mod:`pnc_pack.verification`, and callable.

``pnc_pack.verify(path)`` is the public function (lazily resolved in ``pnc_pack/__init__.py`` to
``pnc_pack.verification.verify``). But once anything runs ``import pnc_pack.verify`` / ``from pnc_pack.verify import
verify``, Python sets the attribute ``pnc_pack.verify`` to this *module*, shadowing the function. So that
``pnc_pack.verify(...)`` keeps working whatever was imported first, this module is callable and forwards to
:func:`pnc_pack.verification.verify`.
"""

from __future__ import annotations

import sys
import types

from pnc_pack.verification import Check, SignatureInfo, VerificationReport, verify  # noqa: F401


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> VerificationReport:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["verify", "VerificationReport", "Check", "SignatureInfo"]
