"""`pnc-pack demo --hub`: the zoo models are published, both clones pushed, and the fresh-process receiver pulls
the deltas and the pinned models through the Hub (our loopback server) into an empty cache."""

from __future__ import annotations

import pytest

from pnc_pack.demo.run import DemoConfig, run_demo

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

FAST = dict(steps=10, retune_steps=2, masks_per_anchor=4, pool_size=500)


def test_demo_through_the_hub(hf_env, tmp_path):
    result = run_demo(DemoConfig(data="digits", workdir=str(tmp_path / "demo"), epochs=1, data_fraction=0.3,
                                 hub=True, hub_namespace="demo-org", build=FAST))
    for name, c in result["clones"].items():
        assert c["hub"].startswith(f"hf://demo-org/clone-{name.lower()}@"), c["hub"]
        r = c["receiver"]
        assert r["delta"] == c["hub"]
        assert r["verify"]["ok"] and r["detach"]["identical"], r
    # the receiver's cache holds the pulled delta repos and the two pinned model snapshots
    cache = tmp_path / "demo" / "receiver-cache"
    repos = sorted({p.name for p in cache.rglob("*") if p.is_dir() and p.name.startswith("models--")})
    assert repos == ["models--demo-org--clone-m", "models--demo-org--clone-s", "models--demo-org--lenet5-digits-0-4",
                     "models--demo-org--lenet5-digits-5-9"], repos
