"""The PNC builder: local model set, filter masks, insertion search, adapter and classifier (PAPER.md §2).

``build_clone(target, source, dataset, clone_classes, seed=0, eval_data=None, config=BuildConfig(...))`` returns
a CloneDelta. Settings and every [INFERRED] choice with its reason: :mod:`pnc_pack.builder.config`.
"""

from pnc_pack.builder.api import build_clone  # noqa: F401
from pnc_pack.builder.config import BuildConfig  # noqa: F401
