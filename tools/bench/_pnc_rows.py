"""The PNC rows of the paper's table through the builder (``pnc_pack.builder``): full, w/o Local, w/o Insert, and
the additive rows (the paper's objective, + CE, + negatives, + calibration; BuildConfig.objective).

Ablations, as read from the paper (its method section is not available; PAPER.md §2, [INFERRED]): PNC is Local
(step I: the mask M learned by L_loc) then Insert (step II: position R, adapter A and F_c learned with L_ins, which
also trains M). "w/o Local" drops step I: no mask, the whole source tail is cloned, no L_loc. "w/o Insert" drops
step II's learning: no search (R = 0), no adapter (frozen at its identity start), M from L_loc alone; only F_c is
trained. Each differs from full PNC by construction, also when full PNC's search picks R = 0.

Private to :mod:`tools.bench.paper` (the leading underscore keeps it off ``python -m tools.bench``'s list).
"""

from __future__ import annotations

import time

DEFINITIONS = {
    "pnc": "PNC (full): pnc_pack.builder.build_clone with its default BuildConfig (pnc_pack/builder/config.py): LIME "
           "local model set G of the source on D_t, learned filter masks with L_loc (+ L1 sparsity), insertion "
           "search over R = L-1..0 with fresh adapter / classifier / mask per position and R* = lowest held-out "
           "loss, binarised masks and a short re-tune; the builder's additions to the paper's losses: "
           "cross-entropy on the perturbed D_t samples and data-free negatives (see its docs).",
    "pnc_no_local": "PNC (w/o Local): the same build with localize=False: no mask (M = 1, the whole source tail "
                    "[R_s:L_s] is cloned), no L_loc, no sparsity term; search, adapter, classifier and the other "
                    "losses unchanged.",
    "pnc_no_insert": "PNC (w/o Insert): the same build with insert=False: no insertion learning: no position "
                     "search (R = 0, the masked source in parallel to the target on the raw image), the adapter "
                     "frozen at its identity start, the mask learned by L_loc (+ sparsity) alone, only the "
                     "classifier F_c trained on the insertion losses; calibration unchanged.",
    "pnc_paper": "PNC, paper objective (objective=paper): L_loc + sparsity + the paper's two KD terms read as one KD "
                 "(T = temperature) of the clone's whole output against [M_t(b·x) | G(b)] on the masked D_t "
                 "samples (the literal two terms vanish: old logits are M_t's, and a softmax over one cloned "
                 "logit is constant); no CE, no negatives, no calibration.",
    "pnc_paper_ce": "PNC, paper objective + CE (objective=paper+ce): the row above plus the cross-entropy on the "
                    "perturbed D_t samples (ce_weight).",
    "pnc_paper_ce_neg": "PNC, paper objective + CE + negatives (objective=paper+ce+neg): plus the data-free "
                        "negatives (neg_weight, negatives=typical).",
    "pnc_paper_ce_neg_cal": "PNC, paper objective + CE + negatives + calibration (objective=paper+ce+neg+cal): plus "
                            "the routing calibration (route_recall / route_recall_multi). Differs from PNC (full) "
                            "only in the KD term (full: KD over the cloned classes' logits alone, k > 1).",
}


def definitions() -> dict:
    return dict(DEFINITIONS)


def config_dict(fraction, steps=None, settings=None) -> dict:
    """The builder's configuration of the full PNC row."""
    from pnc_pack.builder import BuildConfig

    return BuildConfig(data_fraction=fraction, **_overrides({}, steps, settings)).to_dict()


def _overrides(base: dict, steps, settings) -> dict:
    out = {**dict(settings or {}), **base}
    if steps is not None:
        out["steps"] = int(steps)
    return out


VARIANTS = {"pnc": {}, "pnc_no_local": {"localize": False}, "pnc_no_insert": {"insert": False},
            "pnc_paper": {"objective": "paper"}, "pnc_paper_ce": {"objective": "paper+ce"},
            "pnc_paper_ce_neg": {"objective": "paper+ce+neg"},
            "pnc_paper_ce_neg_cal": {"objective": "paper+ce+neg+cal"}}


def run(task, target_dir, source_dir, dataset, fraction, ori_set, tar_set, *, variants, steps=None, workdir=None,
        log=print, settings=None, device=None) -> tuple[dict, dict]:
    """({variant: score dict}, {variant: {R: held-out loss}}) for the PNC variants asked for.

    Each variant is ``build_clone(target, source, dataset, clone, seed, config=BuildConfig(data_fraction=fraction,
    **VARIANTS[variant]))``: the builder draws D_t with the same ``take_fraction(..., seed)`` as the baselines, so
    every row of a setting sees the same images. The delta is serialised with the codec (its size is the download
    size) and saved under ``workdir``; the clone is rebuilt from it with ``ClonedNetwork.from_delta`` and scored like
    every other row.
    """
    from pathlib import Path

    from pnc_pack.builder import BuildConfig, build_clone
    from pnc_pack.clone.evaluate import output_labels
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.errors import PncError
    from pnc_pack.format import codec
    from pnc_pack.fsutil import atomic_write
    from pnc_pack.zoo.pretrained import load_pretrained
    from tools.bench import baselines as B

    target, t_cfg = load_pretrained(target_dir)
    source, s_cfg = load_pretrained(source_dir)
    n_old, k = len(task.target_labels), task.k
    rows, r_search = {}, {}
    for v in variants:
        overrides = _overrides(VARIANTS[v], steps, settings)
        cfg = BuildConfig(data_fraction=fraction, **overrides)
        t0 = time.perf_counter()
        try:
            delta = build_clone(str(target_dir), str(source_dir), dataset, list(task.clone), seed=task.seed,
                                config=cfg, device=device)
            dt = time.perf_counter() - t0
            data = codec.dumps(delta)
        except PncError as exc:  # a failed build is a result to report, not a reason to lose the other rows
            rows[v] = {"ori": None, "tar": None, "avg": None, "bytes": None, "bytes_note": "", "train_s": None,
                       "note": f"failed: {type(exc).__name__}: {exc}"}
            log(f"  {v:<14} FAILED: {type(exc).__name__}: {exc}")
            continue
        if workdir is not None:
            Path(workdir).mkdir(parents=True, exist_ok=True)
            atomic_write(Path(workdir) / f"{v}.pnc", data)
        model = ClonedNetwork.from_delta(delta, target, [source]).to(device or "cpu")
        labels = output_labels(delta, t_cfg, [s_cfg])
        met = dict(delta.metrics)
        extra = {"position": met.get("R"), "source_position": met.get("R_s"), "mask_density": met.get("mask_density"),
                 "config_overrides": overrides,
                 **{key: met[key] for key in ("anchors", "held_out", "negatives", "surrogate_r2") if key in met}}
        out = B.Outcome(model, labels, len(data), "the clone-delta file (needs the target and the source from the "
                        "zoo)", dt, extra)
        rows[v] = B.score(out, ori_set, tar_set, n_old, k)
        losses = met.get("loss_per_R") or {}
        r_search[v] = {str(r): (d.get("total") if isinstance(d, dict) else d) for r, d in losses.items()}
        r = rows[v]
        log(f"  {v:<14} Ori {r['ori']:6.2f}  Tar {r['tar']:6.2f}  Avg {r['avg']:6.2f}  bytes {r['bytes']}  "
            f"train {r['train_s']:.1f}s  R={r['position']} density={r['mask_density']} loss/R={r_search[v]}")
    return rows, r_search
