"""Ori / Tar / Avg, as the paper defines them (PAPER.md §4).

Ori: accuracy on test images of the target's classes T_t; Tar: on test images of the cloned classes t_s; both
predicted over the clone's whole label set. Avg = (|T_t|·Ori + k·Tar) / (|T_t| + k), k = number of cloned classes
(the class-count-weighted mean the paper's numbers satisfy). Also per class and, for several modules, per module
(the supplementary's Table 3).
"""

from __future__ import annotations

import torch

from pnc_pack.errors import DataError


def output_labels(delta, target_config, source_configs) -> list[int]:
    """The dataset label of every output of the clone, from the models' configs and the delta's label map."""
    out = []
    for lab in delta.labels:
        cfg = target_config if lab.model == "target" else source_configs[int(lab.model.split(":")[1])]
        out.append(int(cfg.classes[lab.class_index]["label"]))
    return out


@torch.no_grad()
def predict(model, X: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    model.eval()
    return torch.cat([model(X[i:i + batch_size]).argmax(1) for i in range(0, len(X), batch_size)]) if len(X) else \
        torch.empty(0, dtype=torch.long)


def evaluate_delta_model(cloned, dataset, split: str = "test") -> dict:
    from pnc_pack.data import fit_to_shape

    labels = cloned.output_labels
    if labels is None:
        raise DataError("the clone does not know which dataset label each output is (output_labels unset)")
    X, y = getattr(dataset, split)
    index = {lab: i for i, lab in enumerate(labels)}
    keep = torch.tensor([int(v) in index for v in y.tolist()], dtype=torch.bool)
    if not keep.any():
        raise DataError(f"{dataset.name}: no {split} samples of the clone's classes {sorted(index)}")
    X, y = fit_to_shape(X[keep], cloned.input_shape), y[keep]
    want = torch.tensor([index[int(v)] for v in y.tolist()])
    correct = predict(cloned, X) == want
    n_old = sum(1 for lab in cloned.delta.labels if lab.model == "target")
    old = want < n_old
    ori = float(correct[old].float().mean()) if old.any() else float("nan")
    tar = float(correct[~old].float().mean()) if (~old).any() else float("nan")
    k = len(labels) - n_old
    names = [lab.name for lab in cloned.delta.labels]
    per_class = {names[i]: round(float(correct[want == i].float().mean()), 6) for i in range(len(labels)) if (want == i).any()}
    per_module, start = [], n_old
    for i, m in enumerate(cloned.delta.modules):
        sel = (want >= start) & (want < start + len(m.clone_classes))
        per_module.append({"module": i, "classes": names[start:start + len(m.clone_classes)],
                           "acc": round(float(correct[sel].float().mean()), 6) if sel.any() else None})
        start += len(m.clone_classes)
    return {"ori": round(ori, 6), "tar": round(tar, 6), "avg": round((n_old * ori + k * tar) / (n_old + k), 6),
            "n_old": n_old, "k": k, "samples": int(len(y)), "per_class": per_class, "per_module": per_module}
