"""The baselines of the PNC paper's main table (PAPER.md §5), plus a PEFT LoRA row the paper lacks.

Every method returns a :class:`Outcome`: a frozen network whose output ``i`` is dataset label ``labels[i]``, the
bytes a receiver must download to obtain it given the pretrained models it already holds, and the training wall time.
The bench (:mod:`tools.bench.paper`) evaluates every outcome the same way (:func:`score`): predicted dataset label
against true label, Ori on the test images of the target's classes T_t, Tar on those of the cloned classes t_s,
Avg = (|T_t|·Ori + k·Tar)/(|T_t| + k).

What each baseline does here (the paper's main text with the definitions was not available; PAPER.md §5):

- ``pretrained``: no merging. Ori = the target on T_t in its own label space; Tar = the source on t_s in *its* own
  label space (its |T_s| outputs). Nothing to download beyond the zoo; not one model.
- ``joint``: one network of the same architecture trained from scratch on the *full* training data of T_t ∪ t_s
  (per setting), same schedule as the zoo models. Download: the whole model.
- ``continual``: the target, head extended with k new rows (old rows copied, new rows default-initialised), every
  parameter fine-tuned on D_t only (``fraction`` of the training images of t_s, stratified) with cross-entropy over
  all |T_t|+k outputs. Download: the whole model.
- ``continual_kd``: the same plus LwF distillation: KL(softmax(M_t(x)/T) ‖ softmax(z_old(x)/T))·T² on the D_t inputs,
  z_old = the new model's |T_t| old-class logits, M_t the frozen original target; built-in T = 2, weight 1.
- ``ensemble`` (Direct Ensemble): no training; logits = [M_t(x), M_s(x)[t_s]] concatenated. Download: 0 bytes, but
  the receiver must hold the *whole* source model as well as the target (the PNC delta needs that too).
- ``lora`` / ``lora_kd``: the real ``peft`` library. LoRA (built-in r=8, alpha=2r, no dropout) on every Conv2d/Linear of the
  target's blocks, plus the extended head as ``modules_to_save`` (so the k new rows and the old rows are trainable
  and shipped); trained on D_t with CE (``lora``) or CE + the same LwF KD (``lora_kd``). The base weights never
  change. Download: ``adapter_model.safetensors`` + ``adapter_config.json`` as ``save_pretrained`` writes them.
- ``continual_kd_neg`` / ``lora_kd_neg`` (not in the paper): the KD rows trained on D_t plus the PNC builder's
  data-free negatives (pseudo old-class images made from D_t, labelled with the target's class), to tell how much
  of PNC's advantage comes from that trick rather than from cloning a frozen module.

Design choices where nothing is published (recorded per the house rules): fine-tuning schedules use Adam, batch 64,
lr 1e-3 (LoRA 5e-3: LoRA's low-rank updates start at zero and need a larger step to move in the same number of
steps), ``ft_epochs`` passes over D_t (default 10 in the bench: ~100 steps for S, ~300 for M, which converges CE on
D_t to ~0 for every fine-tuning row on MNIST). These built-in settings are replaced by the ones
``python -m tools.bench baselines_grid`` chose on a validation split when its result is at hand.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

KD_T = 2.0
KD_WEIGHT = 1.0
LORA_R = 8  # lora_alpha = 2r

DEFINITIONS = {
    "pretrained": "Pre-trained: the zoo models evaluated separately: target on T_t (Ori), source on t_s within its "
                  "own label space (Tar). Reference only, not a merged model.",
    "joint": "Joint + Full Set: one network of the same architecture trained from scratch on the full training data "
             "of T_t ∪ t_s (one per setting S/M), same schedule as the zoo models.",
    "continual": "Continual: the target with its head extended by k outputs, all parameters fine-tuned on D_t only "
                 "(the data fraction of the cloned classes) with cross-entropy.",
    "continual_kd": "Continual + KD: Continual plus LwF distillation of the original target's old-class outputs on "
                    "the D_t inputs (KL at temperature T, times a weight). No old-class data is used.",
    "ensemble": "Direct Ensemble: no training; the target's logits concatenated with the source's logits for the "
                "cloned classes. 0 bytes to download, but the receiver must hold the whole source model.",
    "lora": "PEFT LoRA (not in the paper): peft LoRA (rank r, alpha 2r) on every conv/linear layer of the target, the "
            "extended head as modules_to_save, CE on D_t. Base weights untouched.",
    "lora_kd": "PEFT LoRA + KD (not in the paper): the LoRA row plus the same LwF distillation as Continual + KD.",
    "continual_kd_neg": "Continual + KD + negatives (not in the paper): Continual + KD whose training set also holds "
                        "the PNC builder's data-free negatives (pnc_pack.builder.negatives.make_negatives with the "
                        "builder's default thresholds: transforms of the D_t images that the target calls one of its "
                        "classes and the source does not call a cloned class), labelled with the target's class: "
                        "does the builder's trick alone rescue fine-tuning?",
    "lora_kd_neg": "PEFT LoRA + KD + negatives (not in the paper): the LoRA + KD row trained with the same "
                   "negatives added to D_t.",
}


@dataclass
class Outcome:
    """A method's result before scoring: ``model(x) -> logits`` whose output i is dataset label ``labels[i]``."""

    model: nn.Module | None
    labels: list[int]
    bytes: int | None
    bytes_note: str
    train_s: float
    extra: dict = field(default_factory=dict)


