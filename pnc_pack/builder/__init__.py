"""The PNC builder: local model set, filter masks, insertion search, adapter and classifier (PAPER.md §2).

``build_clone(source, target, dataset, clone_classes, seed=0, eval_data=None, config=BuildConfig(...))`` returns
a CloneDelta. Settings and every [INFERRED] choice with its reason: :mod:`pnc_pack.build.config`.
"""

from pnc_pack.build.api import build_clone  # noqa: F401
from pnc_pack.build.config import BuildConfig  # noqa: F401
