"""examples/deploy against the loopback Hub, as a CI job and a server would run them (issue 21): the pipeline script
ships a good clone (its ONNX file answers like torch on the test set) and stops a damaged one with exit code 8,
publishing nothing; the server answers with new classes after attach, without a restart, with the old ones only
after remove, and refuses hostile updates (tampered, unsigned under its trust policy, another target) unchanged.

Cheap by sharing: the good clone is the session's ``built`` delta pinned to the models' Hub commits (same files,
same digests), and the two pipeline runs and the server's start run side by side (the test only waits on them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import pnc_pack.hub as hub_api
from pnc_pack.format import codec
from pnc_pack.format.signing import private_key_from_seed, sign, write_keypair

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy"
HUB_TESTS = Path(__file__).resolve().parent
TINY = dict(steps=10, retune_steps=2, masks_per_anchor=4, pool_size=500, data_fraction=0.5)
GATES = dict(MIN_ORI="60", MIN_TAR="60", MAX_ORI_DROP="20")
GUARD = f"import sys; sys.path.insert(0, {str(HUB_TESTS)!r}); import netguard; netguard.install(); import runpy; "


def _pipeline(env, tmp_path, repo, commit, pub, name) -> subprocess.Popen:
    env = {**env, **GATES, "DELTA_REPO": repo, "DELTA_COMMIT": commit, "TRUSTED_KEY": str(pub), "EVAL_DATA": "digits",
           "ARTIFACT_DIR": str(tmp_path / name), "PYTHON": sys.executable,
           "PNC_PACK": f"{sys.executable} {HUB_TESTS / 'child.py'} cli"}  # the CLI, loopback-only
    return subprocess.Popen(["bash", str(DEPLOY / "pipeline.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _pinned(delta, pins: dict):
    """``delta`` with each local model reference replaced by its Hub pin (repo, commit): the same files."""
    from dataclasses import replace

    def hub(ref):
        repo, commit = pins[ref.path]
        return replace(ref, path=None, repo_id=repo, commit=commit)

    return replace(delta, target=hub(delta.target),
                   modules=tuple(replace(m, source=hub(m.source)) for m in delta.modules))


def _call(url, path, body=None):
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_pipeline_and_server_against_the_loopback_hub(hf_env, tmp_path, zoo, source2, digits, built):
    from pnc_pack.api.build import build_clone
    from pnc_pack.clone.damage import perturb

    key = private_key_from_seed(bytes(range(1, 33)))
    _, pub = write_keypair(key, tmp_path / "release")
    t = hub_api.publish_model(zoo["target"], "org/digits-0-4")
    s = hub_api.publish_model(zoo["source"], "org/digits-5-9")
    s2 = hub_api.publish_model(source2, "org/digits-7-9")
    a = _pinned(built, {str(zoo["target"]): ("org/digits-0-4", t), str(zoo["source"]): ("org/digits-5-9", s)})
    good = hub_api.push(sign(a, key), "org/clone-5-6")
    bad = hub_api.push(sign(perturb(a, scale=4.0, seed=0), key), "org/clone-damaged")
    # the two pipeline runs and the server's start (it loads the target once) run side by side
    runs = [_pipeline(hf_env.machine("ci"), tmp_path, "org/clone-5-6", good, pub, "artifact"),
            _pipeline(hf_env.machine("ci-bad"), tmp_path, "org/clone-damaged", bad, pub, "artifact-bad")]
    server = subprocess.Popen([sys.executable, "-c", GUARD + f"sys.argv = ['serve.py'] + sys.argv[1:]; "
                               f"runpy.run_path({str(DEPLOY / 'serve.py')!r}, run_name='__main__')",
                               "--delta", f"hf://org/clone-5-6@{good}", "--trusted-key", str(pub), "--port", "0"],
                              env=hf_env.machine("server"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        b = build_clone(f"hf://org/digits-0-4@{t}", f"hf://org/digits-7-9@{s2}", digits, [8, 9], seed=0, **TINY)
        more = hub_api.push(sign(b, key), "org/clone-8-9")
        unsigned = hub_api.push(b, "org/clone-8-9-unsigned")

        # the pipeline: a good clone ships, with an ONNX file that answers like torch on the test split
        run = _finish(runs[0])
        assert run.returncode == 0, run.stderr[-3000:]
        art = tmp_path / "artifact"
        assert {"clone.pncd", "model.onnx", "model.onnx.json", "apply.json", "smoke.json", "verify.json"} <= \
            {p.name for p in art.iterdir()}
        onnx = json.loads((art / "apply.json").read_text())["onnx"]
        assert onnx["argmax_agreement"] == 1.0 and onnx["max_abs_diff"] <= onnx["allowed"] and onnx["samples"] > 200
        assert json.loads((art / "smoke.json").read_text())["labels"] == [0, 1, 2, 3, 4, 5, 6]
        # a damaged clone is stopped by the gate: exit 8, one line naming it, nothing published
        run = _finish(runs[1])
        assert run.returncode == 8, run.stderr[-3000:]
        assert "GateError: gate --min-" in run.stderr and not (tmp_path / "artifact-bad").exists()

        _serve(server, tmp_path, zoo, source2, digits, key, b, more, unsigned)
    finally:
        for proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)
    assert os.path.exists(pub)


def _serve(server, tmp_path, zoo, source2, digits, key, b, more, unsigned):
    """The server: loaded once; modules come and go while it runs; hostile updates leave it as it was."""
    from pnc_pack.builder.api import fresh_delta
    from pnc_pack.data import fit_to_shape
    from pnc_pack.zoo.pretrained import load_pretrained, local_ref

    line = server.stdout.readline()
    assert line.startswith("listening on "), (line, server.stderr.read() if server.poll() is not None else "")
    url = line.split()[-1]
    X, y = digits.test
    eights = fit_to_shape(X[(y == 8) | (y == 9)][:40], (1, 28, 28)).tolist()  # the zoo LeNet-5's input
    assert _call(url, "/labels")[1]["labels"] == [0, 1, 2, 3, 4, 5, 6]
    code, before = _call(url, "/predict", {"inputs": eights})
    assert code == 200 and not set(before["predictions"]) & {8, 9}

    # hostile updates: refused, the running model unchanged
    tampered = bytearray(codec.dumps(sign(b, key)))
    tampered[len(tampered) // 2] ^= 0x01
    (tmp_path / "tampered.pncd").write_bytes(bytes(tampered))
    (t0, _), (s0, _) = load_pretrained(zoo["source"]), load_pretrained(source2)
    other = fresh_delta(t0, s0, 1, local_ref(zoo["source"]), local_ref(source2), clone_idx=(1, 2))
    codec.save(sign(other, key), tmp_path / "other-target.pncd")
    for spec, status, err in ((str(tmp_path / "tampered.pncd"), 422, "IntegrityError"),
                              (f"hf://org/clone-8-9-unsigned@{unsigned}", 403, "SignatureError"),
                              (str(tmp_path / "other-target.pncd"), 409, "ModelMismatchError")):
        code, body = _call(url, "/attach", {"delta": spec})
        assert (code, body["error"]) == (status, err), body
        assert _call(url, "/predict", {"inputs": eights})[1] == before
        assert _call(url, "/labels")[1]["updates"] == 0

    code, body = _call(url, "/attach", {"delta": f"hf://org/clone-8-9@{more}"})
    assert code == 200 and body["labels"] == [0, 1, 2, 3, 4, 5, 6, 8, 9], body
    after = _call(url, "/predict", {"inputs": eights})[1]
    assert sum(p in (8, 9) for p in after["predictions"]) > len(eights) // 2
    code, body = _call(url, "/remove", {"classes": [8, 9]})
    assert code == 200 and body["labels"] == [0, 1, 2, 3, 4, 5, 6]
    assert _call(url, "/predict", {"inputs": eights})[1] == before  # exactly the model before the attach
