"""The demo's table (rich) and figure (matplotlib)."""

from __future__ import annotations

from pathlib import Path


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):,.2f} MiB"


def rows(result: dict) -> list[list[str]]:
    out = []
    for name, c in result["clones"].items():
        ev = c["receiver"]["eval"]
        out.append([
            f"{name}: {','.join(map(str, c['classes']))}", _kb(c["bytes"]),
            _kb(c["receiver"]["export"]["bytes"]), _kb(result["zoo_bytes"]),
            f"{100 * ev['ori']:.1f}", f"{100 * ev['tar']:.1f}", f"{100 * ev['avg']:.1f}",
            f"{100 * result['target_acc']:.1f}/{100 * c['source_acc']:.1f}",
            "yes" if c["receiver"]["detach"]["identical"] else "NO",
        ])
    return out


HEADERS = ["clone", "delta", "cloned model", "src+tgt", "Ori%", "Tar%", "Avg%", "tgt/src alone%", "detach exact"]


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pnc-pack demo: what travels, and how well it works")
    for h in HEADERS:
        table.add_column(h, justify="right" if h != "clone" else "left")
    for r in rows(result):
        table.add_row(*r)
    console = Console(width=max(100, Console().width))
    console.print(table)
    times = Table(title="time of each step (s)")
    times.add_column("step")
    times.add_column("seconds", justify="right")
    for k, v in result["timings"].items():
        times.add_row(k, f"{v:.2f}")
    console.print(times)


def write_figure(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(result["clones"])
    groups = ["Ori (target's classes)", "Tar (cloned classes)", "Avg"]
    width = 0.35
    for i, name in enumerate(names):
        ev = result["clones"][name]["receiver"]["eval"]
        vals = [100 * ev["ori"], 100 * ev["tar"], 100 * ev["avg"]]
        xs = [g + (i - 0.5) * width for g in range(3)]
        bars = ax1.bar(xs, vals, width, label=f"clone {name} {result['clones'][name]['classes']}")
        ax1.bar_label(bars, fmt="%.1f", fontsize=8)
    ax1.axhline(100 * result["target_acc"], color="gray", ls="--", lw=1, label="target alone, its classes")
    ax1.set_xticks(range(3), groups)
    ax1.set_ylim(0, 105)
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_title("accuracy per class group")
    ax1.legend(fontsize=8, loc="lower left")
    labels, sizes = [], []
    for name in names:
        c = result["clones"][name]
        labels += [f"delta {name}", f"cloned model {name}"]
        sizes += [c["bytes"], c["receiver"]["export"]["bytes"]]
    labels.append("source + target")
    sizes.append(result["zoo_bytes"])
    bars = ax2.barh(labels, sizes, color=["tab:green", "tab:red"] * len(names) + ["tab:gray"])
    ax2.set_xscale("log")
    ax2.bar_label(bars, labels=[_kb(s) for s in sizes], fontsize=8, padding=3)
    ax2.set_xlabel("bytes (log scale)")
    ax2.set_title("what a receiver downloads")
    ax2.set_xlim(right=max(sizes) * 20)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
