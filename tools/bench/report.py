"""Benchmark report: the paper table's Markdown and figures, and ``tools/bench/RESULTS.md`` from every JSON result.

``python -m tools.bench report`` regenerates RESULTS.md from the JSON files present in ``tools/bench/results/``:
one section per ``paper-<dataset>*.json`` (the paper's main table, definitions, judgement, figures) and a generic
section for any other benchmark's JSON (format.json, hub.json, mnist_pnc.json, scale.json, ...: its command, its
scalar fields and every list of records as a table). RESULTS.md is written only by this tool; never by hand.
Figures are matplotlib PNGs (Agg backend): Avg accuracy per method (S/M grouped bars with ±std), the R-search loss
per insertion position (the paper's supplementary Fig. 1), and the download bytes per method on a log scale.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"

# The paper's MNIST rows (PAPER.md §6.1), shown beside ours for reference: (OriS, TarS, AvgS, OriM, TarM, AvgM).
PAPER_MNIST = {
    "pretrained": (99.7, 99.5, 99.7, 99.7, 99.5, 99.6), "joint": (99.8, 98.3, 99.6, 99.7, 99.3, 99.5),
    "continual": (83.4, 100.0, 86.2, 65.1, 98.8, 77.7), "ensemble": (94.6, 56.1, 88.2, 94.6, 81.9, 89.8),
    "continual_kd": (93.5, 82.7, 91.7, 93.0, 82.0, 88.9), "pnc_no_local": (93.6, 96.2, 94.0, 92.9, 94.0, 93.3),
    "pnc_no_insert": (92.8, 99.5, 93.9, 91.9, 97.3, 93.9), "pnc": (96.4, 99.7, 97.0, 96.2, 97.8, 96.8),
}
COLS = ("OriS", "TarS", "AvgS", "OriM", "TarM", "AvgM")


# -- machine ------------------------------------------------------------------------------------------------------
def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    try:
        from importlib.metadata import version

        torch_v = version("torch")
    except Exception:  # noqa: BLE001 - reported as unknown
        torch_v = "unknown"
    gpu = None
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    return {"nproc": nproc, "cpu": cpu or platform.processor() or "unknown", "torch": torch_v,
            "python": platform.python_version(), "platform": platform.platform(), "gpu": gpu}


def machine_line(m: dict) -> str:
    if not {"nproc", "cpu", "torch"} <= set(m):  # another benchmark's own machine record: show it as it is
        return ", ".join(f"{k} {v}" for k, v in sorted(m.items()))
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    return (f"{m.get('nproc')} CPU cores ({m.get('cpu')}){gpu}; torch {m.get('torch')}, Python {m.get('python')}, "
            f"{m.get('platform')}")


# -- the paper table ------------------------------------------------------------------------------------------------
def _cell(row: dict, col: str, nseeds: int) -> str:
    v = row.get(col)
    if v is None:
        return "—"
    s = row.get(f"{col}_std")
    return f"{v:.2f} ± {s:.2f}" if nseeds > 1 and s is not None else f"{v:.2f}"


def _bytes(n) -> str:
    if n is None:
        return "—"
    return f"{n:,}"


GOALS = {"mnist": {"AvgS": 98.0, "AvgM": 97.5}}  # the builder issue's goals, carried into issue 7 (full MNIST)
PEFT = ("lora", "lora_kd", "lora_kd_neg")


def _ms(row: dict, col: str) -> str:
    v, sd = row.get(col), row.get(f"{col}_std")
    return "—" if v is None else (f"{v:.2f} ± {sd:.2f}" if sd else f"{v:.2f}")


def label(result: dict) -> str:
    """The dataset, plus the PNC rows' builder settings that differ from the defaults (tagged variant runs)."""
    from pnc_pack.builder.config import BuildConfig

    cfg = result.get("pnc_config") or {}
    default = BuildConfig(data_fraction=cfg.get("data_fraction", 0.1)).to_dict()
    diff = {k: v for k, v in cfg.items() if k in default and default[k] != v and k != "steps"}
    notes = [f"PNC rows with {', '.join(f'{k}={v}' for k, v in sorted(diff.items()))}"] if diff else []
    missing = sorted(set(default) - set(cfg)) if cfg else []  # stored by a builder that predates them
    if missing:
        notes.append(f"PNC rows built before the setting(s) {', '.join(missing)} existed")
    split = result.get("split") or {}
    if split.get("name") == "val":  # a tuning run: never to be read as a test-split number
        notes.insert(0, f"VALIDATION split: {split.get('size')} training images, seed {split.get('seed')}")
    return result["dataset"] + (f" [{'; '.join(notes)}]" if notes else "")


