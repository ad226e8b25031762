"""build_clone: the whole PNC method, from two pretrained models and samples of the classes to clone to a delta."""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path

import torch

from pnc_pack import devices
from pnc_pack.builder import search as S
from pnc_pack.builder.config import BuildConfig
from pnc_pack.builder.negatives import Novelty, make_negatives, patch_masked
from pnc_pack.builder.negatives import settings as negative_settings
from pnc_pack.builder.surrogate import fit_local_models, perturb, random_masks, source_logits, surrogate_outputs
from pnc_pack.errors import BuildError, DataError, UsageError
from pnc_pack.format.delta import CloneDelta, ClonedModule, LabelEntry, Mask
from pnc_pack.refs import ModelRef, ResolvedModel, is_hub_spec


def resolve(model) -> tuple[Path, ModelRef]:
    """A model the builder was given -> (folder, pinned ModelRef).

    The builder takes local folders, or :class:`~pnc_pack.refs.ResolvedModel` made at the API edge
    (:func:`pnc_pack.api.resolve_model` turns ``hf://`` specs into those); it never talks to the Hub itself.
    """
    from pnc_pack.zoo.pretrained import local_ref

    if isinstance(model, ResolvedModel):
        return Path(model.folder), model.ref
    if is_hub_spec(model):
        raise UsageError(f"{model}: the builder takes model folders; hf:// specs are resolved by pnc_pack.build_clone "
                         "(pnc_pack.api)")
    return Path(model), local_ref(model)


def _split(y: torch.Tensor, holdout: float, gen: torch.Generator):
    tr, ho = [], []
    for c in sorted(set(y.tolist())):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_ho = max(1, int(round(holdout * len(idx)))) if len(idx) > 1 else 0
        ho.append(idx[:n_ho])
        tr.append(idx[n_ho:])
    return torch.cat(tr).sort().values, torch.cat(ho).sort().values


def d_t_images(dataset, clone_classes, cfg: BuildConfig, seed: int):
    """D_t's images as the dataset holds them (native size, uint8 or float) and their dataset labels."""
    from pnc_pack.data import select_classes, take_fraction

    X, y = select_classes(*dataset.train, clone_classes)
    X, y = take_fraction(X, y, cfg.data_fraction, seed)
    if len(y) < 2 * len(clone_classes):
        raise DataError(f"only {len(y)} samples of classes {clone_classes}: too few to clone from")
    return X, y


def split_d_t(dataset, clone_classes, cfg: BuildConfig, seed: int, input_shape):
    """D_t as the builder draws it: its images (fitted to ``input_shape``, or prepared by the model given there:
    its ``prepare_images``), their cloned-class index 0..k-1, the training and held-out indices, and the generator
    that drew the split (the builder goes on drawing from it)."""
    from pnc_pack.data import fit_to_shape

    X, y = d_t_images(dataset, clone_classes, cfg, seed)
    X = input_shape.prepare_images(X) if hasattr(input_shape, "prepare_images") else fit_to_shape(X, input_shape)
    y = torch.tensor([clone_classes.index(int(v)) for v in y.tolist()])
    gen = torch.Generator().manual_seed(seed)
    tr, ho = _split(y, cfg.holdout, gen)
    return X, y, tr, ho, gen


