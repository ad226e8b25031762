"""Wall time of each phase of one ``build_clone``, for benchmarks: ``with phases(device, cfg) as ph: build_clone(...)``.

The builder is left as it is; for the duration of the block its phase functions are wrapped (module attributes of
pnc_pack.builder.api and .search, restored afterwards): the local model set (the source on the perturbed anchors
and the LIME fits), the negatives, the perturbed pool, each insertion position R (its steps, its frozen taps and
its held-out loss), the re-tune (the search module's ``train`` call outside a position), the final held-out loss
and the calibration. Each phase ends with a device synchronisation (one per phase, never per step), so its time
includes its GPU work. ``ph.rows`` lists ``{phase, s, steps, steps_per_s, peak_bytes}`` in the order they ran;
``peak_bytes`` is the CUDA peak allocation during the phase (None on the CPU). ``deadline`` (a perf_counter time):
after each position, when the positions left and the re-tune would run past it at the last position's pace,
:class:`OverBudget` stops the build (the phases so far stay in ``ph.rows``).
"""

from __future__ import annotations

import contextlib
import time


class OverBudget(RuntimeError):
    pass


class Phases:
    def __init__(self, device, cfg, deadline: float | None = None):
        self.device, self.cfg, self.deadline = device, cfg, deadline
        self.rows: list[dict] = []
        self.depth = 0  # > 0 inside a timed phase: nested wrapped calls are part of it
        self.positions_left = None

    def timed(self, name_of, fn, steps_of=None):
        def wrapper(*a, **kw):
            if self.depth:
                return fn(*a, **kw)
            from pnc_pack import devices

            devices.synchronize(self.device)
            devices.peak_memory(self.device, reset=True)
            self.depth += 1
            t0 = time.perf_counter()
            try:
                out = fn(*a, **kw)
                devices.synchronize(self.device)
            finally:
                self.depth -= 1
            s = time.perf_counter() - t0
            steps = steps_of(*a, **kw) if steps_of else None
            self.add(name_of(*a, **kw), s, steps, devices.peak_memory(self.device))
            if name_of(*a, **kw).startswith("position"):
                self.check(s)
            return out
        return wrapper

    def add(self, name, s, steps=None, peak=None):
        for r in self.rows:  # a phase met again (the two halves of the negatives) adds up
            if r["phase"] == name and r.get("steps") is None and steps is None:
                r["s"] = round(r["s"] + s, 3)
                r["peak_bytes"] = max(r["peak_bytes"] or 0, peak or 0) or None
                return
        self.rows.append({"phase": name, "s": round(s, 3), "steps": steps,
                          "steps_per_s": round(steps / s, 2) if steps and s > 0 else None, "peak_bytes": peak})

    def check(self, last_s: float):
        self.positions_left = (self.positions_left or 0) - 1
        if self.deadline is None:
            return
        ahead = last_s * (max(self.positions_left, 0) + self.cfg.retune_steps / max(self.cfg.steps, 1))
        if time.perf_counter() + ahead > self.deadline:
            raise OverBudget(f"stopped after {len([r for r in self.rows if r['phase'].startswith('position')])} "
                             f"positions: the rest would take about {ahead:.0f} s more, past the budget")


@contextlib.contextmanager
def phases(device, cfg, num_positions: int, deadline: float | None = None):
    from pnc_pack.builder import api
    from pnc_pack.builder import search as S

    ph = Phases(device, cfg, deadline)
    ph.positions_left = num_positions
    wraps = [
        (api, "source_logits", lambda *a, **k: "local model set", None),
        (api, "fit_local_models", lambda *a, **k: "local model set", None),
        (api, "make_negatives", lambda *a, **k: "negatives", None),
        (api, "patch_masked", lambda *a, **k: "negatives", None),
        (api, "pool", lambda *a, **k: "perturbed pool", None),
        (api, "train_position", lambda p, cfg, seed, R, *a, **k: f"position R={R}", lambda p, cfg, *a, **k: cfg.steps),
        (S, "train", lambda *a, **k: "re-tune", lambda p, br, cfg, steps, *a, **k: steps),
        (S, "held_out_loss", lambda *a, **k: "final held-out loss", None),
        (S, "calibrate", lambda *a, **k: "calibration", None),
    ]
    wraps = [w for w in wraps if hasattr(w[0], w[1])]  # a phase the builder no longer has is not timed
    saved = [(mod, name, getattr(mod, name)) for mod, name, _, _ in wraps]
    try:
        for mod, name, label, steps in wraps:
            setattr(mod, name, ph.timed(label, getattr(mod, name), steps))
        yield ph
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
