"""Eight processes that pull one clone delta and fetch every model it pins through ONE shared Hub cache, at once.

Each process is "another machine" (tests/hub/child.py) whose HF_HOME is the same folder. All must succeed, agree
on the commit and the files, and every model file in the cache must match its pins (sha256 and size). Then eight
``pnc-pack pull -o SAME_FILE`` run at once: all succeed and the file is the pushed delta, with no temporary file
left (before the fsutil fix, one writer's stale-file cleaning deleted another's temporary file and its rename
failed).

``pnc_pack.clone.apply.apply`` is not used: it needs ``pnc_pack.clone.model`` (ClonedModel), which is not in the
tree yet, and models a builder made; the fetch path it would take (pull, then fetch_model per reference with the
pin checks) is what runs here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess

import pnc_pack.hub as hub_api
from pnc_pack.format import codec
from pnc_pack.refs import sha256_file

from pnc_hub_helpers import child_cmd, make_delta

N = 8


def _run_all(cmds, env, timeout=180):
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


def test_eight_processes_share_one_cache(hf_env, make_model, tmp_path):
    hub_api.publish_model(make_model("target"), "org/target")
    hub_api.publish_model(make_model("source", names=("5", "6", "7", "8", "9"), seed=1), "org/source")
    _, tref = hub_api.resolve_model("hf://org/target")
    _, sref = hub_api.resolve_model("hf://org/source")
    delta = make_delta(tref, [sref])
    commit = hub_api.push(delta, "org/clone")
    data = codec.dumps(delta)

    env = hf_env.machine("shared")  # one HF_HOME for all eight
    results = _run_all([child_cmd("fetch", "org/clone") for _ in range(N)], env)
    outs = []
    for rc, stdout, stderr in results:
        assert rc == 0, stderr[-2000:] + stdout[-1000:]
        outs.append(json.loads(stdout))
    assert all(o == outs[0] for o in outs)  # same commit, same folders, same file hashes
    assert outs[0]["commit"] == commit
    assert outs[0]["delta_sha256"] == hashlib.sha256(data).hexdigest()
    for m, ref in zip(outs[0]["models"], (tref, sref)):
        assert m["uri"] == ref.uri()
        ref.check_folder(m["folder"])  # every pinned file: size and sha256
        assert m["files"] == {n: d.sha256 for n, d in ref.files.items()}

    shared = tmp_path / "shared-out"
    shared.mkdir()
    dest = shared / "clone.pncd"
    results = _run_all([child_cmd("cli", "pull", f"hf://org/clone@{commit}", "-o", str(dest), "--json")
                        for _ in range(N)], env)
    for rc, stdout, stderr in results:
        assert rc == 0, stderr[-2000:]
        assert json.loads(stdout)["commit"] == commit
    assert dest.read_bytes() == data and sha256_file(dest).sha256 == hashlib.sha256(data).hexdigest()
    assert [p.name for p in shared.iterdir()] == ["clone.pncd"]
