"""Deployment gates: may this clone go out? Measured on a dataset's test split, before anything is written.

Limits are in percent (the unit every report of pnc-pack prints): ``min_ori`` and ``min_tar`` are the lowest Ori
and Tar accepted (:mod:`pnc_pack.clone.evaluate`), ``max_ori_drop`` the most Ori may fall below the *unmodified
target*'s accuracy on the same test images of its own classes (the target from ``cloned.detach()``, predicting
over its own classes only, as it did before the clone). :func:`check_gates` measures everything asked for, then
raises :class:`~pnc_pack.errors.GateError` (exit code 8) naming the first failed gate and its measured value; the
error and the returned report carry every measured value and every gate's result, so a CI step can print them all.
"""

from __future__ import annotations

import math

import torch

from pnc_pack.errors import GateError, UsageError

GATES = ("min_ori", "min_tar", "max_ori_drop")
FLAGS = {"min_ori": "--min-ori", "min_tar": "--min-tar", "max_ori_drop": "--max-ori-drop"}


def check_limits(**limits) -> dict:
    """The gates asked for (None: not asked), each a percentage in [0, 100]; UsageError otherwise."""
    out = {}
    for name, v in limits.items():
        if name not in GATES:
            raise UsageError(f"unknown gate {name!r} (known: {', '.join(GATES)})")
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= float(v) <= 100:
            raise UsageError(f"{FLAGS[name]} must be a percentage in [0, 100], got {v!r}")
        out[name] = float(v)
    return out


@torch.no_grad()
def target_ori(cloned, dataset, split: str = "test") -> float:
    """Accuracy of the unmodified target on ``split``'s images of its own classes (a fraction)."""
    from pnc_pack.clone.evaluate import labelled_split, predict

    n_old = sum(1 for lab in cloned.delta.labels if lab.model == "target")
    X, want = labelled_split(cloned, dataset, split)
    old = want < n_old
    if not old.any():
        return float("nan")
    predicted = predict(cloned.detach(), X[old])
    return float((predicted == want[old]).float().mean())


def check_gates(cloned, dataset, *, evaluation: dict | None = None, split: str = "test", **limits) -> dict:
    """Measure and check the gates; returns ``{"measured": {...}, "gates": [...], "passed": bool}`` (percent) or
    raises GateError (with the same report) when one fails. ``evaluation``: an
    :func:`~pnc_pack.clone.evaluate.evaluate_delta_model` result already computed on ``dataset`` (else computed)."""
    from pnc_pack.clone.evaluate import evaluate_delta_model

    limits = check_limits(**limits)
    e = evaluation if evaluation is not None else evaluate_delta_model(cloned, dataset, split)
    measured = {"ori": 100 * e["ori"], "tar": 100 * e["tar"], "avg": 100 * e["avg"]}
    if "max_ori_drop" in limits:
        measured["target_ori"] = 100 * target_ori(cloned, dataset, split)
        measured["ori_drop"] = measured["target_ori"] - measured["ori"]
    measured = {k: round(v, 4) for k, v in measured.items()}
    gates = []
    for name, limit in limits.items():
        value = measured[{"min_ori": "ori", "min_tar": "tar", "max_ori_drop": "ori_drop"}[name]]
        ok = (not math.isnan(value)) and (value <= limit if name == "max_ori_drop" else value >= limit)
        gates.append({"gate": name, "flag": FLAGS[name], "limit": limit, "measured": value, "passed": ok})
    report = {"unit": "percent", "measured": measured, "gates": gates, "passed": all(g["passed"] for g in gates)}
    failed = [g for g in gates if not g["passed"]]
    if failed:
        g = failed[0]
        what = {"min_ori": "Ori", "min_tar": "Tar", "max_ori_drop": "Ori drop vs the target"}[g["gate"]]
        rel = ">" if g["gate"] == "max_ori_drop" else "<"
        more = f" (and {len(failed) - 1} more gate(s) failed)" if len(failed) > 1 else ""
        raise GateError(f"gate {g['flag']} failed: {what} {g['measured']:.2f}% {rel} {g['limit']:g}%{more}",
                        gates=gates, measured=measured)
    return report
