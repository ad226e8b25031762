"""The whole trip through a Hub, as users would make it: publish the zoo models, build a clone against their
hf:// references, push it, and apply it on another machine (empty cache, no token), then again offline."""

from __future__ import annotations

import pytest

import pnc_pack.hub as hub_api
from pnc_pack.format import codec

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py


def test_build_push_pull_apply_through_the_hub(hf_env, run_child, zoo, digits):
    from pnc_pack.api.build import build_clone

    for name in ("target", "source"):  # the conftest's LeNet-5 target (digits 0-4) and source (5-9)
        hub_api.publish_model(zoo[name], f"org/lenet5-{name}")
    # a branch name is resolved to its commit at build time; the delta stores the commit and the file hashes
    delta = build_clone("hf://org/lenet5-target", "hf://org/lenet5-source@main", digits, [5], seed=0,
                        steps=20, retune_steps=5, masks_per_anchor=10, data_fraction=0.5, pool_size=2000)
    assert delta.target.commit == hf_env.hub.head("org/lenet5-target") and not delta.has_local_refs
    commit = hub_api.push(delta, "org/clone-5")
    data = codec.dumps(delta)

    got = run_child("cli", "apply", f"hf://org/clone-5@{commit}", "--eval-data", "digits", "--json",
                    env=hf_env.machine("receiver"))
    assert got.returncode == 0, got
    report = got.json()
    assert report["target"].startswith("org/lenet5-target@") and report["eval"]["k"] == 1
    assert report["eval"]["tar"] > 0.3 and report["eval"]["ori"] > 0.5

    # offline, from the warm cache: same result; from a cold cache: a clear offline error (exit 14)
    warm = run_child("cli", "apply", f"hf://org/clone-5@{commit}", "--eval-data", "digits", "--json",
                     env=hf_env.machine("receiver", offline=True))
    assert warm.returncode == 0, warm
    assert warm.json()["eval"] == report["eval"]
    cold = run_child("cli", "apply", f"hf://org/clone-5@{commit}", env=hf_env.machine("cold", offline=True))
    assert cold.returncode == 14, cold
    assert len(data) < 10_000
