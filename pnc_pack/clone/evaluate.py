"""Ori / Tar / Avg, as the paper defines them (PAPER.md §4).

Ori: accuracy on test images of the target's classes T_t; Tar: on test images of the cloned classes t_s; both
predicted over the clone's whole label set. Avg = (|T_t|·Ori + k·Tar) / (|T_t| + k), k = number of cloned classes
(the class-count-weighted mean the paper's numbers satisfy). Also per class and per module.

Per functionality (the supplementary's Table 3, for clones with several modules, or when ``detail=True``): the
target's classes are functionality "target" (its accuracy is Ori, Table 3's Acc-1) and module i's classes are
functionality "module i" (Acc-(i+2)). ``routing[a][b]`` is the share of the test images of functionality ``a``
predicted as one of functionality ``b``'s classes: the diagonal bounds each accuracy, and the off-diagonal says
where images go wrong, e.g. a module's images taken by another module (modules are trained against the target,
never against each other: pnc_pack.builder.multi).
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


def batch_inputs(model, x: torch.Tensor) -> torch.Tensor:
    """One batch as ``model`` (a zoo model or a ClonedNetwork: its target's) takes it: through the target's own
    image processor when it has one (hf-*: any size, uint8 or float; :meth:`prepare_images`), else as float."""
    t = getattr(model, "target", model)
    if getattr(t, "has_processor", False):
        return t.prepare_images(x)
    from pnc_pack.data.dataset import as_float

    return as_float(x)


@torch.inference_mode()
def logits(model, X: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """The model's outputs on ``X`` (at least one image), in batches, in eval mode, on the model's device (the
    images are moved there; each batch prepared by :func:`batch_inputs`); returned on the CPU."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model(batch_inputs(model, X[i:i + batch_size]).to(dev)) for i in range(0, len(X), batch_size)]
    return torch.cat(out).float().cpu()


def predict(model, X: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    return logits(model, X, batch_size).argmax(1) if len(X) else torch.empty(0, dtype=torch.long)


def fitted(X: torch.Tensor, input_shape, resize: bool, name: str, trained_on: str | None = None,
           model=None) -> torch.Tensor:
    """``X`` as the model takes it: unchanged (as float) when its image shape is the model's; else a DataError
    naming both shapes, unless ``resize`` or the data is the one the target was trained on (``trained_on``, from
    its config: training fitted it the same way). Then :func:`pnc_pack.data.fit_to_shape` (bilinear, channels
    repeated or averaged). Evaluating 8x8 digits on a model trained on 28x28 MNIST gives numbers about another
    task. A target with its own image processor (``model``'s, hf-*) takes images of any size: ``X`` is returned
    as it is (native size, uint8 kept) and each batch is prepared by the processor (:func:`batch_inputs`)."""
    t = getattr(model, "target", model)
    if getattr(t, "has_processor", False):
        return X
    have, want = tuple(int(v) for v in X.shape[1:]), tuple(int(v) for v in input_shape)
    if have == want:
        from pnc_pack.data.dataset import as_float

        return as_float(X)
    if not resize and name != trained_on:
        raise DataError(f"{name}: images are {'x'.join(map(str, have))} (C x H x W) but the model takes "
                        f"{'x'.join(map(str, want))}: use data of the model's shape, or ask for resizing "
                        "(--resize; resize=True in Python)")
    from pnc_pack.data import fit_to_shape

    return fit_to_shape(X, want)


def resized(dataset, input_shape):
    """``dataset`` with both splits fitted to ``input_shape`` (what ``--resize`` asks for), or itself when they
    already have it."""
    from dataclasses import replace

    if tuple(dataset.input_shape) == tuple(int(v) for v in input_shape):
        return dataset
    (X, y), (Xt, yt) = dataset.train, dataset.test
    return replace(dataset, train=(fitted(X, input_shape, True, dataset.name), y),
                   test=(fitted(Xt, input_shape, True, dataset.name), yt))


def labelled_split(cloned, dataset, split: str = "test", resize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of ``dataset``'s split whose label is one of the clone's outputs (of the clone's input shape, or
    resized to it when ``resize``), and the output index each should get."""
    labels = cloned.output_labels
    if labels is None:
        raise DataError("the clone does not know which dataset label each output is (output_labels unset)")
    X, y = getattr(dataset, split)
    index = {lab: i for i, lab in enumerate(labels)}
    keep = torch.tensor([int(v) in index for v in y.tolist()], dtype=torch.bool)
    if not keep.any():
        raise DataError(f"{dataset.name}: no {split} samples of the clone's classes {sorted(index)}")
    X, y = fitted(X[keep], cloned.input_shape, resize, dataset.name, getattr(cloned, "trained_on", None),
                  cloned), y[keep]
    return X, torch.tensor([index[int(v)] for v in y.tolist()])


def ori_tar_avg(predicted: torch.Tensor, want: torch.Tensor, n_old: int, k: int) -> tuple[float, float, float]:
    """Ori, Tar and Avg (fractions) of predicted output indices against the wanted ones; outputs below ``n_old`` are
    the target's classes, the ``k`` after them the cloned ones. NaN where a side has no test image."""
    correct, old = predicted == want, want < n_old
    ori = float(correct[old].float().mean()) if old.any() else float("nan")
    tar = float(correct[~old].float().mean()) if (~old).any() else float("nan")
    avg = (n_old * ori + k * tar) / (n_old + k) if k else ori  # no module: the target alone
    return ori, tar, avg


def evaluate_delta_model(cloned, dataset, split: str = "test", detail: bool | None = None,
                         resize: bool = False) -> dict:
    """Ori / Tar / Avg, per class and per module; per functionality and routing when ``detail`` (default: when
    the clone has several modules). Images of another shape than the model's: DataError unless ``resize``."""
    labels = cloned.output_labels
    X, want = labelled_split(cloned, dataset, split, resize)
    predicted = predict(cloned, X)
    correct = predicted == want
    n_old = sum(1 for lab in cloned.delta.labels if lab.model == "target")
    k = len(labels) - n_old
    ori, tar, avg = ori_tar_avg(predicted, want, n_old, k)
    names = [lab.name for lab in cloned.delta.labels]
    per_class = {names[i]: round(float(correct[want == i].float().mean()), 6)
                 for i in range(len(labels)) if (want == i).any()}
    per_module, start = [], n_old
    for i, m in enumerate(cloned.delta.modules):
        sel = (want >= start) & (want < start + len(m.clone_classes))
        per_module.append({"module": i, "classes": names[start:start + len(m.clone_classes)],
                           "acc": round(float(correct[sel].float().mean()), 6) if sel.any() else None})
        start += len(m.clone_classes)
    out = {"ori": round(ori, 6), "tar": round(tar, 6), "avg": round(avg, 6),
           "n_old": n_old, "k": k, "samples": int(len(want)), "per_class": per_class, "per_module": per_module}
    if detail or (detail is None and len(cloned.delta.modules) > 1):
        out.update(functionality_report(cloned.delta, want, predicted))
    return out


def functionalities(delta) -> list[tuple[str, int, int]]:
    """(name, first output, end output) of the target's classes and of each module's, in output order."""
    n_old = sum(1 for lab in delta.labels if lab.model == "target")
    out, start = [("target", 0, n_old)], n_old
    for i, m in enumerate(delta.modules):
        out.append((f"module {i}", start, start + len(m.clone_classes)))
        start += len(m.clone_classes)
    return out


def functionality_report(delta, want: torch.Tensor, predicted: torch.Tensor) -> dict:
    """Accuracy per functionality and the routing matrix (see the module's docs)."""
    names = [lab.name for lab in delta.labels]
    groups = functionalities(delta)
    rows, routing = [], {}
    for j, (name, lo, hi) in enumerate(groups):
        sel = (want >= lo) & (want < hi)
        n = int(sel.sum())
        row = {"name": name, "classes": names[lo:hi], "samples": n,
               "acc": round(float((predicted[sel] == want[sel]).float().mean()), 6) if n else None}
        if j:
            row["source"] = delta.modules[j - 1].source.short()
        rows.append(row)
        routing[name] = {other: (round(float(((predicted[sel] >= a) & (predicted[sel] < b)).float().mean()), 6)
                                 if n else None) for other, a, b in groups}
    return {"functionalities": rows, "routing": routing}
