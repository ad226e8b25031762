"""Signing, key files, verification reports and the keygen / sign / verify commands."""

import dataclasses
import json
import os
import stat
import subprocess
import sys

import pytest

from pnc_pack.cli import main as cli_main
from pnc_pack.errors import KeyFormatError, ModelMismatchError, SignatureError, UsageError
from pnc_pack.format import codec, container, signing
from pnc_pack.format.testing import make_delta
from pnc_pack.refs import ModelRef
from pnc_pack.verification import verify

SEED_A, SEED_B = bytes(range(32)), bytes(range(1, 33))


@pytest.fixture
def keys():
    return signing.private_key_from_seed(SEED_A), signing.private_key_from_seed(SEED_B)


def test_sign_keeps_digest_and_coexists(keys):
    a, b = keys
    d = make_delta(1)
    unsigned = codec.dumps(d)
    one = codec.dumps(signing.sign(d, a))
    two = codec.dumps(signing.sign(signing.sign(d, b), a))
    n = container.parse(unsigned).signed_size + 32
    assert one[:n] == two[:n] == unsigned[:n]
    assert len(container.parse(two).signatures) == 2
    # re-signing with the same key replaces (Ed25519 is deterministic: same bytes)
    assert codec.dumps(signing.sign(signing.sign(d, a), a)) == one
    assert signing.sign_bytes(one, a) == one
    assert signing.sign_bytes(unsigned, a) == one
    loaded = codec.loads(two)
    assert [s.public_key for s in loaded.signatures] == sorted(signing.public_key_bytes(k) for k in keys)


def test_signature_of_another_delta_is_refused(keys):
    a, _ = keys
    signed = signing.sign(make_delta(1), a)
    forged = dataclasses.replace(make_delta(1, seed=4), signatures=signed.signatures)
    with pytest.raises(SignatureError):
        codec.dumps(forged)


def test_key_files(tmp_path, keys):
    a, _ = keys
    priv, pub = signing.write_keypair(a, tmp_path / "k")
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert pub.name == "k.pub"
    assert signing.public_key_bytes(signing.load_private_key(priv)) == signing.load_public_key(pub)
    with pytest.raises(UsageError):
        signing.write_keypair(a, tmp_path / "k")
    (tmp_path / "junk").write_bytes(b"not a key")
    for loader in (signing.load_private_key, signing.load_public_key):
        with pytest.raises(KeyFormatError):
            loader(tmp_path / "junk")
        with pytest.raises(KeyFormatError):
            loader(tmp_path / "missing")
    with pytest.raises(KeyFormatError):
        signing.load_private_key(pub)  # a public key where a private one belongs
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec").write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    with pytest.raises(KeyFormatError, match="Ed25519"):
        signing.load_private_key(tmp_path / "ec")


def test_verify_policies(keys):
    a, b = keys
    pa, pb = (signing.public_key_bytes(k) for k in keys)
    d = make_delta(1)
    unsigned, signed_a = codec.dumps(d), codec.dumps(signing.sign(d, a))
    assert verify(unsigned).ok
    r = verify(unsigned, require_signature=True)
    assert not r.ok and r.exit_code == 4
    r = verify(signed_a, trusted_keys=[pb])
    assert not r.ok and r.exit_code == 4 and not r.signatures[0].trusted
    r = verify(signed_a, trusted_keys=[pa, pb], require_signature=True)
    assert r.ok and r.signatures[0].trusted and r.signatures[0].valid
    assert r.signatures[0].fingerprint == signing.fingerprint(pa)
    tampered = bytearray(signed_a)
    tampered[-1] ^= 1
    r = verify(bytes(tampered))
    assert not r.ok and r.exit_code == 4 and not r.signatures[0].valid
    with pytest.raises(SignatureError):
        verify(bytes(tampered), raise_on_failure=True)
    tampered = bytearray(signed_a)
    tampered[100] ^= 1
    r = verify(bytes(tampered))
    assert not r.ok and r.exit_code == 3 and r.checks[0].name == "digest"
    # in-memory deltas too
    assert verify(signing.sign(d, a), trusted_keys=[pa]).ok
    assert json.dumps(r.to_dict())