def prepare(source, target, src_cfg, tgt_cfg, dataset, clone_classes, cfg: BuildConfig, seed: int, progress=None,
            precision: str = "fp32", exemplars=None):
    """D_t, its held-out split, the local model set G and the negatives: everything frozen, computed once, on the
    models' device (random draws stay on the CPU generator, so every device draws the same ones). ``exemplars``:
    (images, target class) of real target-class images, added to the training negatives
    (:mod:`pnc_pack.builder.exemplars`)."""
    labels = src_cfg.labels
    missing = [c for c in clone_classes if c not in labels]
    if missing:
        raise UsageError(f"classes {missing} are not classes of the source (it has {labels})")
    if any(c in tgt_cfg.labels for c in clone_classes):
        raise UsageError(f"classes {[c for c in clone_classes if c in tgt_cfg.labels]} are already target classes")
    clone_idx = [labels.index(c) for c in clone_classes]
    dev = next(target.parameters()).device
    X, y, tr, ho, gen = split_d_t(dataset, clone_classes, cfg, seed, target)
    X, y = X.to(dev), y.to(dev)
    b = random_masks(len(y), cfg.masks_per_anchor, cfg.grid, cfg.mask_rate, gen).to(dev)
    if target.has_processor or source.has_processor:  # each model prepares the dataset's own images its own way
        xs = source.prepare_images(d_t_images(dataset, clone_classes, cfg, seed)[0]).to(dev)
    else:  # zoo pairs: the target's fitted images, fitted again when the shapes differ (the bytes as before)
        xs = source_input(source, X)
    ys = source_logits(source, xs, b, cfg.grid)
    theta, r2 = fit_local_models(b, ys, cfg.kernel_width, cfg.ridge)
    g = surrogate_outputs(b, theta)[..., clone_idx]
    if cfg.neg_weight == 0 or not cfg.uses("neg"):  # no negatives: none are made
        nx, ny, nxh, nyh = X[:0], y[:0], X[:0], y[:0]
    else:
        seen_by_source = _SourceOnTarget(source, target)
        novelty = None if cfg.neg_novelty is None else Novelty(seen_by_source.features, X[tr], X[ho], cfg.neg_novelty)
        neg = dict(negative_settings(cfg), gen=gen, limit=4 * len(y), n_old=len(tgt_cfg.labels), novelty=novelty)
        masks = dict(copies=cfg.neg_masks, grid=cfg.grid, rate=cfg.mask_rate, gen=gen)
        nx, ny = patch_masked(*make_negatives(X[tr], target, seen_by_source, clone_idx, **neg), **masks)
        nxh, nyh = patch_masked(*make_negatives(X[ho], target, seen_by_source, clone_idx, **neg), **masks)
    info_ex = {}
    if exemplars is not None:
        from pnc_pack.builder.exemplars import as_negatives

        ex, ey = as_negatives(exemplars[0].to(dev), exemplars[1].to(dev), len(nx), cfg, seed)
        info_ex = {"negatives_data_free": int(len(nx)), "negatives_exemplars": int(len(ex))}
        nx, ny = torch.cat([nx, ex]), torch.cat([ny, ey])
    px, py, pg = pool(X[tr], y[tr], b[tr], g[tr], cfg.pool_size, cfg.grid, gen)
    hx, hy, hg = pool(X[ho], y[ho], b[ho], g[ho], max(1, cfg.pool_size // 4), cfg.grid, gen)
    p = S.Problem(target, source, clone_idx, len(tgt_cfg.labels), px, py, pg, hx, hy, hg, nx, ny, nxh, nyh, X[ho],
                  precision=precision)
    info = {"anchors": int(len(tr)), "held_out": int(len(ho)), "surrogate_r2": round(r2, 4),
            "negatives": int(len(nx)), "negatives_held_out": int(len(nxh)), **info_ex}
    return p, info


def pool(x, y, b, g, size: int, grid: int, gen: torch.Generator):
    """A fixed pool of perturbed samples: every (anchor, mask) pair when they fit in ``size``, else a random
    subset that always keeps each anchor's unperturbed image (mask 0)."""
    n, per = b.shape[:2]
    if n * per <= size:  # indices on the CPU (drawn from ``gen``), gathered on the data's device
        a, m = torch.arange(n).repeat_interleave(per), torch.arange(per).repeat(n)
    else:
        extra = size - n
        flat = torch.randperm(n * (per - 1), generator=gen)[:max(0, extra)].sort().values
        a = torch.cat([torch.arange(n), flat // (per - 1)])
        m = torch.cat([torch.zeros(n, dtype=torch.long), 1 + flat % (per - 1)])
    xs = torch.cat([perturb(x[a[i:i + 4096]], b[a[i:i + 4096], m[i:i + 4096]], grid) for i in range(0, len(a), 4096)])
    return xs, y[a], g[a, m]


def source_input(source, x):
    """Images of the target's input shape as the source takes them: unchanged when the shapes agree and the source
    has no image processor of its own, else through its ``prepare_images``."""
    same = tuple(x.shape[1:]) == tuple(source.input_shape) and not source.has_processor
    return x if same else source.prepare_images(x)


class _SourceOnTarget(torch.nn.Module):
    """The source applied to images in the target's input shape (heterogeneous pairs)."""

    def __init__(self, source, target):
        super().__init__()
        self.source = source

    def _fit(self, x):
        return source_input(self.source, x)

    def forward(self, x):
        return self.source(self._fit(x))

    def features(self, x):
        return self.source.features(self._fit(x))

    @property
    def head(self):
        return self.source.head


def train_position(p: S.Problem, cfg: BuildConfig, seed: int, R: int, progress=None, task=None):
    """One insertion position R from fresh, seeded by (seed, R) alone: (branch, held-out report)."""
    torch.manual_seed(seed * 1009 + R)
    gen = torch.Generator().manual_seed(seed * 7919 + R)
    br = S.fresh_branch(p, R, cfg)
    S.train(p, br, cfg, cfg.steps, gen, progress, task)
    report = S.held_out_loss(p, br, cfg)
    if br.scores:
        report["mask_density_soft"] = round(float(torch.cat([(v > 0).float() for v in br.scores.values()]).mean()), 4)
    return br, report


def search_module(p: S.Problem, cfg: BuildConfig, seed: int, progress=None,
                  exemplars_ho=None) -> tuple[S.Branch, dict]:
    """SUPP Alg. 1: R = L-1 down to 0, fresh A, F_c, M at each; R* by held-out loss; binarise; re-tune.
    ``exemplars_ho``: held-out exemplar images, which then set the calibration (:mod:`pnc_pack.builder.exemplars`)."""
    L = p.target.num_blocks
    positions = list(range(L - 1, -1, -1)) if cfg.search and cfg.insert else [0]
    if cfg.positions is not None:
        positions = [r for r in positions if r in cfg.positions]
        if not positions:
            raise UsageError(f"positions {list(cfg.positions)} are outside 0..{L - 1}")
    task = progress.add("PNC search", total=len(positions) * cfg.steps + cfg.retune_steps) if progress else None
    from pnc_pack.builder.distributed import active

    runner = active()  # the ranks of a torch.distributed build (builder/distributed.py), or None: here, in order
    if runner is not None:  # leaves the global RNG as the loop below would
        branches, report = runner.positions(p, cfg, seed, positions, progress, task)
    else:
        branches, report = {}, {}
        for R in positions:
            branches[R], report[R] = train_position(p, cfg, seed, R, progress, task)
    best = min(positions, key=lambda r: (report[r]["total"], -r))
    br = branches[best]
    if br.scores:
        br.binary = S.binarize(br)
    S.train(p, br, cfg, cfg.retune_steps, torch.Generator().manual_seed(seed * 31 + 7), progress, task)
    final = S.held_out_loss(p, br, cfg)
    if not all(torch.isfinite(torch.tensor(v)) for v in final.values()):
        raise BuildError(f"training diverged (held-out loss {final})")
    out = {"loss_per_R": {str(r): report[r] for r in sorted(report)}, "R": best, "final_held_out": final}
    recall = cfg.recall(p.k) if cfg.uses("cal") else None
    if recall is not None and p.anchors_ho is not None and len(p.anchors_ho):
        if exemplars_ho is not None and len(exemplars_ho):
            from pnc_pack.builder.exemplars import calibrate

            out["calibration"] = calibrate(p, br, exemplars_ho)
        else:
            out["calibration"] = S.calibrate(p, br, recall)
    return br, out


def to_module(p: S.Problem, br: S.Branch, source_ref, clone_idx) -> tuple[ClonedModule, dict]:
    from pnc_pack.clone.convert import to_raw

    masks = tuple(Mask.from_bools(n, [bool(v) for v in m.tolist()]) for n, m in sorted((br.binary or {}).items()))
    module = ClonedModule(
        source=source_ref, source_blocks=p.source.num_blocks, target_position=br.R, source_position=br.R_s,
        clone_classes=tuple(clone_idx), masks=masks, adapter_kind="bridge",
        adapter_args={"in_shape": list(br.adapter.in_shape), "out_shape": list(br.adapter.out_shape)},
        adapter={k: to_raw(v) for k, v in br.adapter.state_dict().items()},
    )
    head = {k: to_raw(v) for k, v in br.head.state_dict().items()}
    return module, head


def build_clone(target, source, dataset, clone_classes, *, seed: int = 0, eval_data=None,
                config: BuildConfig | None = None, progress=None, device=None, precision: str = "fp32",
                deterministic: bool = False, exemplars=None, **overrides) -> CloneDelta:
    """Run Partial Network Cloning and return the clone delta (see :mod:`pnc_pack.builder`).

    ``target`` / ``source``: model folders or :class:`~pnc_pack.refs.ResolvedModel` (``pnc_pack.build_clone``
    resolves ``hf://REPO[@REV]`` specs, pinned at build time, and calls this). ``dataset``: a
    Dataset or spec; only the training samples of ``clone_classes`` (dataset labels, taken from the source's
    classes) are used, a ``data_fraction`` of them. ``eval_data``: a Dataset or spec whose test split gives the
    metrics stored in the delta. ``device``: auto (default: cuda when available), cpu, cuda or cuda:N;
    ``precision``: fp32 or bf16 (autocast); ``deterministic``: torch.use_deterministic_algorithms during the build
    (:mod:`pnc_pack.devices`; all three are recorded in the provenance). On the CPU, same inputs and seed give the
    same delta, byte for byte (docs/devices.md says what holds on CUDA). ``exemplars``: opt-in, a Dataset or spec
    whose *training* images of the target's classes, ``exemplars_per_class`` of each, join the negatives
    (:mod:`pnc_pack.builder.exemplars`; recorded in the provenance).
    """
    from pnc_pack.clone.convert import state_digest
    from pnc_pack.clone.evaluate import evaluate_delta_model
    from pnc_pack.clone.model import ClonedNetwork
    from pnc_pack.data import load_dataset
    from pnc_pack.devices import check_precision, resolve_device
    from pnc_pack.zoo.pretrained import load_pretrained

    dev, precision = resolve_device(device), check_precision(precision)
    cfg = config or BuildConfig()
    if overrides:
        BuildConfig.with_overrides(**overrides)  # names every unknown setting
        cfg = replace(cfg, **overrides)
    clone_classes = [int(c) for c in clone_classes]
    if not clone_classes or len(set(clone_classes)) != len(clone_classes):
        raise UsageError(f"clone classes must be distinct and at least one, got {clone_classes}")
    from pnc_pack.builder import exemplars as E

    exemplars = E.check(exemplars, cfg.exemplars_per_class, cfg)
    src_dir, src_ref = resolve(source)
    tgt_dir, tgt_ref = resolve(target)
    src, src_cfg = load_pretrained(src_dir, src_ref)
    tgt, tgt_cfg = load_pretrained(tgt_dir, tgt_ref)
    if isinstance(dataset, str):
        dataset = load_dataset(dataset)
    ex = ex_record = ex_ho = None
    if exemplars is not None:  # drawn before any long work: a class with too few images fails here
        *ex, ex_record = E.draw(exemplars, list(tgt_cfg.labels), cfg.exemplars_per_class, seed, tgt.input_shape)
        if cfg.exemplar_calibration and cfg.uses("cal"):
            ex0, ey0, ex_ho, _ = E.split(*ex, cfg.holdout)
            ex, ex_record = (ex0, ey0), {**ex_record, "held_out_for_calibration": int(len(ex_ho))}
    before = state_digest(src), state_digest(tgt)
    src.to(dev), tgt.to(dev)
    with devices.out_of_memory(dev), devices.deterministic(deterministic):
        torch.manual_seed(seed)
        p, info = prepare(src, tgt, src_cfg, tgt_cfg, dataset, clone_classes, cfg, seed, progress, precision, ex)
        br, found = search_module(p, cfg, seed, progress, ex_ho)
        module, head = to_module(p, br, src_ref, p.clone_idx)
        p.frozen.clear()  # the cached activations are not needed past here
    if (state_digest(src), state_digest(tgt)) != before:
        raise BuildError("a pretrained parameter changed during the build (this is a bug)")
    labels = tuple(LabelEntry("target", i, c["name"]) for i, c in enumerate(tgt_cfg.classes))
    labels += tuple(LabelEntry("source:0", j, src_cfg.classes[j]["name"]) for j in p.clone_idx)
    kept = sum(m.kept for m in module.masks)
    filters = sum(m.filters for m in module.masks)
    metrics = {"R": found["R"], "R_s": br.R_s, "loss_per_R": found["loss_per_R"],
               "final_held_out": found["final_held_out"], **{k: found[k] for k in ("calibration",) if k in found},
               "mask_density": round(kept / filters, 4) if filters else 1.0,
               **info}
    delta = CloneDelta(
        target=tgt_ref, target_blocks=tgt.num_blocks, modules=(module,), classifier_kind="target-head-linear",
        classifier_args={"num_outputs": len(labels), "num_old": len(tgt_cfg.labels)},
        classifier={f"new.0.{k}": v for k, v in head.items()}, labels=labels,
        provenance={**_provenance(cfg, seed, dataset, clone_classes),
                    **devices.provenance(dev, precision, deterministic),
                    **({"exemplars": ex_record} if ex_record else {})}, metrics=metrics,
    )
    if eval_data is not None:
        ev = load_dataset(eval_data) if isinstance(eval_data, str) else eval_data
        cloned = ClonedNetwork.from_delta(delta, tgt, [src]).to(dev)
        cloned.output_labels = list(tgt_cfg.labels) + [src_cfg.labels[j] for j in p.clone_idx]
        result = evaluate_delta_model(cloned, ev, resize=True)  # as D_t: the builder fits data to its models
        result.pop("per_module", None)
        delta = replace(delta, metrics={**metrics, "eval": {"data": ev.name, **result}})
    return delta


def _provenance(cfg: BuildConfig, seed: int, dataset, clone_classes) -> dict:
    from pnc_pack.version import __version__

    out = {"builder": "pnc-pack", "method": "partial-network-cloning", "config": cfg.to_dict(), "seed": seed,
           "data": dataset.name, "clone_classes": list(clone_classes),
           "versions": {"pnc_pack": __version__, "torch": torch.__version__.split("+")[0],
                        "python": platform.python_version()}}
    if getattr(dataset, "files", None):  # data from the Hub: its repo, commit and each file's sha256
        out["data_files"] = dataset.files
    return out


def fresh_delta(target, source, R: int, target_ref, source_ref, clone_idx=(0,), seed: int = 0) -> CloneDelta:
    """A structurally complete delta with *untrained* parts (identity adapter, random classifier, alternate-filter
    masks) at position R: for benchmarks of bytes and times, and for exactness tests, where accuracy is beside
    the point."""
    torch.manual_seed(seed)
    empty = torch.empty(0)
    p = S.Problem(target, source, list(clone_idx), target.num_classes, *([empty] * 10))
    br = S.fresh_branch(p, R, BuildConfig())
    br.binary = {n: (torch.arange(len(s)) % 2 == 0).float() for n, s in br.scores.items()}
    with torch.no_grad():
        br.head.weight.normal_()
    module, head = to_module(p, br, source_ref, p.clone_idx)
    labels = tuple(LabelEntry("target", i, str(i)) for i in range(target.num_classes))
    labels += tuple(LabelEntry("source:0", j, f"s{j}") for j in p.clone_idx)
    return CloneDelta(target_ref, target.num_blocks, (module,), "target-head-linear",
                      {"num_outputs": len(labels), "num_old": target.num_classes},
                      {f"new.0.{k}": v for k, v in head.items()}, labels)