@dataclass
class Task:
    """One setting: frozen target/source zoo models, their label lists, the classes to clone and D_t."""

    target: nn.Module
    target_labels: list[int]
    source: nn.Module
    source_labels: list[int]
    clone: list[int]
    X_dt: torch.Tensor  # D_t images, fitted to the target's input shape
    y_dt: torch.Tensor  # D_t dataset labels (in clone)
    seed: int = 0
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # the negatives, made once per task

    @property
    def k(self) -> int:
        return len(self.clone)


# -- scoring ------------------------------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: nn.Module, labels: Sequence[int], X: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Predicted dataset labels of ``X``."""
    lut = torch.tensor(list(labels), dtype=torch.int64)
    model.eval()
    dev = _device(model)
    out = [lut[model(X[s:s + batch].to(dev)).argmax(1).cpu()] for s in range(0, len(X), batch)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def accuracy(model: nn.Module, labels: Sequence[int], X: torch.Tensor, y: torch.Tensor) -> float:
    if len(y) == 0:
        return float("nan")
    return float((predict(model, labels, X) == y).float().mean())


def weighted_avg(ori: float, tar: float, n_old: int, k: int) -> float:
    """The paper's Avg: class-count-weighted mean (PAPER.md §4)."""
    return (n_old * ori + k * tar) / (n_old + k)


def score(outcome: Outcome, ori_set, tar_set, n_old: int, k: int) -> dict:
    """Ori/Tar/Avg in percent (test sets are (X, y) with dataset labels) plus bytes and training time, and two
    diagnostics of forgetting on the old classes' images: ``ori_to_new`` (% called one of the new classes) and
    ``ori_old_only`` (% right when the argmax is taken over the old classes' outputs alone)."""
    ori, diag = _ori_and_diagnostics(outcome.model, outcome.labels, *ori_set)
    tar = 100.0 * accuracy(outcome.model, outcome.labels, *tar_set)
    return {"ori": ori, "tar": tar, "avg": weighted_avg(ori, tar, n_old, k), "bytes": outcome.bytes,
            "bytes_note": outcome.bytes_note, "train_s": round(outcome.train_s, 3), **diag, **outcome.extra}


@torch.no_grad()
def _ori_and_diagnostics(model: nn.Module, labels: Sequence[int], X: torch.Tensor, y: torch.Tensor,
                         batch: int = 1024) -> tuple[float, dict]:
    if len(y) == 0:
        return float("nan"), {}
    lut = torch.tensor(list(labels), dtype=torch.int64)
    old = set(y.tolist())
    old_pos = torch.tensor([i for i, c in enumerate(labels) if int(c) in old], dtype=torch.int64)
    model.eval()
    dev = _device(model)
    right = right_old = to_new = 0
    for s in range(0, len(X), batch):
        z, yb = model(X[s:s + batch].to(dev)).float().cpu(), y[s:s + batch]
        pred = lut[z.argmax(1)]
        right += int((pred == yb).sum())
        to_new += sum(int(p) not in old for p in pred.tolist())
        right_old += int((lut[old_pos[z.index_select(1, old_pos).argmax(1)]] == yb).sum())
    n = len(y)
    return 100.0 * right / n, {"ori_to_new": round(100.0 * to_new / n, 3),
                               "ori_old_only": round(100.0 * right_old / n, 3)}


# -- helpers ------------------------------------------------------------------------------------------------------
def _device(model: nn.Module) -> torch.device:
    """Where ``model`` runs (its first parameter's device; the CPU when it has none). Inputs move there per batch,
    predictions come back to the CPU: the bench's data may stay on the CPU while a model runs on a GPU."""
    p = next(iter(model.parameters()), None)
    return torch.device("cpu") if p is None else p.device


def state_bytes(model: nn.Module) -> int:
    """Size of the whole model as model.safetensors (what save_pretrained writes)."""
    from pnc_pack.zoo.pretrained import weights_bytes

    return len(weights_bytes(model))


def extend_head(target: nn.Module, k: int, seed: int) -> nn.Module:
    """A trainable copy of ``target`` whose head has k more outputs (old rows copied, new rows default init)."""
    model = copy.deepcopy(target)
    old = model.head
    torch.manual_seed(seed)
    new = nn.Linear(old.in_features, old.out_features + k, bias=old.bias is not None).to(old.weight.device)
    with torch.no_grad():
        new.weight[: old.out_features] = old.weight
        if old.bias is not None:
            new.bias[: old.out_features] = old.bias
    model.head = new
    model.requires_grad_(True)
    return model


def kd_loss(student_old: torch.Tensor, teacher: torch.Tensor, T: float = KD_T) -> torch.Tensor:
    """Hinton/LwF distillation: KL(softmax(teacher/T) || softmax(student/T)) * T^2, batch mean."""
    return F.kl_div(F.log_softmax(student_old / T, 1), F.log_softmax(teacher / T, 1), log_target=True,
                    reduction="batchmean") * T * T


def fine_tune(model: nn.Module, params, X: torch.Tensor, y_pos: torch.Tensor, *, epochs: int, lr: float, seed: int,
              batch_size: int = 64, teacher: nn.Module | None = None, n_old: int = 0,
              kd_weight: float = KD_WEIGHT, kd_T: float = KD_T) -> list[float]:
    """Adam on CE(model(x), y_pos) [+ kd_weight·KD_T(model(x)[:, :n_old], teacher(x))]; returns per-epoch losses."""
    opt = torch.optim.Adam(params, lr=lr)
    dev = _device(model)
    gen = torch.Generator().manual_seed(seed)
    n = len(y_pos)
    history = []
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for s in range(0, n, batch_size):
                idx = perm[s:s + batch_size]
                xb, yb = X[idx.to(X.device)].to(dev), y_pos[idx.to(y_pos.device)].to(dev)
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                if teacher is not None:
                    with torch.no_grad():
                        t = teacher(xb)
                    loss = loss + kd_weight * kd_loss(logits[:, :n_old], t, kd_T)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            history.append(round(total / max(n, 1), 6))
    finally:
        torch.use_deterministic_algorithms(was, warn_only=True)
    model.eval()
    return history


def _positions(task: Task) -> torch.Tensor:
    """D_t labels as output positions of an extended head: clone[j] -> |T_t| + j."""
    lut = {c: len(task.target_labels) + j for j, c in enumerate(task.clone)}
    return torch.tensor([lut[int(v)] for v in task.y_dt.tolist()], dtype=torch.int64)


def _frozen(model: nn.Module) -> nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


# -- the methods --------------------------------------------------------------------------------------------------
class _SourceView(nn.Module):
    """Source logits restricted to the cloned classes' outputs."""

    def __init__(self, source: nn.Module, cols: Sequence[int]):
        super().__init__()
        self.source = source
        self.register_buffer("cols", torch.tensor(list(cols), dtype=torch.int64), persistent=False)

    def forward(self, x):
        return self.source(x).index_select(1, self.cols)


class DirectEnsemble(nn.Module):
    def __init__(self, target: nn.Module, source: nn.Module, cols: Sequence[int]):
        super().__init__()
        self.target = target
        self.view = _SourceView(source, cols)

    def forward(self, x):
        return torch.cat([self.target(x), self.view(x)], 1)


def direct_ensemble(task: Task) -> Outcome:
    cols = [task.source_labels.index(c) for c in task.clone]
    model = DirectEnsemble(task.target, task.source, cols)
    return Outcome(model, task.target_labels + task.clone, 0,
                   "0 (the receiver needs the whole source model as well as the target)", 0.0)


def builder_negatives(task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """The PNC builder's data-free negatives for D_t (images, target output position), made once per task."""
    if "negatives" in task.cache:
        return task.cache["negatives"]
    from pnc_pack.builder.config import BuildConfig
    from pnc_pack.builder.negatives import make_negatives, settings

    clone_idx = [task.source_labels.index(c) for c in task.clone]
    with torch.no_grad():
        x, y = make_negatives(task.X_dt, task.target, task.source, clone_idx, **settings(BuildConfig()),
                              gen=torch.Generator().manual_seed(task.seed), limit=4 * len(task.y_dt))
    task.cache["negatives"] = (x, y.to(torch.int64))
    return task.cache["negatives"]


def _training_set(task: Task, negatives: bool):
    X, y = task.X_dt, _positions(task)
    extra = {}
    if negatives:
        neg = builder_negatives(task)
        X, y = torch.cat([X, neg[0].to(X.device)]), torch.cat([y, neg[1].to(y.device)])
        extra["negatives"] = int(len(neg[1]))
    return X, y, extra


def continual(task: Task, *, epochs: int, kd: bool, lr: float = 1e-3, negatives: bool = False,
              kd_weight: float = KD_WEIGHT, kd_T: float = KD_T) -> Outcome:
    t0 = time.perf_counter()
    X, y, extra = _training_set(task, negatives)
    model = extend_head(task.target, task.k, task.seed)
    hist = fine_tune(model, model.parameters(), X, y, epochs=epochs, lr=lr, seed=task.seed,
                     teacher=task.target if kd else None, n_old=len(task.target_labels), kd_weight=kd_weight,
                     kd_T=kd_T)
    dt = time.perf_counter() - t0
    return Outcome(_frozen(model), task.target_labels + task.clone, state_bytes(model),
                   "whole fine-tuned model (model.safetensors)", dt, {"loss": hist[-1] if hist else None, **extra})


def lora_targets(model: nn.Module) -> list[str]:
    """Names of every Conv2d/Linear inside the blocks (not the head, which is trained whole)."""
    return [n for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and n.startswith("blocks.")]


def lora(task: Task, *, epochs: int, kd: bool, lr: float = 5e-3, r: int = LORA_R, alpha: int | None = None,
         negatives: bool = False, kd_weight: float = KD_WEIGHT, kd_T: float = KD_T) -> Outcome:
    from peft import LoraConfig, get_peft_model

    t0 = time.perf_counter()
    X, y, extra = _training_set(task, negatives)
    base = extend_head(task.target, task.k, task.seed)
    base.requires_grad_(False)
    alpha = 2 * r if alpha is None else alpha  # alpha/r = 2 at every rank (r=8: alpha 16, peft's usual pairing)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=lora_targets(base),
                     modules_to_save=["head"], init_lora_weights=True)
    torch.manual_seed(task.seed)
    pm = get_peft_model(base, cfg)
    params = [p for p in pm.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in params)
    hist = fine_tune(pm, params, X, y, epochs=epochs, lr=lr, seed=task.seed,
                     teacher=task.target if kd else None, n_old=len(task.target_labels), kd_weight=kd_weight,
                     kd_T=kd_T)
    dt = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="pnc-bench-lora-") as tmp:
        pm.save_pretrained(tmp)
        files = {p.name: p.stat().st_size for p in Path(tmp).iterdir() if p.is_file()}
    size = files.get("adapter_model.safetensors", 0) + files.get("adapter_config.json", 0)
    return Outcome(_frozen(pm), task.target_labels + task.clone, size,
                   "adapter_model.safetensors + adapter_config.json", dt,
                   {"loss": hist[-1] if hist else None, "trainable_params": n_train, "adapter_files": files, **extra})