def verdict(result: dict) -> list[str]:
    """Plain sentences: PNC (full) against Continual + KD and Direct Ensemble, against PEFT, and the MNIST goals."""
    rows = {r["method"]: r for r in result["table"]}
    pnc = rows.get("pnc")
    done = result.get("seeds_done", result.get("seeds", []))
    head = (f"{label(result)} ({len(done)} seed(s) {done}"
            + (f" of {result['seeds']}, PARTIAL" if result.get("partial") else "") + ", Avg as mean ± std)")
    if pnc is None or pnc.get("AvgS") is None:
        return [f"{head}: PNC (full) was not run, nothing to judge."]
    out = []
    for other in ("continual_kd", "ensemble") + PEFT + ("continual_kd_neg",):
        o = rows.get(other)
        if o is None or o.get("AvgS") is None:
            continue
        cmp = []
        for st in ("S", "M"):
            a, b = pnc.get(f"Avg{st}"), o.get(f"Avg{st}")
            if a is None or b is None:
                continue
            cmp.append(f"{'**beats**' if a > b else '**does NOT beat**'} it in {st} (Avg{st} {_ms(pnc, 'Avg' + st)} "
                       f"vs {_ms(o, 'Avg' + st)})")
        if cmp:
            who = o["name"] + (" (PEFT)" if other in PEFT else "")
            out.append(f"{head}, PNC (full) against {who}: " + "; ".join(cmp) + ".")
    above = [f"{rows[m]['name']} in {st} ({_ms(rows[m], 'Avg' + st)})" for m in ("pnc_no_local", "pnc_no_insert")
             for st in ("S", "M") if m in rows and rows[m].get(f"Avg{st}") is not None
             and pnc.get(f"Avg{st}") is not None and rows[m][f"Avg{st}"] >= pnc[f"Avg{st}"]]
    if above:
        out.append(f"{head}: ablations at or above PNC (full) on Avg: " + "; ".join(above) + ".")
    goals = GOALS.get(result["dataset"])
    if goals:
        parts = []
        for col, g in goals.items():
            v = pnc.get(col)
            parts.append(f"{col} {_ms(pnc, col)} vs goal >= {g}: **{'met' if v is not None and v >= g else 'NOT met'}**")
        parts += ori_band(result)
        out.append(f"{head}: issue goals for PNC (full): " + "; ".join(parts) + ".")
    return out


BAND = 1.5  # the builder issue: Ori within 1.5 points of the unmodified target


def ori_band(result: dict) -> list[str]:
    """Per setting: is PNC (full)'s Ori within BAND points of its unmodified target's accuracy on every seed?"""
    out = []
    for st in ("S", "M"):
        gaps = {}
        for run in result.get("runs", []):
            row = run.get("settings", {}).get(st, {}).get("rows", {}).get("pnc")
            tgt = run.get("zoo", {}).get("target", {}).get("test_accuracy")
            if row is not None and tgt is not None:
                gaps[run["seed"]] = 100 * tgt - row["ori"]
        if gaps:
            worst = max(gaps, key=gaps.get)
            ok = gaps[worst] <= BAND
            out.append(f"Ori{st} within {BAND} of the target on every seed: **{'met' if ok else 'NOT met'}** "
                       f"(largest gap {gaps[worst]:.2f}, seed {worst})")
    return out


