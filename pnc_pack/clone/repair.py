"""Repair-finetuning of a received clone: adapters and classifier only, on a small local labelled dataset.

A clone can arrive damaged (quantised tensors, noise in transit) or be applied on a runtime where its accuracy
falls short. ``repair`` trains only ``cloned.trainable_parameters()`` (the adapters and the classifier) with
cross-entropy on the receiver's samples of the clone's classes (the target's classes included, so that the new
heads also learn what is not theirs); masks (fixed tensors, never parameters), the target and the sources stay
frozen (their state is hashed before and after: any change raises BuildError). Accuracy on the dataset's test
split is measured before and after. ``repaired_delta`` turns the result back into a delta that keeps every
reference and records the repair in its provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from pnc_pack.clone.convert import state_digest
from pnc_pack.errors import BuildError, DataError, UsageError
from pnc_pack.zoo.optim import make_adam


@dataclass
class RepairResult:
    samples: int
    epochs: int
    before: dict
    after: dict
    losses: list


def labelled_split(cloned, X: torch.Tensor, y: torch.Tensor, resize: bool = False,
                   name: str = "the repair data") -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the samples whose dataset label the clone predicts; relabel them to the clone's output indices. Images
    of another shape than the model's: DataError unless ``resize`` (pnc_pack.clone.evaluate.fitted)."""
    from pnc_pack.clone.evaluate import fitted

    labels = list(cloned.output_labels)
    index = {lab: i for i, lab in enumerate(labels)}
    keep = torch.tensor([int(v) in index for v in y.tolist()], dtype=torch.bool)
    if not keep.any():
        raise DataError(f"the dataset has no samples of the clone's classes {sorted(index)}")
    Xk = fitted(X[keep], cloned.input_shape, resize, name, getattr(cloned, "trained_on", None), cloned)
    yk = torch.tensor([index[int(v)] for v in y[keep].tolist()], dtype=torch.long)
    return Xk, yk


def _pick(X, y, samples: int | None, seed: int):
    if samples is None or samples >= len(y):
        return X, y
    g = torch.Generator().manual_seed(seed)
    # stratified: the same share of every class
    out = []
    classes = sorted(set(y.tolist()))
    per = max(1, samples // len(classes))
    for c in classes:
        idx = (y == c).nonzero().flatten()
        out.append(idx[torch.randperm(len(idx), generator=g)[:per]])
    idx = torch.cat(out).sort().values
    return X[idx], y[idx]


def repair(cloned, dataset, *, epochs: int = 8, samples: int | None = 300, lr: float = 3e-3, batch_size: int = 32,
           seed: int = 0, progress=None, resize: bool = False) -> RepairResult:
    """Fine-tune adapters + classifier of ``cloned`` on ``samples`` training images of ``dataset`` (of the model's
    input shape, or resized to it when ``resize``)."""
    from pnc_pack.clone.evaluate import batch_inputs, evaluate_delta_model

    if epochs < 1:
        raise UsageError("repair needs at least one epoch")
    X, y = labelled_split(cloned, *dataset.train, resize=resize, name=dataset.name)
    X, y = _pick(X, y, samples, seed)
    dev = next(cloned.parameters()).device
    X, y = X.to(dev), y.to(dev)  # once; batches are gathered on the device
    params = list(cloned.trainable_parameters())
    pretrained = [cloned.target, *dict.fromkeys(cloned.sources)]
    before_state = [state_digest(m) for m in pretrained]  # parameters and buffers (BatchNorm statistics)
    before = evaluate_delta_model(cloned, dataset, resize=resize)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = make_adam([{"params": params, "lr": lr}], dev)
    for p in params:
        p.requires_grad_(True)
    losses = []
    task = progress.add("repair", total=epochs) if progress is not None else None
    cloned.eval()  # pretrained BatchNorm statistics must not move: train in eval mode (gradients still flow)
    try:
        for _ in range(epochs):
            perm = torch.randperm(len(y), generator=g).to(dev)  # the CPU generator's draw, moved once
            step_losses, sizes = [], []
            for i in range(0, len(y), batch_size):
                idx = perm[i:i + batch_size]
                loss = F.cross_entropy(cloned(batch_inputs(cloned, X[idx])), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step_losses.append(loss.detach())
                sizes.append(len(idx))
            total = 0.0
            for v, k in zip(torch.stack(step_losses).tolist(), sizes):  # read once per epoch, summed as before
                total += v * k
            losses.append(round(total / len(y), 6))
            if task is not None:
                progress.advance(task)
    finally:
        cloned.eval()
        for p in params:
            p.requires_grad_(False)
    if [state_digest(m) for m in pretrained] != before_state:
        raise BuildError("repair changed a pretrained parameter or buffer: it must train adapters and the classifier "
                         "only")
    after = evaluate_delta_model(cloned, dataset, resize=resize)
    return RepairResult(samples=len(y), epochs=epochs, before=before, after=after, losses=losses)


class SignaturesDroppedWarning(UserWarning):
    """A repaired delta lost the signatures of the delta it came from: its bytes changed, so they no longer apply."""


def signatures_dropped_note(n: int, file: str = "FILE") -> str:
    return (f"{n} signature(s) of the input delta dropped: the repair changed its tensors, so they no longer verify; "
            f"sign the repaired delta again (pnc-pack sign {file} --key KEY, or pnc_pack.sign)")


def repaired_delta(cloned, result: RepairResult, data_spec: str):
    """The repaired clone as a delta: same references, masks and label map; new adapter/classifier tensors.

    It is unsigned: a signed input's signatures are dropped (its bytes changed), said by a
    :class:`SignaturesDroppedWarning`; sign it again."""
    import warnings

    d = cloned.to_delta()
    if d.signatures:
        warnings.warn(signatures_dropped_note(len(d.signatures)), SignaturesDroppedWarning, stacklevel=2)
    prov = dict(d.provenance)
    prov["repair"] = {"data": data_spec, "samples": result.samples, "epochs": result.epochs,
                      "avg_before": result.before.get("avg"), "avg_after": result.after.get("avg")}
    metrics = dict(d.metrics)
    metrics["after_repair"] = {k: v for k, v in result.after.items() if isinstance(v, (int, float))}
    return replace(d, provenance=prov, metrics=metrics, signatures=())
