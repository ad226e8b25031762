"""The paper's conditional similarity (BLOG; SUPP Eq. 7), as evidence of locality:

    Sim(M_a|D, M_b|D) = cos(Θ_a, Θ_b)

Θ_m is the local model set of model m around the data D (:mod:`pnc_pack.builder.surrogate`, fitted as source
selection fits it, :mod:`pnc_pack.builder.select`): the same anchors of D and the *same* random patch masks B for
both models, g_i(b) = [b, 1]·θ_i fitted by weighted ridge least squares; columns aligned as ZEST does when the two
models' outputs differ (``select.align``), then the cosine of the matched, flattened weights.

For a clone M_c, on each functionality's data D_f (the target's classes; each module's cloned classes; images of
the split asked for), :func:`conditional_similarity` gives Sim(M_c|D_f, M_t|D_f) and Sim(M_c|D_f, M_s,i|D_f) for
every module's source i. Locality reads as: the clone is the target on the target's data, and the source on its
cloned classes' data. ``Sim(M|D, M|D) = 1``.

[INFERRED] choices (the paper's main text, with its exact pairing, was not available; docs/similarity.md):
- the same settings as source selection: log-probabilities regressed, intercept row left out, 100 masks per
  anchor, the builder's grid, masking rate, kernel width and ridge (``BuildConfig``);
- anchors: at most ``anchors`` images of D_f drawn with ``seed`` (default 50 per functionality); the models see
  each image fitted to their own input shape;
- :func:`cross_similarity` compares one model's local models on two *different* data sets (the paper's
  similarity-matrix figure, source panel): anchor k of D_i is paired with anchor k of D_j under the same masks.
"""

from __future__ import annotations

import torch

from pnc_pack.errors import DataError, UsageError


def _settings(config):
    from pnc_pack.builder.config import BuildConfig

    return config or BuildConfig()


def local_set(model, X: torch.Tensor, b: torch.Tensor, config=None, output: str = "logprob") -> torch.Tensor:
    """Θ of ``model`` around the images ``X`` (n anchors) under the masks ``b`` (n, |B|, grid²), on the model's
    device; images fitted to its input shape."""
    from pnc_pack.builder.select import fit_on
    from pnc_pack.builder.surrogate import source_logits
    from pnc_pack.data import fit_to_shape

    cfg = _settings(config)
    dev = next(model.parameters()).device
    model.eval()
    y = source_logits(model, fit_to_shape(X, model.input_shape).to(dev), b.to(dev), cfg.grid).cpu()
    return fit_on(y, b.cpu(), cfg.kernel_width, cfg.ridge, output)[0]


def masks_for(n: int, masks_per_anchor: int, config=None, seed: int = 0) -> torch.Tensor:
    from pnc_pack.builder.surrogate import random_masks

    cfg = _settings(config)
    if n < 1 or masks_per_anchor < 2:
        raise UsageError(f"similarity: needs at least 1 anchor and 2 masks per anchor (got {n}, {masks_per_anchor})")
    return random_masks(n, int(masks_per_anchor), cfg.grid, cfg.mask_rate, torch.Generator().manual_seed(seed))


def sim(theta_a: torch.Tensor, theta_b: torch.Tensor) -> float:
    """cos(Θ_a, Θ_b) after ZEST column alignment, intercept row left out."""
    from pnc_pack.builder.select import similarity

    return similarity(theta_a, theta_b, False)[0]


def pair_similarity(model_a, model_b, X: torch.Tensor, *, anchors: int = 50, masks_per_anchor: int = 100,
                    seed: int = 0, config=None) -> float:
    """Sim(M_a|D, M_b|D) on the images ``X`` (D)."""
    from pnc_pack.builder.select import anchors as draw

    A = draw(X, int(anchors), seed)
    b = masks_for(len(A), masks_per_anchor, config, seed)
    return sim(local_set(model_a, A, b, config), local_set(model_b, A, b, config))


def cross_similarity(model, X_i: torch.Tensor, X_j: torch.Tensor, *, anchors: int = 50, masks_per_anchor: int = 100,
                     seed: int = 0, config=None) -> float:
    """Sim(M|D_i, M|D_j): anchor k of D_i paired with anchor k of D_j, the same masks for both ([INFERRED])."""
    from pnc_pack.builder.select import anchors as draw

    A, B = draw(X_i, int(anchors), seed), draw(X_j, int(anchors), seed)
    n = min(len(A), len(B))
    b = masks_for(n, masks_per_anchor, config, seed)
    return sim(local_set(model, A[:n], b, config), local_set(model, B[:n], b, config))


def conditional_similarity(cloned, dataset, *, split: str = "test", anchors: int = 50, masks_per_anchor: int = 100,
                           seed: int = 0, config=None, resize: bool = False) -> dict:
    """Sim(M_c|D_f, M_t|D_f) and Sim(M_c|D_f, M_s,i|D_f) on each functionality f of the clone ``cloned`` (a
    ClonedNetwork with its output labels), D_f = the ``split`` images of f's classes (``dataset``: a Dataset or
    spec). A dict for ``--json``."""
    from pnc_pack.builder.select import anchors as draw
    from pnc_pack.clone.evaluate import functionalities, labelled_split
    from pnc_pack.data import load_dataset

    dataset = load_dataset(dataset) if isinstance(dataset, str) else dataset
    if int(anchors) < 1:
        raise UsageError(f"similarity: anchors must be at least 1, got {anchors}")
    X, want = labelled_split(cloned, dataset, split, resize)
    names = [lab.name for lab in cloned.delta.labels]
    rows = []
    for j, (name, lo, hi) in enumerate(functionalities(cloned.delta)):
        sel = (want >= lo) & (want < hi)
        if not sel.any():
            raise DataError(f"{dataset.name}: no {split} images of functionality {name!r} (classes "
                            f"{names[lo:hi]})")
        A = draw(X[sel], int(anchors), seed + j)
        b = masks_for(len(A), masks_per_anchor, config, seed + j)
        theta_c = local_set(cloned, A, b, config)
        row = {"name": name, "classes": names[lo:hi], "anchors": len(A),
               "target": round(sim(theta_c, local_set(cloned.target, A, b, config)), 6),
               "sources": [round(sim(theta_c, local_set(s, A, b, config)), 6) for s in cloned.sources]}
        rows.append(row)
    return {"method": "Sim(M_c|D_f, M|D_f) = cos of local-model sets (SUPP Eq. 7), ZEST column alignment, "
                      "log-probabilities, no intercept", "split": split, "anchors": int(anchors),
            "masks_per_anchor": int(masks_per_anchor), "seed": int(seed), "functionalities": rows}


def similarity_lines(result: dict) -> list[str]:
    """The table ``pnc-pack eval --similarity`` prints."""
    rows = result["functionalities"]
    k = max((len(r["sources"]) for r in rows), default=0)
    head = f"{'data of':<12} {'vs target':>9}" + "".join(f" {'vs source ' + str(i):>11}" for i in range(k))
    out = [f"conditional similarity Sim(clone|D, model|D) on {result['split']} data "
           f"({result['anchors']} anchors, {result['masks_per_anchor']} masks each)", head]
    for r in rows:
        out.append(f"{r['name']:<12} {r['target']:>9.4f}" + "".join(f" {v:>11.4f}" for v in r["sources"]))
    return out