def paper_table_md(result: dict) -> str:
    n = len(result.get("seeds_done", result.get("seeds", [1])))
    head = "| Method | " + " | ".join(COLS) + " | download bytes S / M | train s S / M |"
    lines = [head, "|" + "---|" * (len(COLS) + 3)]
    for r in result["table"]:
        name = f"**{r['name']}**" if r["method"] == "pnc" else r["name"]
        cells = [_cell(r, c, n) for c in COLS]
        b = f"{_bytes(r.get('bytes_S'))} / {_bytes(r.get('bytes_M'))}"
        t = " / ".join("—" if r.get(f"train_s_{s}") is None else f"{r[f'train_s_{s}']:.1f}" for s in "SM")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {b} | {t} |")
    return "\n".join(lines)


def paper_markdown(result: dict, level: int = 1, fig_prefix: str = "") -> str:
    h = "#" * level
    st = result["settings"]
    out = [f"{h} Paper main table — {label(result)} ({result['arch']})", ""]
    if result.get("partial"):
        out += [f"**Partial result:** seeds {result['seeds_done']} of the {result['seeds']} asked for finished "
                "(the run was stopped or is still running); the table covers only those.", ""]
    done = result.get("seeds_done", result["seeds"])
    out += [f"Command: `{result['command']}`", "",
            f"Machine: {machine_line(result['machine'])}. Wall time {result.get('wall_s')} s for "
            f"{len(done)} seed(s) {done}, torch threads {st.get('torch_threads', '?')}; 1-minute load "
            f"average at start / end {(result.get('loadavg_1min') or {}).get('start')} / "
            f"{(result.get('loadavg_1min') or {}).get('end')} (the machine is shared: times are wall clock).", "",
            f"Data `{result['data_spec']}` ({result.get('dataset_repr', '')}). Target classes {st['target_classes']}, "
            f"source classes {st['source_classes']}; S clones {st['clone_s']}, M clones {st['clone_m']}; D_t = "
            f"{st['data_fraction']:g} of the cloned classes' training images. Zoo models and Joint: {st['epochs']} "
            f"epochs (label smoothing {st['zoo_label_smoothing']}); fine-tuning rows: {st['ft_epochs']} passes over "
            f"D_t; PNC steps per position: {st.get('pnc_steps') or 'builder default'}.", ""]
    zoo = [f"seed {r['seed']}: target {r['zoo']['target']['test_accuracy']}, source "
           f"{r['zoo']['source']['test_accuracy']}" for r in result["runs"]]
    out += ["Zoo test accuracy (own classes): " + "; ".join(zoo) + ".", ""]
    if len(done) > 1:
        out += ["Accuracies in % as mean ± sample std over the seeds; bytes are the median, times the mean.", ""]
    else:
        out += ["Accuracies in %.", ""]
    out += [paper_table_md(result), ""]
    out += [f"**Judgement.** {result['judgement']['summary']}", ""]
    out += [f"- {line}" for line in verdict(result)] + [""]
    notes = sorted({f"{r['name']}: {r[k]}" for r in result["table"] for k in ("note_S", "note_M") if r.get(k)})
    if notes:
        out += ["Notes: " + " ".join(f"{x}." for x in notes), ""]
    out += [f"{h}# Definitions (as run here)", ""]
    names = {r["method"]: r["name"] for r in result["table"]}
    for m, text in result["definitions"].items():
        if m in names:
            out.append(f"- **{names[m]}** — {text.split(': ', 1)[-1]}")
    byte_notes = sorted({f"{r['name']}: {r.get('bytes_note_S') or r.get('bytes_note_M')}" for r in result["table"]
                         if r.get("bytes_note_S") or r.get("bytes_note_M")})
    out += ["", "Download bytes, given the pretrained zoo models the receiver already holds: "
            + "; ".join(byte_notes) + ".", ""]
    rs = _r_search_table(result)
    if rs:
        out += [f"{h}# Insertion-position search (loss per R)", "", rs, ""]
    if result["dataset"] == "mnist":
        out += [f"{h}# The paper's MNIST numbers (PAPER.md §6.1), for reference", "",
                "| Method | " + " | ".join(COLS) + " |", "|" + "---|" * (len(COLS) + 1)]
        for r in result["table"]:
            p = PAPER_MNIST.get(r["method"])
            if p:
                out.append(f"| {r['name']} | " + " | ".join(f"{v:.1f}" for v in p) + " |")
        out.append("")
    figs = result.get("figures", [])
    if figs:
        out += [f"{h}# Figures", ""] + [f"![{Path(f).stem}]({fig_prefix}{Path(f).name})" for f in figs] + [""]
    return "\n".join(out)


