"""Builds over torch.distributed: a build's independent units spread over ranks, byte for byte the serial delta.

Units: the insertion positions of one module (``search_module``), the modules of a multi-source build
(``build_multi``), the candidates of source selection (``score_variants``). Rank 0 runs the ordinary serial code;
at each of those three loops it hands the units out longest-first, runs its own share and collects the others'
results, while the other ranks ``serve``. What units share (D_t's pools, G(b), the negatives; the target's local
model sets; the models) is computed once on rank 0 and sent as tensors. No pickle: every message is one uint8
tensor, a JSON header then raw tensor bytes, point to point with rank 0 over gloo (small CPU payloads).

Byte-identical to the serial build: every unit is seeded by itself (``train_position`` reseeds the global RNG
with (seed, R)), and after the positions rank 0 takes the global RNG state the last position left, as the serial
loop would, for the re-tune and calibration. Intra-op thread counts change float sums, so every rank uses the
serial build's count (PNC_PACK_THREADS, else the launching process's; see cli/_dist.py for torchrun's).

Rooms: this module is the protocol (the units, :class:`Driver` on rank 0, :func:`serve` on the others);
:mod:`~pnc_pack.builder.dist_link` the link between two ranks and how its failures are named;
:mod:`~pnc_pack.builder.dist_messages` the messages; :mod:`~pnc_pack.builder.dist_session` the ranks' start and
end (torchrun's, or ``--nproc`` workers).

Failures (RankError names the rank and the cause; rank 0 writes nothing): a rank that raises posts its error in
the store and sends it to rank 0, which checks the store between its own units; a rank that dies breaks its
connections (rank 0's next exchange with it fails at once) and, under ``--nproc``, the watchdog sees its exit
within 0.2 s (torchrun stops the others itself); a rank that hangs is given up after the timeout
(PNC_PACK_DIST_TIMEOUT, default 1800 s: it must exceed the longest unit).

Devices: tensors travel on the CPU; each rank moves what it receives to its own device
(:func:`pnc_pack.devices.rank_device`: ``cuda:LOCAL_RANK % count`` for ``--device cuda``, the GPU named by ``cuda:N``).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import fields, replace
from types import SimpleNamespace

import torch

from pnc_pack.builder.dist_link import Link, error_info, rank_error
from pnc_pack.builder.dist_messages import (
    branch_in,
    branch_out,
    dataset_in,
    dataset_out,
    model_in,
    model_out,
    pack,
    spec_in,
    spec_out,
    unpack,
)
from pnc_pack.errors import RankError

ENV_FAIL = "PNC_PACK_TEST_FAIL"  # tests: "RANK:raise" or "RANK:exit" makes that rank fail at its next unit

ACTIVE: ContextVar = ContextVar("pnc_pack_distributed", default=None)  # set by dist_session on rank 0


def active():
    """The :class:`Driver` of the distributed build running on this rank 0, or None (the serial loops run)."""
    return ACTIVE.get()


def assign(costs: list[float], world: int) -> list[list[int]]:
    """Longest-first: units by decreasing cost (then index), each to the least-loaded rank (then the lowest)."""
    load, plan = [0.0] * world, [[] for _ in range(world)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(world), key=lambda r: (load[r], r))
        plan[r].append(i)
        load[r] += costs[i]
    return plan


def _fail_if_asked(rank: int, spec: str | None = None) -> None:
    """Tests: fail as ENV_FAIL asks, in this process's environment or as rank 0's was when it sent the units."""
    want, _, mode = (spec or os.environ.get(ENV_FAIL, "")).partition(":")
    if want.strip() == str(rank):
        if mode == "exit":
            os._exit(3)
        raise RuntimeError(f"injected failure ({ENV_FAIL})")


# -- the three kinds of unit: what a rank receives, and one unit's work ----------------------------------------------
def _positions_setup(meta: dict, t: dict, dev: str):
    from pnc_pack.builder import search as S
    from pnc_pack.builder.config import BuildConfig

    values = {}
    for f in fields(S.Problem):
        if f.name in meta["models"]:
            values[f.name] = model_in(f.name, meta["models"][f.name], t).to(dev)
        elif f.name in meta["tensors"]:
            values[f.name] = t[f.name].to(dev)
        else:
            values[f.name] = meta["plain"][f.name]
    return SimpleNamespace(p=S.Problem(**values), cfg=BuildConfig.from_dict(meta["cfg"]), seed=meta["seed"],
                           last=meta["last"])


def _positions_unit(ctx, R: int):
    from pnc_pack.builder.api import train_position

    br, rep = train_position(ctx.p, ctx.cfg, ctx.seed, R)
    return br, rep, (torch.get_rng_state() if R == ctx.last else None)


def _modules_setup(meta: dict, t: dict, dev: str):
    from pnc_pack.builder.config import BuildConfig

    datasets = {int(i): dataset_in(f"data{i}", d, t) for i, d in meta["datasets"].items()}
    ev = None if meta["eval"] is None else dataset_in("eval", meta["eval"], t)
    return SimpleNamespace(target=spec_in(meta["target"]), jobs=meta["jobs"], datasets=datasets, eval=ev,
                           cfg=BuildConfig.from_dict(meta["cfg"]), seed=meta["seed"],
                           extra={**meta.get("extra", {}), "device": dev})


def _modules_unit(ctx, i: int):
    from pnc_pack.builder.api import build_clone
    from pnc_pack.format import codec

    job = ctx.jobs[str(i)]
    delta = build_clone(ctx.target, spec_in(job["source"]), ctx.datasets[job["data"]], job["classes"],
                        seed=ctx.seed, eval_data=ctx.eval, config=ctx.cfg, **ctx.extra)
    return codec.dumps(delta)


def _candidates_setup(meta: dict, t: dict, dev: str):
    from pnc_pack.builder.config import BuildConfig
    from pnc_pack.builder.select import Shared

    targets = {n: (t[f"theta/{n}"].to(dev), r2) for n, r2 in meta["r2"].items()}
    sh = Shared(t["X"].to(dev), t["X_all"], t["y_all"], t["b"].to(dev), BuildConfig.from_dict(meta["cfg"]),
                meta["variants"], meta["target_labels"], targets)  # D_t stays on the CPU, as on rank 0
    models = {int(i): (model_in(f"model{i}", c["model"], t).to(dev), SimpleNamespace(arch=c["arch"], labels=c["labels"]),
                       c["spec"]) for i, c in meta["candidates"].items()}
    return SimpleNamespace(shared=sh, models=models)


def _candidates_unit(ctx, i: int):
    from pnc_pack.builder.select import score_candidate

    model, mcfg, spec = ctx.models[i]
    a, per = score_candidate(ctx.shared, spec, model, mcfg)
    return {"acc": a, "per": {n: [s, d] for n, (s, d) in per.items()}}


class Driver:
    """Rank 0's side: the three loops of the builder, spread over the ranks."""

    def __init__(self, link: Link, device: str | None = None):
        self.link, self.device = link, device  # the build's --device (None: from rank 0's tensors)

    def _spec(self, here: torch.device) -> str:
        return self.device if self.device is not None else here.type

    def _phase(self, op: str, costs: list[float], job, own, device: str | None):
        """Send each rank ``job(units)`` (meta, tensors), run ``own(units)`` here, return {unit: (meta, tensors)}.
        ``device``: the --device spec each rank maps to its own device (``rank_device``)."""
        plan = assign(costs, self.link.world)
        for r in range(1, self.link.world):
            meta, tensors = job(plan[r])
            head = {"op": op, "units": plan[r], "device": device, "fail": os.environ.get(ENV_FAIL), **meta}
            self.link.send(pack(head, tensors), r)
        token = ACTIVE.set(None)  # this rank's own units run the serial loops
        try:
            for u in plan[0]:
                self.link.check()
                _fail_if_asked(0)
                own(u)
        finally:
            ACTIVE.reset(token)
        results = {}
        for r in range(1, self.link.world):
            meta, tensors = unpack(self.link.recv(r))
            if not meta["ok"]:
                raise rank_error(meta["error"])
            for u, m in zip(plan[r], meta["results"]):
                results[u] = (m, {k.split("/", 1)[1]: v for k, v in tensors.items() if k.split("/", 1)[0] == str(u)})
        return results

    def positions(self, p, cfg, seed: int, positions: list[int], progress=None, task=None):
        from pnc_pack.builder import search as S

        models, plain, tensors = {}, {}, {}
        for f in fields(p):
            v = getattr(p, f.name)
            if isinstance(v, torch.nn.Module):
                meta, t = model_out(f.name, v)
                models[f.name] = meta
                tensors.update(t)
            elif isinstance(v, torch.Tensor):
                tensors[f.name] = v
            else:
                plain[f.name] = v
        meta = {"models": models, "plain": plain, "tensors": [k for k in tensors if "/" not in k],
                "cfg": cfg.to_dict(), "seed": seed, "last": positions[-1], "positions": list(positions)}
        ctx = SimpleNamespace(p=p, cfg=cfg, seed=seed, last=positions[-1])
        branches, report, rng = {}, {}, {}

        def own(i):
            from pnc_pack.builder.api import train_position

            R = positions[i]
            branches[R], report[R] = train_position(p, cfg, seed, R, progress, task)
            if R == ctx.last:
                rng["state"] = torch.get_rng_state()

        costs = [S.source_position(R, p.target.num_blocks, p.source.num_blocks) for R in positions]
        costs = [p.source.num_blocks - c + 1.0 for c in costs]  # blocks of the source trained through
        got = self._phase("positions", costs, lambda units: (meta, tensors), own, self._spec(p.x_tr.device))
        for i, (m, t) in got.items():
            R = positions[i]
            report[R] = m["report"]
            branches[R] = branch_in(p, cfg, R, t)
            if "rng" in t:
                rng["state"] = t["rng"]
            if progress is not None:
                progress.advance(task, cfg.steps)
        torch.set_rng_state(rng["state"])  # as the serial loop leaves it: after the last position
        return {R: branches[R] for R in positions}, {R: report[R] for R in positions}

    def modules(self, target, jobs: list, *, seed: int, eval_data, config, overrides: dict):
        from pnc_pack.builder.api import build_clone, resolve
        from pnc_pack.builder.config import BuildConfig
        from pnc_pack.format import codec

        names = {f.name for f in fields(BuildConfig)}
        extra = {k: (v if v is None or isinstance(v, (bool, int, float, str)) else str(v))
                 for k, v in overrides.items() if k not in names}  # build_clone's own keywords (device, ...)
        settings = {k: v for k, v in overrides.items() if k in names}
        if settings:
            BuildConfig.with_overrides(**settings)
        cfg = replace(config or BuildConfig(), **settings)
        data_index = {}
        for _, _, ds in jobs:
            data_index.setdefault(id(ds), len(data_index))
        job_meta = {i: {"source": spec_out(src), "classes": list(classes), "data": data_index[id(ds)]}
                    for i, (src, classes, ds) in enumerate(jobs)}

        def job(units):
            meta = {"target": spec_out(target), "cfg": cfg.to_dict(), "seed": seed, "eval": None, "extra": extra,
                    "jobs": {str(u): job_meta[u] for u in units}, "datasets": {}}
            tensors = {}
            for u in units:
                i = job_meta[u]["data"]
                if str(i) not in meta["datasets"]:
                    meta["datasets"][str(i)], t = dataset_out(f"data{i}", jobs[u][2])
                    tensors.update(t)
            if eval_data is not None and units:
                meta["eval"], t = dataset_out("eval", eval_data)
                tensors.update(t)
            return meta, tensors

        deltas = {}

        def own(u):
            src, classes, ds = jobs[u]
            deltas[u] = build_clone(target, src, ds, classes, seed=seed, eval_data=eval_data, config=cfg, **extra)

        def cost(src):
            folder = resolve(src)[0]
            return float(sum(f.stat().st_size for f in folder.glob("*.safetensors")) or 1)

        got = self._phase("modules", [cost(src) for src, _, _ in jobs], job, own, extra.get("device", self.device))
        for u, (_, t) in got.items():
            deltas[u] = codec.loads(t["delta"].numpy().tobytes())
        return [deltas[u] for u in range(len(jobs))]

    def candidates(self, shared, names: list[str], models: list) -> list:
        from pnc_pack.builder.select import score_candidate

        base = {"cfg": shared.cfg.to_dict(), "variants": shared.variants, "target_labels": shared.target_labels,
                "r2": {n: r2 for n, (_, r2) in shared.targets.items()}}
        common = {"X": shared.X, "X_all": shared.X_all, "y_all": shared.y_all, "b": shared.b,
                  **{f"theta/{n}": th for n, (th, _) in shared.targets.items()}}

        def job(units):
            meta, tensors = dict(base, candidates={}), dict(common)
            for u in units:
                mmeta, t = model_out(f"model{u}", models[u][0])
                meta["candidates"][str(u)] = {"model": mmeta, "arch": models[u][1].arch,
                                              "labels": list(models[u][1].labels), "spec": names[u]}
                tensors.update(t)
            return meta, tensors

        out = {}

        def own(u):
            out[u] = score_candidate(shared, names[u], *models[u])

        costs = [float(sum(q.numel() for q in m.parameters())) for m, _ in models]
        for u, (m, _) in self._phase("candidates", costs, job, own, self._spec(shared.X.device)).items():
            out[u] = (m["acc"], {n: (s, d) for n, (s, d) in m["per"].items()})
        return [out[u] for u in range(len(models))]


