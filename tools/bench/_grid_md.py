"""The Markdown of ``python -m tools.bench baselines_grid``'s result: every grid point per baseline, the chosen one
in bold, the cost. Private to :mod:`tools.bench.baselines_grid` and :mod:`tools.bench.report`."""

from __future__ import annotations

import json


def _f(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def chosen_table(result: dict) -> str:
    """One line per baseline: the chosen settings and its validation AvgS / AvgM."""
    lines = ["| Baseline | chosen settings | val AvgS | val AvgM | points |", "|---|---|---|---|---|"]
    for m, rows in result.get("grid", {}).items():
        best = next((r for r in rows if r["params"] == result["chosen"].get(m)), None)
        if best is None:
            continue
        p = ", ".join(f"{k}={v:g}" for k, v in best["params"].items())
        lines.append(f"| {m} | {p} | {_f(best['S']['avg'])} | {_f(best['M']['avg'])} | {len(rows)} |")
    return "\n".join(lines)


def grid_markdown(result: dict, level: int = 1) -> str:
    h = "#" * level
    split = result.get("split") or {}
    cost = result.get("cost") or {}
    out = [f"{h} Baseline settings chosen on the validation split — {result['dataset']} ({result['arch']})", "",
           "Commands (a later one reuses the points an earlier one ran): "
           + "; ".join(f"`{c}`" for c in result.get("commands") or [result.get("command")]), "",
           f"Scored on the VALIDATION split: {split.get('what', '?')}; zoo seed {result.get('seed')}, the zoo models "
           f"and D_t of `python -m tools.bench paper --split val` (validation accuracy: "
           + ", ".join(f"{r} {z.get('val_accuracy')}" for r, z in (result.get("zoo") or {}).items()) + ").", "",
           f"Criterion: {result.get('criterion')}.", "",
           f"Cost: {cost.get('points')} grid points, {cost.get('runs')} fine-tuning runs (S and M), "
           f"{cost.get('grid_wall_s')} s wall for the grid ({cost.get('train_s_sum', '?')} s of it training) on "
           f"{cost.get('torch_threads')} torch thread "
           f"(+ {cost.get('setup_wall_s')} s to load the data and train or load the zoo models); machine: "
           f"{(result.get('machine') or {}).get('nproc')} CPU cores, shared.", "",
           chosen_table(result), "",
           "Per point: Ori / Tar / Avg in %; `->new` = % of the old classes' validation images called a new class; "
           "`old-only` = % right when the argmax is over the old classes' outputs alone (what KD protects).", ""]
    for m, rows in result.get("grid", {}).items():
        out += [f"{h}# {m}", "", "| settings | OriS | TarS | AvgS | ->new S | old-only S | OriM | TarM | AvgM | "
                "->new M | old-only M | mean Avg |", "|" + "---|" * 12]
        for r in rows:
            mark = "**" if r["params"] == result["chosen"].get(m) else ""
            cells = [json.dumps(r["params"]).replace("|", "/")]
            for st in ("S", "M"):
                c = r.get(st) or {}
                cells += [_f(c.get(k)) for k in ("ori", "tar", "avg", "ori_to_new", "ori_old_only")]
            cells.append(f"{mark}{_f(r.get('avg_mean'))}{mark}")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)