def _r_search_table(result: dict) -> str:
    lines = []
    for run in result["runs"]:
        for st, s in run["settings"].items():
            for variant, losses in sorted((s.get("r_search") or {}).items()):
                if not isinstance(losses, dict) or not losses:
                    continue
                cells = ", ".join(f"R={r}: {v:.4g}" if isinstance(v, (int, float)) else f"R={r}: {v}"
                                  for r, v in sorted(losses.items(), key=lambda kv: int(kv[0])))
                chosen = s["rows"].get(variant, {}).get("position")
                lines.append(f"| {run['seed']} | {st} | {variant} | {cells} | {chosen if chosen is not None else '—'} |")
    if not lines:
        return ""
    return "\n".join(["| seed | setting | row | loss per position | chosen R |", "|---|---|---|---|---|"] + lines)


# -- figures ------------------------------------------------------------------------------------------------------
def paper_figures(result: dict, out: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    table = result["table"]
    names = [r["name"] for r in table]
    x = list(range(len(table)))
    # 1. Avg accuracy per method, S and M grouped.
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(table)), 4))
    for j, st in enumerate(("S", "M")):
        vals = [r.get(f"Avg{st}") or 0.0 for r in table]
        errs = [r.get(f"Avg{st}_std") or 0.0 for r in table]
        xs = [i + (j - 0.5) * 0.4 for i in x]
        ax.bar(xs, vals, 0.4, yerr=errs, capsize=3, label=f"Avg{st}")
        for xi, v in zip(xs, vals):
            if v:
                ax.text(xi, v + 0.3, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("Avg accuracy (%)")
    lo = min([r.get(f"Avg{s}") for r in table for s in "SM" if r.get(f"Avg{s}") is not None] or [0])
    ax.set_ylim(max(0, lo - 5), 100)
    ax.set_title(f"{result['dataset']} / {result['arch']}: Avg accuracy per method")
    ax.legend()
    fig.tight_layout()
    paths.append(out / f"{stem}-accuracy.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    # 2. R-search held-out loss per position (the supplementary's Fig. 1): one panel per setting S / M, one line per
    #    seed, for the full PNC row (else any PNC row that has one); the chosen R* is circled.
    panels = {}
    for run in result["runs"]:
        for st, s in run["settings"].items():
            rs = s.get("r_search") or {}
            variant = "pnc" if rs.get("pnc") else next((k for k, v in rs.items() if v), None)
            if variant is None:
                continue
            pts = sorted((int(r), float(v)) for r, v in rs[variant].items() if isinstance(v, (int, float)))
            chosen = (s.get("rows", {}).get(variant) or {}).get("position")
            if pts:
                panels.setdefault(st, []).append((f"seed {run['seed']}", pts, chosen, variant))
    if panels:
        order = [st for st in ("S", "M") if st in panels] + [st for st in panels if st not in ("S", "M")]
        fig, axes = plt.subplots(1, len(order), figsize=(4.6 * len(order), 3.8), squeeze=False)
        for ax, st in zip(axes[0], order):
            for label, pts, chosen, variant in panels[st]:
                line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
                for r, v in pts:
                    if r == chosen:
                        ax.plot([r], [v], marker="o", markersize=13, markerfacecolor="none",
                                markeredgecolor=line.get_color())
            ax.set_xlabel("insertion position R (target block)")
            ax.set_ylabel("held-out search loss")
            ax.set_xticks(sorted({p[0] for _, pts, _, _ in panels[st] for p in pts}))
            ax.set_title(f"setting {st} ({panels[st][0][3]}); circle = chosen R*", fontsize=9)
            ax.legend(fontsize=8)
        fig.suptitle(f"{result['dataset']} / {result['arch']}: loss per insertion position", fontsize=10)
        fig.tight_layout()
        paths.append(out / f"{stem}-rsearch.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    # 3. Download bytes per method, log scale (0 / not applicable are left out and named in the title).
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(table)), 4))
    smallest = None
    for j, st in enumerate(("S", "M")):
        pts = [(i, r.get(f"bytes_{st}")) for i, r in enumerate(table)]
        pts = [(i, b) for i, b in pts if b]
        xs = [i + (j - 0.5) * 0.4 for i, _ in pts]
        ax.bar(xs, [b for _, b in pts], 0.4, label=st)
        for xi, (_, b) in zip(xs, pts):
            ax.text(xi, b * 1.05, f"{b / 1024:.0f}K" if b >= 10240 else f"{b / 1024:.1f}K", ha="center",
                    va="bottom", fontsize=7)
            smallest = b if smallest is None else min(smallest, b)
    ax.set_yscale("log")
    if smallest:
        ax.set_ylim(bottom=smallest / 5)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("bytes to download")
    zero = [r["name"] for r in table if not r.get("bytes_S") and not r.get("bytes_M")]
    ax.set_title("download size per method" + (f" (not shown, 0 or n/a: {', '.join(zero)})" if zero else ""),
                 fontsize=9)
    ax.legend()
    fig.tight_layout()
    paths.append(out / f"{stem}-bytes.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def _dump(data) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n").encode()


