"""BuildConfig: every setting of the PNC builder, with its default and a one-line help (``settings_help``).

Paper settings (SUPP Tab. 1): 100 masks per anchor ("Aug Num"), masking rate 0.3, kernel width 0.25, the data
fraction (0.1 on MNIST), the search R = L-1 down to 0 with fresh adapter / classifier / mask at each step.

[INFERRED] choices (PAPER.md §3), made here:
- grid H = 4 (7x7-pixel patches on MNIST), each patch hidden with probability ``mask_rate``; the first mask of
  every anchor is all-ones (LIME/ZEST); hidden patches take their own mean colour (SUPP Eq. 2).
- kernel Π_b = sqrt(exp(-d²/σ²)), d = cosine distance of b to the all-ones vector (LIME); weighted ridge least
  squares with an intercept, λ = ``ridge`` (LIME's Ridge), on the source's raw logits (ZEST).
- the mask: a real score per filter of the source's blocks [R_s:L_s], mask = sigmoid(score), initialised at
  ``mask_init`` (keep everything), binarised at 0.5 after the search, with an L1 pressure ``sparsity`` (an
  addition: without it nothing is pruned, PAPER.md §8).
- L_kd is Hinton KD (``temperature``) over the cloned classes' logits against G; L_ins's second KD term (old-class
  logits vs M_t) is identically zero here, those logits *are* M_t's, so it is not computed.
- additions that make routing work without old-class data (PAPER.md §8: distillation alone reproduces Direct
  Ensemble): cross-entropy on the perturbed D_t samples over the whole label set (``ce_weight``), and data-free
  negatives (``neg_weight``, ``negatives``, ``neg_novelty``, ``neg_masks``; :mod:`pnc_pack.builder.negatives`)
  on which the clone must predict the target's class.
- R* = argmin of the held-out loss on a stratified ``holdout`` share of the anchors (never trained on); then
  adapter and classifier are re-tuned for ``retune_steps`` with the binary masks.
- routing calibration (an addition): the new classes' biases are shifted by one common amount so that a share
  ``route_recall`` (one cloned class) or ``route_recall_multi`` (several) of the held-out anchors has its largest
  new logit above the largest target logit. Training alone leaves the operating point wherever the negatives'
  weight puts it; this sets it from data the builder has, and it is what keeps Ori near the target's.
- Adam (``lr``, ``mask_lr``), ``steps`` per position (batches of ``batch_size``): a budget, not epochs.
- ``objective="paper"``: L_loc + the paper's KD terms only; ``insert`` / ``localize`` false: the two ablations.

Why each default has its value, and what ``objective`` and the ablations are (measurements with their commands,
results files and data split): docs/builder-notes.md. The defaults are part of every delta's provenance
(``to_dict``; ``LATE`` settings only when not at their default): changing one changes the bytes a build writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from pnc_pack.errors import UsageError

NEGATIVES = ("typical", "transforms", "inversion", "both")
OBJECTIVES = ("pnc", "paper", "paper+ce", "paper+ce+neg", "paper+ce+neg+cal")
# Settings added after deltas were first written: ``to_dict`` (the provenance) names them only when they differ from
# these defaults, so a build with the default settings writes the same bytes as before they existed.
LATE = {"objective": "pnc", "insert": True, "exemplars_per_class": 0, "exemplar_calibration": True}


def _setting(default, text: str):
    """A BuildConfig field: its default and its one-line help (``pnc-pack build --list-settings`` shows both)."""
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class BuildConfig:
    data_fraction: float = _setting(0.1, "Share of the to-be-cloned classes' training samples used as D_t (paper: 0.1 "
                                         "on MNIST).")
    grid: int = _setting(4, "Patch grid H: masks hide patches of an H x H grid (4: 7x7-pixel patches on MNIST).")
    masks_per_anchor: int = _setting(100, "Random patch masks per D_t anchor (the paper's 'Aug Num'); the first one "
                                          "shows every patch.")
    mask_rate: float = _setting(0.3, "Probability that a patch is hidden in a random mask (paper: 0.3).")
    kernel_width: float = _setting(0.25, "Width σ of the LIME kernel sqrt(exp(-d²/σ²)) weighting each mask by its "
                                         "distance to the all-ones mask.")
    ridge: float = _setting(1e-2, "Ridge λ of the weighted least-squares fit of the local model set.")
    holdout: float = _setting(0.2, "Stratified share of the D_t anchors held out (never trained on): picks R* and "
                                   "sets the routing calibration.")
    steps: int = _setting(200, "Adam steps per insertion position (a fixed budget, not epochs).")
    pool_size: int = _setting(20000, "Perturbed samples kept for training; their frozen activations are computed "
                                     "once per position.")
    retune_steps: int = _setting(100, "Steps re-tuning adapter and classifier with the binarised masks after the "
                                      "search.")
    batch_size: int = _setting(128, "Perturbed samples per step (and as many negatives).")
    lr: float = _setting(1e-3, "Adam learning rate of the adapter and the classifier.")
    mask_lr: float = _setting(5e-2, "Adam learning rate of the mask scores.")
    mask_init: float = _setting(3.0, "Initial mask score; the mask is sigmoid(score), so 3.0 (about 0.95) starts by "
                                     "keeping every filter.")
    sparsity: float = _setting(0.05, "Weight of the L1 pressure on the masks (without it nothing is pruned).")
    temperature: float = _setting(4.0, "Temperature of the distillation term L_kd on the cloned classes' logits.")
    loc_weight: float = _setting(1.0, "Weight of L_loc: the masked source's cloned-class logits against the local "
                                      "model set G.")
    kd_weight: float = _setting(1.0, "Weight of L_kd: the clone's new-class logits distilled towards G (two or more "
                                     "cloned classes).")
    ce_weight: float = _setting(1.0, "Weight of L_ce: cross-entropy of the whole output on perturbed D_t samples "
                                     "towards their cloned class.")
    neg_weight: float = _setting(3.0, "Weight of L_neg: cross-entropy on the data-free negatives towards the "
                                      "target's class (0: no negatives).")
    neg_target_conf: float = _setting(0.9, "A negative is kept only when the frozen target's top softmax is at least "
                                           "this.")
    neg_source_max: float = _setting(0.5, "A negative is kept only when the source's softmax mass on the cloned "
                                          "classes is at most this (or neg_novelty lets it past).")
    neg_novelty: float | None = _setting(0.99, "Also keep negatives the source calls cloned when farther from D_t "
                                               "than this quantile of the held-out anchors' distances (none: off).")
    neg_masks: int = _setting(0, "Copies of every negative under random patch masks, as D_t's samples get (0: clean "
                                 "only).")
    negatives: str = _setting("typical", "Negatives generator: typical | transforms | inversion | both "
                                         "(pnc_pack.builder.negatives).")
    inversion_copies: int = _setting(3, "Inverted images per D_t image (negatives=inversion or both).")
    inversion_steps: int = _setting(30, "Adam steps on the pixels of each inverted image (negatives=inversion or "
                                        "both).")
    route_recall: float | None = _setting(0.95, "Share of held-out D_t anchors routed to the cloned class after "
                                                "calibration, one cloned class (none: no calibration).")
    route_recall_multi: float | None = _setting(0.97, "Share of held-out D_t anchors routed to the cloned classes "
                                                      "after calibration, two or more cloned classes (none: off).")
    search: bool = _setting(True, "Search the insertion position; false: R = 0, all else learned as usual.")
    localize: bool = _setting(True, "Learn the filter mask and L_loc; false: neither (the 'PNC w/o Local' "
                                    "ablation).")
    positions: tuple[int, ...] | None = _setting(None, "Restrict the search to these target positions, e.g. 0,1 "
                                                       "(none: all).")
    objective: str = _setting("pnc", "Training objective: pnc (the builder's: L_loc, new-class KD, CE, negatives, "
                                     "calibration) | paper (L_loc + the paper's KD terms only) | paper+ce | "
                                     "paper+ce+neg | paper+ce+neg+cal (the paper's plus each addition in turn).")
    insert: bool = _setting(True, "Learn the insertion; false: the 'PNC w/o Insert' ablation (R = 0, the adapter "
                                  "frozen at its identity start, the mask from L_loc alone, only F_c trained).")
    exemplars_per_class: int = _setting(0, "Real training images per target class used as negatives, drawn from the "
                                           "exemplar data (build --exemplars SPEC; 0: data-free, the default).")
    exemplar_calibration: bool = _setting(True, "With exemplars: a held-out share of them sets the routing calibration "
                                                "(best weighted accuracy) instead of the fixed recall.")

    def __post_init__(self):
        _check_numbers(self)
        if not 0 < self.data_fraction <= 1:
            raise UsageError(f"data_fraction must be in (0, 1], got {self.data_fraction}")
        if self.grid < 1 or self.masks_per_anchor < 1 or self.steps < 1 or self.batch_size < 1:
            raise UsageError("grid, masks_per_anchor, steps and batch_size must be positive")
        if self.negatives not in NEGATIVES:
            raise UsageError(f"negatives must be one of {', '.join(NEGATIVES)}, got {self.negatives!r}")
        if self.objective not in OBJECTIVES:
            raise UsageError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.inversion_copies < 1 or self.inversion_steps < 0:
            raise UsageError("inversion_copies must be positive and inversion_steps not negative")
        for name in ("neg_novelty", "route_recall", "route_recall_multi"):  # shares: (0, 1], or None for off
            v = getattr(self, name)
            if v is not None and not 0 < v <= 1:
                raise UsageError(f"{name} must be in (0, 1] or None, got {v}")
        if self.exemplars_per_class < 0:
            raise UsageError(f"exemplars_per_class must be 0 or more, got {self.exemplars_per_class}")
        if self.neg_masks < 0:
            raise UsageError(f"neg_masks must be 0 or more, got {self.neg_masks}")
        if not 0 <= self.mask_rate < 1 or not 0 < self.holdout < 1:
            raise UsageError("mask_rate must be in [0, 1) and holdout in (0, 1)")

    def recall(self, k: int) -> float | None:
        """The routing recall the calibration aims at when cloning ``k`` classes."""
        return self.route_recall if k == 1 else self.route_recall_multi

    def uses(self, part: str) -> bool:
        """Whether the objective has the builder's addition ``part``: ce, neg (negatives) or cal (calibration)."""
        return self.objective == "pnc" or part in self.objective.split("+")[1:]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["positions"] = None if self.positions is None else list(self.positions)
        for name, default in LATE.items():  # see LATE: named only when not at their default
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BuildConfig":
        """The config a ``to_dict`` (or part of one: missing settings keep their defaults) describes.

        Unknown names and values of the wrong type are a UsageError naming them; ``positions`` may be a list.
        ``from_dict(c.to_dict()) == c`` and ``from_dict(d).to_dict()`` gives ``d``'s values back unchanged."""
        if not isinstance(d, Mapping):
            raise UsageError(f"build settings: expected a mapping of setting names to values, got {type(d).__name__}")
        _check_names(d)
        kinds = {f.name: f.type for f in fields(cls)}
        return cls(**{k: _checked(k, kinds[k], v) for k, v in d.items()})

    @classmethod
    def with_overrides(cls, **kw) -> "BuildConfig":
        _check_names(kw)
        return cls(**kw)

    @classmethod
    def settings_help(cls) -> list[tuple[str, str, Any, str]]:
        """(name, type, default, help) of every setting, in field order."""
        return [(f.name, str(f.type), None if f.default is MISSING else f.default, f.metadata.get("help", ""))
                for f in fields(cls)]


