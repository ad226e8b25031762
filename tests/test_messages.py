"""Messages a user reads when something is wrong (issue 20, item 14): a damaged stored digest shows where the two
digests differ; a bad signature over a digest that holds blames the signature, not the content; a model folder that
is not the pinned model is named as given; ``--json`` errors are JSON; a pickled ``.npz`` is refused in our words; a
repair that drops signatures says so. The models and the delta are the session fixtures of conftest.py."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from pnc_pack.cli import main
from pnc_pack.errors import DataError, IntegrityError, ModelMismatchError, SignatureError
from pnc_pack.format import codec, container, signing

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT / "spec" / "vectors" / "valid-minimal.pncd"
KEY = signing.private_key_from_seed(bytes(range(32)))
FP = signing.fingerprint(signing.public_key_bytes(KEY))[:16]


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "internal error" not in out.err
    return rc, out.out, out.err


@pytest.fixture
def signed(built, tmp_path):
    """The conftest delta, signed, as a file."""
    path = tmp_path / "signed.pncd"
    path.write_bytes(codec.dumps(signing.sign(built, KEY)))
    return path


def _flip(path: Path, offset: int, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    out.write_bytes(bytes(data))
    return out


def test_a_flipped_byte_deep_in_the_stored_digest_shows_both_digests_differing(signed, tmp_path, capsys):
    at = container.parse(signed.read_bytes()).signed_size
    bad = _flip(signed, at + 20, tmp_path / "bad.pncd")  # hex digits 40-41: past the 16 a prefix used to show
    with pytest.raises(IntegrityError) as exc:
        codec.load(bad)
    msg = str(exc.value)
    stored, computed = (msg.split(word, 1)[1].split()[0] for word in ("stored sha256 ", "computed "))
    assert len(stored) == len(computed) == 64 and stored != computed and stored[:40] == computed[:40]
    assert "first differ at hex digit 41" in msg
    rc, _, err = _run(capsys, "verify", bad)
    assert rc == 3 and stored in err and computed in err


def test_a_damaged_signature_block_blames_the_signature_not_the_content(signed, tmp_path, capsys):
    n = len(signed.read_bytes())
    bad = _flip(signed, n - 10, tmp_path / "badsig.pncd")  # inside the signature, past the public key
    words = f"signature 0 by key sha256:{FP} is invalid"
    rc, out, err = _run(capsys, "verify", bad)
    assert rc == 4 and "ok   digest" in out and words in err
    for text in (out, err):
        assert "changed after" not in text and "altered" not in text
    with pytest.raises(SignatureError, match=words) as exc:  # the reader's own check says the same
        codec.load(bad)
    assert "changed after" not in str(exc.value)


@pytest.mark.parametrize("flag", ["--target", "--source"])
def test_a_folder_that_is_not_the_pinned_model_is_named_as_given(built, zoo, tmp_path, capsys, flag):
    delta = tmp_path / "clone.pncd"
    codec.save(built, delta)
    role, pinned = ("target", zoo["target"]) if flag == "--target" else ("source of module 0", zoo["source"])
    given = tmp_path / "given"
    shutil.copytree(pinned, given)
    _flip(given / "model.safetensors", -5, given / "model.safetensors")  # same size: only the sha256 differs
    rc, _, err = _run(capsys, "apply", delta, flag, given)
    assert rc == 5 and "ModelMismatchError" in err
    assert f"{role}: model folder {given} does not match the pinned model {pinned}" in err
    assert "'model.safetensors' has sha256" in err
    wrong = zoo["source"] if flag == "--target" else zoo["target"]  # a model of the same arch: config.json differs
    rc, _, err = _run(capsys, "apply", delta, flag, wrong)
    assert rc == 5 and f"{role}: model folder {wrong} does not match the pinned model {pinned}" in err
    import pnc_pack

    with pytest.raises(ModelMismatchError, match=f"model folder {given} does not match"):
        pnc_pack.apply(built, **{flag[2:]: given})


@pytest.fixture
def json_cases(tmp_path, signed):
    keyfile = tmp_path / "k"
    assert main(["keygen", "-o", str(keyfile)]) == 0
    (tmp_path / "existing").mkdir()
    missing, out = tmp_path / "missing.pncd", tmp_path / "out.pncd"
    damaged = _flip(signed, container.parse(signed.read_bytes()).signed_size, tmp_path / "damaged.pncd")
    return {
        "inspect": (["inspect", missing], 3), "verify": (["verify", damaged], 3),
        "keygen": (["keygen", "-o", keyfile], 2), "sign": (["sign", missing, "--key", keyfile], 3),
        "train": (["train", "--arch", "lenet5", "--data", "digits", "--classes", "0,1", "--epochs", "0", "-o",
                   tmp_path / "m"], 2),
        "build": (["build", "--target", "t", "--source", "s", "--data", "digits", "--clone-classes", "5", "--set",
                   "lr=-1", "-o", out], 2),
        "add": (["add", missing, "--source", "s", "--clone-classes", "7", "--data", "digits", "-o", out], 3),
        "remove": (["remove", missing, "--all", "-o", out], 3), "eval": (["eval", missing, "--data", "digits"], 3),
        "apply": (["apply", missing], 3), "apply-flag": (["apply", signed, "--repair-epochs", "0"], 2),
        "apply-model": (["apply", signed, "--target", tmp_path / "existing"], 5),
        "push": (["push", VALID, "bad//id"], 2), "pull": (["pull", "bad//id"], 2),
        "zoo push": (["zoo", "push", tmp_path / "existing", "no good/id"], 2), "demo": (["demo", "--epochs", "0"], 2),
    }


def test_every_json_command_prints_its_errors_as_json(json_cases, capsys):
    from pnc_pack.cli import COMMANDS

    assert {name.split()[0].split("-")[0] for name in json_cases} == set(COMMANDS)  # every command takes --json
    for name, (args, code) in json_cases.items():
        args = [str(a) for a in args]
        k = 2 if name == "zoo push" else 1
        for argv in ([*args[:k], "--json", *args[k:]], [*args, "--json"]):  # --json before what fails, or after
            rc, out, err = _run(capsys, *argv)
            doc = json.loads(out)  # one JSON document, nothing else on stdout
            assert rc == code == doc["error"]["exit_code"], (name, argv, out, err)
            assert doc["error"]["type"] and doc["error"]["message"] and err  # stderr still has the line
        rc, out, _ = _run(capsys, *args)
        assert rc == code and not out.lstrip().startswith("{")  # without --json: not JSON


def test_a_pickled_npz_is_refused_in_our_words(signed, tmp_path, capsys):
    from pnc_pack.data import load_dataset

    for name, arrays in (("images", dict(x_train=np.array([None] * 4, dtype=object), y_train=np.arange(4))),
                         ("labels", dict(X=np.zeros((4, 8, 8), np.float32), y=np.array([0, 1, "a", None], object)))):
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        with pytest.raises(DataError, match="pickled") as exc:
            load_dataset(f"npz:{path}")
        assert "allow_pickle" not in str(exc.value) and "cannot read" not in str(exc.value)
    rc, out, err = _run(capsys, "eval", signed, "--data", f"npz:{path}", "--json")
    assert rc == 2 and "pickled" in json.loads(out)["error"]["message"] and "allow_pickle" not in out + err


def test_a_repair_says_it_dropped_the_signatures(built, signed, zoo, tmp_path, capsys):
    import pnc_pack
    from pnc_pack.clone.repair import RepairResult, SignaturesDroppedWarning, repaired_delta

    result = RepairResult(samples=1, epochs=1, before={}, after={}, losses=[])
    with pytest.warns(SignaturesDroppedWarning, match="1 signature.* dropped.*sign the repaired delta again"):
        out = repaired_delta(pnc_pack.apply(signed), result, "digits")
    assert out.signatures == ()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SignaturesDroppedWarning)
        repaired_delta(pnc_pack.apply(built), result, "digits")  # unsigned: nothing to say
    rc, stdout, err = _run(capsys, "apply", signed, "--repair-data", "digits", "--repair-samples", "20",
                           "--repair-epochs", "1", "-o", tmp_path / "repaired.pncd", "--json")
    assert rc == 0 and json.loads(stdout)["repair"]["signatures_dropped"] == 1
    assert "1 signature(s) of the input delta dropped" in err and f"pnc-pack sign {tmp_path / 'repaired.pncd'}" in err
    assert codec.load(tmp_path / "repaired.pncd").signatures == ()
