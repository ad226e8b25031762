"""Eight processes that apply one signed clone delta through ONE shared Hub cache, at once; then eight that pull it
to one output file at once.

Each process is "another machine" (tests/hub/child.py running the CLI) whose HF_HOME is the same folder, starting
from an empty cache: all eight download the delta and the two pinned models concurrently (huggingface_hub's file
locks), check the signature policy (``--trusted-key``) on the loaded delta, check every pin and rebuild the clone.
All must succeed with the same report, and every model file left in the cache must match its pins.
Then eight ``pnc-pack pull -o SAME_FILE`` run at once: all succeed and the file is the pushed delta, with no
temporary or lock file left (before the fsutil fix, one writer's stale-file cleaning deleted another's temporary
file and its rename failed).
"""

from __future__ import annotations

import json
import subprocess

import pnc_pack.hub as hub_api
from pnc_pack.format import codec
from pnc_pack.format.signing import private_key_from_seed, public_key_pem, sign
from tests.hub.hub_helpers import child_cmd

N = 8


def _run_all(cmds, env, timeout=300):
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


def test_eight_processes_apply_through_one_cache(hf_env, tmp_path):
    from pnc_pack.api.build import build_clone
    from pnc_pack.data import load_dataset
    from pnc_pack.zoo.pretrained import save_pretrained
    from pnc_pack.zoo.training import train_model

    digits = load_dataset("digits")
    for name, classes in (("target", [0, 1, 2, 3, 4]), ("source", [5, 6, 7, 8, 9])):
        model, config = train_model("lenet5", None, digits, classes, epochs=1, seed=0)
        hub_api.publish_model(save_pretrained(model, config, tmp_path / "zoo" / name), f"org/{name}")
    delta = build_clone("hf://org/target", "hf://org/source", digits, [5], seed=0, steps=10, retune_steps=2,
                        masks_per_anchor=4, data_fraction=0.3, pool_size=500)
    key = private_key_from_seed(b"k" * 32)
    delta = sign(delta, key)
    pub = tmp_path / "key.pub"
    pub.write_bytes(public_key_pem(key))
    commit = hub_api.push(delta, "org/clone")
    data = codec.dumps(delta)

    env = hf_env.machine("shared")  # one HF_HOME, empty, for all eight
    results = _run_all([child_cmd("cli", "apply", f"hf://org/clone@{commit}", "--trusted-key", str(pub),
                                  "--json") for _ in range(N)], env)
    reports = []
    for rc, stdout, stderr in results:
        assert rc == 0, stderr[-2000:] + stdout[-1000:]
        reports.append(json.loads(stdout))
    same = [{k: v for k, v in r.items() if k != "apply_seconds"} for r in reports]
    assert all(r == same[0] for r in same)
    assert [o["name"] for o in same[0]["outputs"]][-1] == "5"
    assert reports[0]["target"].startswith("org/target@")
    folders = {p.parent for p in (tmp_path / "shared").rglob("model.safetensors")}
    assert len(folders) == 2  # one snapshot per pinned model, shared by the eight
    for ref in delta.refs:
        snapshot = next(f for f in folders if f.name == ref.commit)
        ref.check_folder(snapshot)  # every pinned file: size and sha256

    shared = tmp_path / "shared-out"
    shared.mkdir()
    dest = shared / "clone.pncd"
    results = _run_all([child_cmd("cli", "pull", f"hf://org/clone@{commit}", "-o", str(dest), "--json")
                        for _ in range(N)], env)
    for rc, stdout, stderr in results:
        assert rc == 0, stderr[-2000:]
        assert json.loads(stdout)["commit"] == commit
    assert dest.read_bytes() == data
    assert [p.name for p in shared.iterdir()] == ["clone.pncd"]