def test_verify_model_folders(tmp_path):
    folder = tmp_path / "target"
    folder.mkdir()
    (folder / "config.json").write_text('{"arch": "lenet5"}')
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    ref = ModelRef.from_folder(folder, "lenet5", {"num_classes": 5})
    d = dataclasses.replace(make_delta(1), target=ref)
    data = codec.dumps(d)
    r = verify(data, models={"target": folder})
    assert r.ok and any(c.name == "model:target" and c.ok for c in r.checks)
    (folder / "model.safetensors").write_bytes(b"\x01" * 64)
    r = verify(data, models={0: folder})
    assert not r.ok and r.exit_code == 5
    with pytest.raises(ModelMismatchError):
        verify(data, models={str(folder): folder}, raise_on_failure=True)
    with pytest.raises(UsageError):
        verify(data, models={"source:7": folder})


def test_cli_keygen_sign_verify(tmp_path, capsys):
    p = tmp_path / "d.pncd"
    codec.save(make_delta(2, local=True), p)
    digest = container.parse(p.read_bytes()).digest
    assert cli_main(["keygen", "-o", str(tmp_path / "me")]) == 0
    assert cli_main(["keygen", "-o", str(tmp_path / "me")]) == 2  # refuses to overwrite
    assert cli_main(["keygen", "-o", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    assert stat.S_IMODE(os.stat(tmp_path / "me").st_mode) == 0o600
    assert cli_main(["verify", str(p), "--require-signature"]) == 4
    assert cli_main(["sign", str(p), "--key", str(tmp_path / "me")]) == 0
    assert container.parse(p.read_bytes()).digest == digest
    assert cli_main(["verify", str(p), "--trusted-key", str(tmp_path / "me.pub")]) == 0
    capsys.readouterr()
    assert cli_main(["verify", str(p), "--trusted-key", str(tmp_path / "other.pub"), "--json"]) == 4
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["ok"] is False and report["exit_code"] == 4 and err.count("\n") == 1
    assert cli_main(["sign", str(p), "--key", str(tmp_path / "other")]) == 0
    assert cli_main(["verify", str(p), "--trusted-key", str(tmp_path / "other.pub")]) == 0
    assert len(codec.load(p).signatures) == 2
    assert cli_main(["sign", str(p), "--key", str(tmp_path / "me.pub")]) == 3  # KeyFormatError
    assert cli_main(["verify", str(p), "--model", "nonsense"]) == 2


def test_format_commands_do_not_import_torch(tmp_path):
    p = tmp_path / "d.pncd"
    codec.save(make_delta(1), p)
    code = ("import sys; from pnc_pack.cli import main; "
            f"rcs = [main(['verify', {str(p)!r}]), main(['inspect', {str(p)!r}])]; "
            "assert rcs == [0, 0], rcs; bad = [m for m in ('torch', 'rich', 'numpy') if m in sys.modules]; "
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_enforce_policy_and_keygen(tmp_path, keys):
    a, b = keys
    pa, pb = (signing.public_key_bytes(k) for k in keys)
    d = make_delta(1)
    signed = signing.sign(d, a)
    assert signing.enforce_policy(d) == []
    assert signing.enforce_policy(signed, trusted_keys=[pa]) == [signing.fingerprint(pa)]
    assert signing.enforce_policy(codec.dumps(signed), trusted_keys=[pa, pb]) == [signing.fingerprint(pa)]
    with pytest.raises(SignatureError):
        signing.enforce_policy(signed, trusted_keys=[pb])
    with pytest.raises(SignatureError):
        signing.enforce_policy(d, require_signature=True)
    priv, pub, fp = signing.keygen(tmp_path / "k")
    assert signing.fingerprint(signing.load_public_key(pub)) == fp
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600


def test_public_verify_function(tmp_path):
    p = tmp_path / "d.pncd"
    codec.save(make_delta(1), p)
    code = ("import pnc_pack, sys; r = pnc_pack.verify(sys.argv[1]); import pnc_pack.verification; "
            "assert r.ok and pnc_pack.verify(sys.argv[1]).ok and pnc_pack.VerificationReport is type(r)")
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
