"""The paper's similarity-matrix figure (BLOG; issue 19 item 5): the conditional similarity as evidence of locality.

    python -m tools.bench similarity [--data mnist5k] [--seed 0]

A LeNet-5 target on 0-4 and a source on 5-9 (``mnist_pnc``'s zoo, cached in --workdir); one single-class clone
(S, default builder) per source class i. The sub-datasets D_j are the ``--split`` images of each source class j.
Two panels, as the paper's figure (PAPER.md §6: "for the source network, features of different sub-datasets are
more or less correlated"; "the transferable module is highly similar on the sub-dataset to be cloned, weaker on
the others"):
- source network: Sim(M_s|D_i, M_s|D_j), the source's local models on D_i against those on D_j ([INFERRED]:
  anchor k of D_i paired with anchor k of D_j under the same masks; the diagonal is 1 by construction);
- cloned module: Sim(M_c^i|D_j, M_s|D_j), the clone of class i against the source on D_j (the paper's Sim on one
  data set, ZEST-aligned): high on the diagonal and low off it means the clone behaves like the source only on
  the class it cloned.
Also each clone's ``pnc-pack eval --similarity`` table. Writes tools/bench/results/similarity-<data>.json, .md and
.png (matplotlib, from the bench extra). docs/similarity.md has the reading and the measured figures.
"""

from __future__ import annotations

import argparse
import time

from tools.bench import RESULTS, add_device_option, device_of, device_record, write_result


def draw(path, classes, source, module, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, mat, name, rows in ((axes[0], source, "source network: Sim(M_s|D_i, M_s|D_j)", "D_i"),
                                (axes[1], module, "cloned module: Sim(M_c^i|D_j, M_s|D_j)", "clone of class i")):
        im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(classes)), [str(c) for c in classes])
        ax.set_yticks(range(len(classes)), [str(c) for c in classes])
        ax.set_xlabel("sub-dataset D_j (class j)")
        ax.set_ylabel(rows)
        ax.set_title(name, fontsize=9)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{mat[i][j]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if mat[i][j] > 0.6 else "white")
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    ap = argparse.ArgumentParser(prog="python -m tools.bench similarity")
    ap.add_argument("--data", default="mnist5k")
    ap.add_argument("--split", default="test", choices=("test", "train"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", default="5,6,7,8,9", help="source classes, one S clone each")
    ap.add_argument("--anchors", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/pnc-bench-mnist")
    add_device_option(ap)
    args = ap.parse_args(argv)
    dev = device_of(ap, args)
    from pnc_pack.api.model import apply
    from pnc_pack.builder import build_clone
    from pnc_pack.builder.similarity import conditional_similarity, cross_similarity, pair_similarity
    from tools.bench.mnist_pnc import mnist_data, zoo_models

    t0 = time.perf_counter()
    data, ds = mnist_data(args.data)
    models = zoo_models(ds, args.workdir, args.seed, args.epochs, dev)
    classes = [int(c) for c in args.classes.split(",")]
    X, y = getattr(ds, args.split)
    D = {c: X[y == c] for c in classes}
    kw = dict(anchors=args.anchors, masks_per_anchor=100, seed=args.seed)
    clones, evals = {}, {}
    for c in classes:
        delta = build_clone(str(models["target"]), str(models["source"]), ds, [c], seed=args.seed, eval_data=ds,
                            device=dev)
        clones[c] = apply(delta, device=dev)
        evals[c] = {"eval": delta.metrics["eval"], "R": delta.metrics["R"],
                    "similarity": conditional_similarity(clones[c], ds, split=args.split, **kw)}
        print(f"clone {c}: Avg {100 * delta.metrics['eval']['avg']:.2f}, R {delta.metrics['R']}", flush=True)
    src = clones[classes[0]].sources[0]
    source_m = [[round(cross_similarity(src, D[i], D[j], **kw), 4) for j in classes] for i in classes]
    module_m = [[round(pair_similarity(clones[i], src, D[j], **kw), 4) for j in classes] for i in classes]
    n = len(classes)
    off = lambda m: sum(m[i][j] for i in range(n) for j in range(n) if i != j) / (n * n - n)  # noqa: E731
    diag = lambda m: sum(m[i][i] for i in range(n)) / n  # noqa: E731
    out = {"data": data, **device_record(dev), "split": args.split, "seed": args.seed, "classes": classes, "anchors": args.anchors,
           "masks_per_anchor": 100, "source_matrix": source_m, "module_matrix": module_m,
           "source_diag": round(diag(source_m), 4), "source_off": round(off(source_m), 4),
           "module_diag": round(diag(module_m), 4), "module_off": round(off(module_m), 4),
           "clones": {str(c): v for c, v in evals.items()}, "seconds": round(time.perf_counter() - t0, 1)}
    tag = data.split(":")[-1].replace("/", "_").replace("data_", "")
    title = (f"{data}, {args.split} split, seed {args.seed}: LeNet-5 target 0-4, source 5-9, one S clone per class "
             f"({args.anchors} anchors x 100 masks)")
    draw(RESULTS / f"similarity-{tag}.png", classes, source_m, module_m, title)
    cmd = f"python -m tools.bench similarity --data {data} --split {args.split} --seed {args.seed}"
    lines = [f"# Similarity matrices ({title})", "", f"Command: `{cmd}` ({out['seconds']} s on the shared 2-core "
             "machine). Figure: " + f"`similarity-{tag}.png`.", "",
             f"Mean diagonal / off-diagonal: source network {out['source_diag']:.3f} / {out['source_off']:.3f}; "
             f"cloned modules {out['module_diag']:.3f} / {out['module_off']:.3f}.", "",
             "| clone of | Avg | R | Sim vs target on target data | vs source on target data | vs target on module "
             "data | vs source on module data |", "|---|---|---|---|---|---|---|"]
    for c, v in evals.items():
        f = v["similarity"]["functionalities"]
        lines.append(f"| {c} | {100 * v['eval']['avg']:.2f} | {v['R']} | {f[0]['target']:.3f} | "
                     f"{f[0]['sources'][0]:.3f} | {f[1]['target']:.3f} | {f[1]['sources'][0]:.3f} |")
    write_result(f"similarity-{tag}", out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
