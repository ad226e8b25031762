"""The paper table's figures (matplotlib, Agg): Avg accuracy per method (S/M grouped bars with ±std), the R-search
loss per insertion position (the paper's supplementary Fig. 1), download bytes per method on a log scale. Private to
:mod:`tools.bench.report` (which re-exports :func:`paper_figures`)."""

from __future__ import annotations

from pathlib import Path


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