_SETUP = {"positions": _positions_setup, "modules": _modules_setup, "candidates": _candidates_setup}


def _run_units(op: str, meta: dict, t: dict, rank: int) -> tuple[list, dict]:
    """A worker's share of one phase: (one JSON result per unit, tensors named UNIT/NAME)."""
    from pnc_pack.devices import rank_device

    ctx = _SETUP[op](meta, t, rank_device(meta.get("device"), int(os.environ.get("LOCAL_RANK", rank))))
    results, tensors = [], {}
    for u in meta["units"]:
        _fail_if_asked(rank, meta.get("fail"))
        if op == "positions":
            m, out = branch_out(*_positions_unit(ctx, meta["positions"][u]))
        elif op == "modules":
            m, out = {}, {"delta": torch.frombuffer(bytearray(_modules_unit(ctx, u)), dtype=torch.uint8)}
        else:
            m, out = _candidates_unit(ctx, u), {}
        results.append(m)
        tensors.update({f"{u}/{k}": v for k, v in out.items()})
    return results, tensors


def serve(link: Link) -> int:
    """A worker rank: run what rank 0 sends until it says done (0) or abort (its exit code)."""
    while True:
        try:
            meta, t = unpack(link.recv(0))
        except RankError:
            return 7  # rank 0 is gone: it (or its launcher) reports why
        if meta["op"] == "done":
            return 0
        if meta["op"] == "abort":
            return int(meta.get("exit_code", 7))
        try:
            results, tensors = _run_units(meta["op"], meta, t, link.rank)
            reply = pack({"ok": True, "results": results}, tensors)
        except Exception as exc:  # noqa: BLE001 - any failure of a unit goes to rank 0, which names it
            info = error_info(exc, link.rank)
            link.post(info)
            reply = pack({"ok": False, "error": info})
        try:
            link.send(reply, 0)
        except RankError:
            return 7
