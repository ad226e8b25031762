"""The ablations ablate and the paper's objective is the paper's: issue 19 items 3 and 4.

Full PNC is built with its search restricted to R = 0, the case in which the old 'w/o Insert' (search=False) built
the identical module. 'w/o Insert' (insert=False) and 'w/o Local' (localize=False) must build a different module
from it by construction; objective="paper" trains on L_loc + KD alone (no CE, no negatives, no calibration).
"""

from __future__ import annotations

import pytest

from pnc_pack.builder import build_clone
from pnc_pack.builder.config import LATE, BuildConfig
from pnc_pack.errors import UsageError
from tests.conftest import PLUMBING

# every difference checked here holds by construction (what is trained, what is frozen, which terms exist), not by
# how well: the short PLUMBING schedule (was steps 20, retune 5, 10 masks, FAST's data)
SMALL = {**PLUMBING, "negatives": "transforms", "positions": (0,)}


@pytest.fixture(scope="module")
def deltas(zoo, digits):
    out = {}
    for name, extra in {"full": {}, "no_insert": {"insert": False}, "no_local": {"localize": False},
                        "paper": {"objective": "paper"}}.items():
        out[name] = build_clone(zoo["target"], zoo["source"], digits, [5], seed=0, **SMALL, **extra)
    return out


def _parts(delta) -> dict:
    """The learned content of a delta (what a receiver runs), without provenance and metrics."""
    m = delta.modules[0]
    return {"R": m.target_position, "adapter": {k: bytes(v.data) for k, v in m.adapter.items()},
            "masks": [(x.layer, tuple(x.to_bools())) for x in m.masks],
            "head": {k: bytes(v.data) for k, v in delta.classifier.items()}}


def test_full_pnc_picks_r0_here(deltas):
    assert deltas["full"].metrics["R"] == 0 and deltas["full"].modules[0].masks


def test_without_insert_differs_from_full_at_r0(deltas):
    full, ab = _parts(deltas["full"]), _parts(deltas["no_insert"])
    assert ab["R"] == 0
    assert ab["adapter"] != full["adapter"]  # frozen at its identity start, full PNC trains it
    assert ab["head"] != full["head"]
    assert ab != full


def test_without_insert_keeps_the_identity_adapter(zoo, digits, deltas):
    from pnc_pack.clone.convert import to_raw
    from pnc_pack.clone.parts import Bridge

    m = deltas["no_insert"].modules[0]
    start = Bridge(m.adapter_args["in_shape"], m.adapter_args["out_shape"]).state_dict()
    assert {k: bytes(to_raw(v).data) for k, v in start.items()} == {k: bytes(v.data) for k, v in m.adapter.items()}


def test_without_local_differs_from_full_at_r0(deltas):
    full, ab = _parts(deltas["full"]), _parts(deltas["no_local"])
    assert ab["R"] == 0 and ab["masks"] == [] and full["masks"]
    assert ab != full


def test_paper_objective_has_no_ce_no_negatives_no_calibration(deltas):
    paper, full = deltas["paper"].metrics, deltas["full"].metrics
    assert set(paper["final_held_out"]) == {"kd", "loc", "total"}
    assert paper["negatives"] == 0 and "calibration" not in paper
    assert full["negatives"] > 0 and "calibration" in full and "ce" in full["final_held_out"]


def test_new_settings_stay_out_of_a_default_provenance():
    d = BuildConfig().to_dict()
    assert not set(LATE) & set(d)
    cfg = BuildConfig(objective="paper+ce", insert=False)
    assert cfg.to_dict()["objective"] == "paper+ce" and BuildConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.uses("ce") and not cfg.uses("neg") and not cfg.uses("cal")
    assert all(BuildConfig().uses(x) for x in ("ce", "neg", "cal"))
    with pytest.raises(UsageError, match="objective"):
        BuildConfig(objective="nope")