def joint(dataset, arch: str, classes: Sequence[int], *, epochs: int, seed: int, label_smoothing: float = 0.0,
          arch_args: dict | None = None, device=None) -> Outcome:
    from pnc_pack.zoo.training import train_model

    t0 = time.perf_counter()
    model, _cfg = train_model(arch, arch_args, dataset, list(classes), epochs=epochs, seed=seed,
                              label_smoothing=label_smoothing, device=device)
    model.to(device or "cpu")
    dt = time.perf_counter() - t0
    return Outcome(model, list(classes), state_bytes(model), "whole model (model.safetensors)", dt)


def pretrained_scores(task: Task, ori_set, tar_set) -> dict:
    """The Pre-trained row: each zoo model on its own classes, in its own label space."""
    ori = 100.0 * accuracy(task.target, task.target_labels, *ori_set)
    tar = 100.0 * accuracy(task.source, task.source_labels, *tar_set)
    return {"ori": ori, "tar": tar, "avg": weighted_avg(ori, tar, len(task.target_labels), task.k), "bytes": None,
            "bytes_note": "not a merged model (the two zoo models side by side)", "train_s": 0.0}


def run_all(task: Task, dataset, arch: str, ori_set, tar_set, *, ft_epochs: int, joint_epochs: int,
            joint_label_smoothing: float = 0.0, methods: Sequence[str] | None = None, log=print,
            params: dict | None = None, device=None) -> dict:
    """Score every non-PNC method on one task; returns {method: score dict}. ``params``: {method: settings} for
    the fine-tuning rows (missing ones take :func:`tools.bench.baselines_grid.default_params`)."""
    from tools.bench.baselines_grid import TUNABLE, default_params, run_method

    n_old, k = len(task.target_labels), task.k
    want = list(methods) if methods is not None else list(DEFINITIONS)
    # Joint uses the target's architecture arguments (image size, width, ...) with its own number of classes
    same_args = {k: v for k, v in dict(getattr(task.target, "arch_args", {})).items() if k != "num_classes"}
    rows: dict[str, dict] = {}
    builders = {
        "joint": lambda: joint(dataset, arch, task.target_labels + task.clone, epochs=joint_epochs, seed=task.seed,
                               label_smoothing=joint_label_smoothing, arch_args=same_args, device=device),
        "ensemble": lambda: direct_ensemble(task),
        **{m: (lambda m=m: run_method(task, m, {**default_params(m, ft_epochs), **(params or {}).get(m, {})}))
           for m in TUNABLE},
    }
    for name in want:
        if name == "pretrained":
            rows[name] = pretrained_scores(task, ori_set, tar_set)
        else:
            try:
                rows[name] = score(builders[name](), ori_set, tar_set, n_old, k)
            except RuntimeError as exc:  # a row that fails is reported as not run, the other rows still are
                rows[name] = {"ori": None, "tar": None, "avg": None, "bytes": None, "bytes_note": "",
                              "train_s": None, "note": f"not run: {exc}"}
                log(f"  {name:<14} not run: {exc}")
                continue
        r = rows[name]
        log(f"  {name:<14} Ori {r['ori']:6.2f}  Tar {r['tar']:6.2f}  Avg {r['avg']:6.2f}  "
            f"bytes {r['bytes']}  train {r['train_s']:.1f}s")
    return rows


def main(argv=None) -> int:
    """``python -m tools.bench baselines``: print the baseline definitions (the runs are in ``paper``)."""
    print(json.dumps(DEFINITIONS, indent=2, ensure_ascii=False))
    print("run them with: python -m tools.bench paper --help")
    return 0
