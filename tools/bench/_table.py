"""The paper table's rows: method names and order, mean ± std over seeds, and the judgement line. Private to
:mod:`tools.bench.paper` (which re-exports these names)."""

from __future__ import annotations

import statistics

# The paper bench's default class split (PAPER.md §4), the one every builder default was tuned on.
CLASS_SPLIT = {"target_classes": [0, 1, 2, 3, 4], "source_classes": [5, 6, 7, 8, 9], "clone_s": [5], "clone_m": [5, 6, 7]}

METHOD_ORDER = ["pretrained", "joint", "continual", "continual_kd", "ensemble",
                "pnc_no_local", "pnc_no_insert", "pnc", "pnc_paper", "pnc_paper_ce", "pnc_paper_ce_neg",
                "pnc_paper_ce_neg_cal", "lora", "lora_kd", "continual_kd_neg", "lora_kd_neg"]
METHOD_NAMES = {
    "pretrained": "Pre-trained", "joint": "Joint + Full Set", "continual": "Continual",
    "continual_kd": "Continual + KD", "ensemble": "Direct Ensemble", "pnc_no_local": "PNC (w/o Local)",
    "pnc_no_insert": "PNC (w/o Insert)", "pnc": "PNC (full)", "lora": "PEFT LoRA", "lora_kd": "PEFT LoRA + KD",
    "continual_kd_neg": "Continual + KD + negatives", "lora_kd_neg": "PEFT LoRA + KD + negatives",
    "pnc_paper": "PNC, paper objective", "pnc_paper_ce": "PNC, paper obj. + CE",
    "pnc_paper_ce_neg": "PNC, paper obj. + CE + negatives",
    "pnc_paper_ce_neg_cal": "PNC, paper obj. + CE + negatives + calibration",
}
PNC_METHODS = ("pnc_no_local", "pnc_no_insert", "pnc", "pnc_paper", "pnc_paper_ce", "pnc_paper_ce_neg",
               "pnc_paper_ce_neg_cal")


# -- aggregation ----------------------------------------------------------------------------------------------------
def _mean_std(values):
    vals = [v for v in values if isinstance(v, (int, float)) and v == v]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def aggregate(runs: list[dict], methods) -> list[dict]:
    """One table row per method: mean and std of Ori/Tar/Avg for S and M, bytes and training time."""
    table = []
    for m in methods:
        row = {"method": m, "name": METHOD_NAMES[m]}
        present = False
        for st in ("S", "M"):
            cells = [r["settings"][st]["rows"].get(m) for r in runs if st in r["settings"]]
            cells = [c for c in cells if c is not None]
            if not cells:
                continue
            present = True
            for key, col in (("ori", "Ori"), ("tar", "Tar"), ("avg", "Avg")):
                mean, std = _mean_std([c.get(key) for c in cells])
                row[f"{col}{st}"] = None if mean is None else round(mean, 3)
                row[f"{col}{st}_std"] = None if std is None else round(std, 3)
            b = [c.get("bytes") for c in cells if c.get("bytes") is not None]
            row[f"bytes_{st}"] = int(statistics.median(b)) if b else None
            row[f"bytes_note_{st}"] = cells[0].get("bytes_note", "")
            mean, _ = _mean_std([c.get("train_s") for c in cells])
            row[f"train_s_{st}"] = None if mean is None else round(mean, 2)
            notes = sorted({c["note"] for c in cells if c.get("note")})
            if notes:
                row[f"note_{st}"] = "; ".join(notes)
        if present:
            table.append(row)
    return table


def judge(table: list[dict]) -> dict:
    """The issue's acceptance: PNC (full) beats Continual + KD and Direct Ensemble on Avg in S and M; PEFT beats PNC?"""
    rows = {r["method"]: r for r in table}
    pnc = rows.get("pnc")
    out = {"checks": [], "pass": None}
    if pnc is None or pnc.get("AvgS") is None:
        out["summary"] = "PNC (full) was not run: no judgement."
        return out
    ok = True
    for other in ("continual_kd", "ensemble", "lora", "lora_kd", "continual_kd_neg", "lora_kd_neg"):
        o = rows.get(other)
        if o is None:
            continue
        for st in ("S", "M"):
            a, b = pnc.get(f"Avg{st}"), o.get(f"Avg{st}")
            if a is None or b is None:
                continue
            beats = a > b
            out["checks"].append({"against": other, "setting": st, "pnc_avg": a, "other_avg": b, "pnc_wins": beats})
            if other in ("continual_kd", "ensemble") and not beats:
                ok = False
    required = [METHOD_NAMES[m] for m in ("continual_kd", "ensemble") if m in rows]
    missing = [METHOD_NAMES[m] for m in ("continual_kd", "ensemble") if m not in rows]
    out["pass"] = ok if not missing else None
    lost = [f"{METHOD_NAMES[c['against']]} ({c['setting']}: {c['other_avg']:.2f} vs PNC {c['pnc_avg']:.2f})"
            for c in out["checks"] if not c["pnc_wins"]]
    req = " and ".join(required) or "nothing"
    out["summary"] = (f"PNC (full) beats {req} on Avg in S and M." if ok else
                      f"PNC (full) does NOT beat {req} on Avg in both S and M.")
    if missing:
        out["summary"] += f" Not run, so not judged: {', '.join(missing)}."
    if lost:
        out["summary"] += " Rows at or above PNC (full): " + "; ".join(lost) + "."
    return out