def write_paper(result: dict, out: Path, tag: str = "") -> list[Path]:
    """Write paper-<dataset><tag>.json / .md / -*.png into ``out``; returns the paths."""
    from pnc_pack.fsutil import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"paper-{result['dataset']}{tag}"
    figs = paper_figures(result, out, stem)
    result["figures"] = [f.name for f in figs]
    atomic_write(out / f"{stem}.json", _dump(result))
    atomic_write(out / f"{stem}.md", paper_markdown(result).encode())
    return [out / f"{stem}.json", out / f"{stem}.md", *figs]


# -- generic sections ------------------------------------------------------------------------------------------------
def _scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v).replace("|", "\\|").replace("\n", " ")


def _flatten(d: dict, prefix: str = "", depth: int = 0) -> list[tuple[str, object]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if _scalar(v):
            out.append((key, v))
        elif isinstance(v, dict) and depth < 2:
            out += _flatten(v, key + ".", depth + 1)
        elif isinstance(v, list) and all(_scalar(x) for x in v) and len(v) <= 20:
            out.append((key, ", ".join(_fmt(x) for x in v)))
    return out


MAX_ROWS = 40


def _records_table(rows: list[dict], where: str = "") -> str:
    more = len(rows) - MAX_ROWS
    flat = [dict(_flatten(r)) for r in rows[:MAX_ROWS]]
    cols: list[str] = []
    for f in flat:
        cols += [k for k in f if k not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(f.get(c)) for c in cols) + " |" for f in flat]
    if more > 0:
        lines += ["", f"({more} more rows in {where or 'the JSON file'})"]
    return "\n".join(lines)


