"""The three PNC rows of the paper's table, through the builder (``pnc_pack.build``): full, w/o Local, w/o Insert.

Private to :mod:`tools.bench.paper` (the leading underscore keeps it off ``python -m tools.bench``'s list).
While the builder is missing, every PNC row is reported as not run, with the reason.
"""

from __future__ import annotations

import time

DEFINITIONS = {
    "pnc": "PNC (full): the builder's default configuration: local model set, learned filter masks with L_loc, "
           "insertion-position search over R = L-1..0 (lowest held-out loss wins), adapter and new classifier.",
    "pnc_no_local": "PNC (w/o Local): the builder without localisation: no mask (M = 1, the whole source tail "
                    "[R:L] is cloned) and no L_loc; position search, adapter and classifier unchanged.",
    "pnc_no_insert": "PNC (w/o Insert): the builder without the learned insertion: no position search, the module "
                     "is attached at the fixed position R = 0 (the whole masked source in parallel).",
}


def definitions() -> dict:
    return dict(DEFINITIONS)


def builder_available() -> str | None:
    """None when ``pnc_pack.build`` exposes a build function, else the reason it cannot be used."""
    try:
        import pnc_pack.build as build
    except Exception as exc:  # noqa: BLE001 - reported as the reason the rows were not run
        return f"pnc_pack.build failed to import: {exc}"
    if not hasattr(build, "build_clone"):
        return "pnc_pack.build exposes no build_clone yet"
    return None


def run(task, target_dir, source_dir, dataset, fraction, ori_set, tar_set, *, variants, epochs=None, workdir=None,
        log=print) -> tuple[dict, dict]:
    """({variant: score dict}, {variant: {R: loss}}) for the PNC variants asked for."""
    why = builder_available()
    rows, r_search = {}, {}
    if why is not None:
        for v in variants:
            rows[v] = {"ori": None, "tar": None, "avg": None, "bytes": None, "bytes_note": "", "train_s": None,
                       "note": f"not run: {why}"}
            log(f"  {v:<14} not run: {why}")
        return rows, r_search
    raise NotImplementedError  # filled in against the builder's real API