POSITIVE = ("lr", "mask_lr", "kernel_width", "temperature", "pool_size")
NOT_NEGATIVE = ("ridge", "sparsity", "loc_weight", "kd_weight", "ce_weight", "neg_weight", "retune_steps")
SHARES = ("neg_target_conf", "neg_source_max")  # in [0, 1]


def _check_numbers(c: "BuildConfig") -> None:
    """Every number finite (nan or inf trains for minutes and then fails, or writes garbage), rates and sizes
    positive, weights not negative, probabilities in [0, 1]: a UsageError naming the setting, before any work."""
    for f in fields(c):
        v = getattr(c, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise UsageError(f"build setting {f.name} must be a finite number, got {v}")
    for name in POSITIVE:
        if not getattr(c, name) > 0:
            raise UsageError(f"build setting {name} must be positive, got {getattr(c, name)}")
    for name in NOT_NEGATIVE:
        if getattr(c, name) < 0:
            raise UsageError(f"build setting {name} must be 0 or more, got {getattr(c, name)}")
    for name in SHARES:
        if not 0 <= getattr(c, name) <= 1:
            raise UsageError(f"build setting {name} must be in [0, 1], got {getattr(c, name)}")


def _check_names(d) -> None:
    known = sorted(f.name for f in fields(BuildConfig))
    bad = sorted(str(k) for k in d if k not in known)
    if bad:
        raise UsageError(f"unknown build setting{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                         f"known: {', '.join(known)}")


def _checked(name: str, kind: str, v):
    """``v`` if it is a value of the field type ``kind`` (as annotated: 'float | None', 'tuple[int, ...] | None', ...);
    a list for a tuple field becomes a tuple. Numbers stay as given (an int for a float field stays an int), so that
    ``to_dict`` gives back exactly what came in."""
    kind = str(kind)
    base = kind.removesuffix("| None").strip()
    if v is None and base != kind:
        return None

    def number(x, integral):
        return isinstance(x, int) and not isinstance(x, bool) or (not integral and isinstance(x, float))

    if base == "bool":
        ok = isinstance(v, bool)
    elif base == "str":
        ok = isinstance(v, str)
    elif base in ("int", "float"):
        ok = number(v, base == "int")
    elif base.startswith("tuple"):
        ok = isinstance(v, (list, tuple)) and all(number(x, True) for x in v)
        v = tuple(v) if ok else v
    else:  # a field type this reader does not know: leave it to __post_init__
        ok = True
    if not ok:
        raise UsageError(f"build setting {name}: expected {kind}, got {v!r}")
    return v