def generic_markdown(name: str, data, level: int = 2, own_md: str | None = None) -> str:
    h = "#" * level
    out = [f"{h} {name}", "", f"From `results/{name}.json`" + (f"; the benchmark's own report: [{own_md}]"
                                                                f"(results/{own_md})" if own_md else "") + ".", ""]
    if not isinstance(data, dict):
        data = {"records": data} if isinstance(data, list) else {"value": data}
    if data.get("command"):
        out += [f"Command: `{data['command']}`", ""]
    if isinstance(data.get("machine"), dict):
        out += [f"Machine: {machine_line(data['machine'])}.", ""]
    scal = [(k, v) for k, v in _flatten({k: v for k, v in data.items() if k not in ("command", "machine")})]
    if scal:
        out += ["| field | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in scal] + [""]

    def walk(obj, path):
        if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
            out.extend([f"**{path}**", "", _records_table(obj, f"results/{name}.json"), ""])
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if k != "machine":
                    walk(v, f"{path}.{k}" if path else k)

    walk(data, "")
    return "\n".join(out)


INLINE_MD = {"scale": "size and speed at a larger scale (CIFAR-shape ResNet-18, LeNet-5)"}


def write_results_md(results: Path = RESULTS, path: Path = RESULTS_MD) -> Path:
    """Regenerate RESULTS.md from every JSON in ``results`` (paper tables first, then the others by name)."""
    from pnc_pack.fsutil import atomic_write

    files = sorted(f for f in Path(results).glob("*.json") if not f.stem.endswith("-quick"))
    paper = [f for f in files if f.name.startswith("paper-")]
    other = [f for f in files if f not in paper]
    out = ["# Benchmark results", "",
           "Generated by `python -m tools.bench report` from the JSON files in `tools/bench/results/`; do not edit "
           "by hand (rerun the benchmark, then the report).", "",
           f"Report machine: {machine_line(machine())}. Each section names the machine its numbers were measured "
           "on.", ""]
    commands = []
    out_sections = []
    verdicts = []
    for f in paper:
        try:
            data = json.loads(f.read_text())
            if isinstance(data, dict) and "table" in data:
                verdicts += verdict(data)
        except (OSError, ValueError):
            pass
    if verdicts:
        out += ["## Verdict (PNC (full) against the baselines and PEFT; the issue's goals)", ""]
        out += [f"- {v}" for v in verdicts] + [""]
        out += ["What was tried on the builder to reach the goals (negative weight, routing calibration recall, a "
                "Mahalanobis novelty term, inversion negatives, steps) is measured and recorded in the builder "
                "notes (`docs/builder-notes.md`) and in `results/mnist_pnc.md`; the rows above are "
                "the builder's defaults as recorded in each table's `pnc_config`.", ""]
    for f in paper + other:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            out_sections += [f"## {f.name}", "", f"(unreadable: {exc})", ""]
            continue
        if isinstance(data, dict) and data.get("command"):
            commands.append(data["command"])
        if f in paper and isinstance(data, dict) and "table" in data:
            # figures and the per-dataset Markdown are redrawn from the JSON, so that they follow this code
            figs = paper_figures(data, Path(results), f.stem)
            data["figures"] = [x.name for x in figs]
            atomic_write(f.with_suffix(".md"), paper_markdown(data).encode())
            out_sections += [paper_markdown(data, level=2, fig_prefix="results/"), ""]
        elif f.stem in INLINE_MD and f.with_suffix(".md").is_file():
            out_sections += [f"## {f.stem}: {INLINE_MD[f.stem]}", "",
                             f"From `results/{f.stem}.json` (its Markdown, `results/{f.stem}.md`, as written by the "
                             "benchmark):", "", f.with_suffix(".md").read_text().strip(), ""]
        else:
            md = f.with_suffix(".md")
            out_sections += [generic_markdown(f.stem, data, own_md=md.name if md.is_file() else None), ""]
    if commands:
        out += ["## Commands", "", "```"] + commands + ["python -m tools.bench report", "```", ""]
    if not out_sections:
        out += ["No results yet: run e.g. `python -m tools.bench paper`.", ""]
    atomic_write(path, ("\n".join(out + out_sections).rstrip() + "\n").encode())
    return path


def main(argv=None) -> int:
    """``python -m tools.bench report``: regenerate RESULTS.md."""
    print(f"report: wrote {write_results_md()}")
    return 0
