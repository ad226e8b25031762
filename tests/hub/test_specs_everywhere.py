"""One spec grammar: the torch-free commands (inspect, verify, sign, remove) take ``hf://ORG/NAME[@REV]`` as well as
a path, and say the same things of the same delta either way."""

from __future__ import annotations

import json

import pnc_pack
import pnc_pack.hub as hub_api
from pnc_pack.cli import main
from pnc_pack.format import codec
from tests.hub.hub_helpers import make_delta


def _pushed(make_model, tmp_path):
    hub_api.publish_model(make_model("target"), "org/target")
    hub_api.publish_model(make_model("source", names=("5", "6", "7", "8", "9"), seed=1), "org/source")
    tref = hub_api.resolve_model("hf://org/target").ref
    sref = hub_api.resolve_model("hf://org/source").ref
    delta = make_delta(tref, [sref, sref])
    local = tmp_path / "clone.pncd"
    codec.save(delta, local)
    return delta, local, hub_api.push(delta, "org/clone")


def _json(argv, capsys):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_inspect_verify_sign_remove_take_hub_specs(hf_env, make_model, tmp_path, capsys):
    delta, local, commit = _pushed(make_model, tmp_path)
    spec = f"hf://org/clone@{commit}"
    assert _json(["inspect", spec, "--json"], capsys) == _json(["inspect", str(local), "--json"], capsys)
    assert _json(["verify", spec, "--json"], capsys)["ok"] is True

    assert main(["keygen", "-o", str(tmp_path / "me")]) == 0
    capsys.readouterr()
    assert main(["sign", spec, "--key", str(tmp_path / "me")]) == 2  # a Hub file cannot be rewritten in place
    assert "-o FILE" in capsys.readouterr().err
    signed = tmp_path / "signed.pncd"
    out = _json(["sign", spec, "--key", str(tmp_path / "me"), "-o", str(signed), "--json"], capsys)
    assert out["output"] == str(signed)
    assert _json(["verify", str(signed), "--trusted-key", str(tmp_path / "me.pub"), "--json"], capsys)["ok"] is True
    # remove reads the hub spec too (tests/hub/test_multi_hub.py removes a module of a real pushed delta); this
    # synthetic delta's plain linear classifier cannot be split, and both spellings are refused alike
    for d in (spec, str(local)):
        assert main(["remove", d, "--module", "1", "-o", str(tmp_path / "one.pncd")]) == 2
        assert "only 'target-head-linear' deltas can be composed" in capsys.readouterr().err
    assert not (tmp_path / "one.pncd").exists()


def test_python_functions_take_hub_specs(hf_env, make_model, tmp_path):
    delta, local, commit = _pushed(make_model, tmp_path)
    spec = f"hf://org/clone@{commit}"
    assert pnc_pack.load(spec) == delta == pnc_pack.load(local)
    assert pnc_pack.verify(spec).ok and pnc_pack.verify(local).ok
    pulled = pnc_pack.pull(spec, output=tmp_path / "pulled.pncd")
    assert isinstance(pulled, pnc_pack.PulledDelta) and pulled.commit == commit and pulled.delta == delta
    assert pulled.path.read_bytes() == local.read_bytes()
    assert pnc_pack.resolve_model("hf://org/target").ref == delta.target
