"""The attack corpus (tests/attacks/, written by tools/gen_attacks.py) through the CLI: every hostile file gives the
documented exit code, exactly one line on stderr naming the error class, no traceback; the corpus is reproducible;
the fuzzer's regression files (tests/attacks/regressions/) are refused or accepted cleanly too."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pnc_pack.cli import main as cli_main
from pnc_pack.errors import ArchitectureError, PncError
from pnc_pack.format import codec

pytestmark = pytest.mark.slow  # run first: see tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ROOT / "tests" / "attacks"
INDEX = json.loads((ATTACKS / "index.json").read_text())["attacks"]
BY_NAME = {a["name"]: a for a in INDEX}
REGRESSIONS = sorted((ATTACKS / "regressions").glob("*.pncd"))


def _cli(capsys, *argv):
    rc = cli_main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _args(a):
    return [str(ROOT / x) if x.endswith(".pub") else x for x in a["verify_args"]]


def _check_stderr(err: str, rc: int, error: str | None):
    assert "Traceback" not in err
    if rc == 0:
        assert err == ""
    else:
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("pnc-pack: error: ") and f"{error}:" in lines[0], lines[0]


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_attack_through_cli(name, capsys):
    a = BY_NAME[name]
    path = str(ATTACKS / a["file"])
    rc, out, err = _cli(capsys, "verify", *_args(a), path)
    assert rc == a["verify_exit"], (rc, err)
    _check_stderr(err, rc, a["error"])
    rc, out, err = _cli(capsys, "inspect", path)
    assert rc == a["inspect_exit"], (rc, err)
    _check_stderr(err, rc, a["inspect_error"])
    if a["error"] and a["error"] != "SignatureError":  # the library raises the same class
        with pytest.raises(PncError) as info:
            codec.load(path)
        assert type(info.value).__name__ == a["error"]


def test_corpus_covers_the_issue():
    names = set(BY_NAME)
    for required in ("header-len-beyond-file", "header-len-over-limit", "zstd-bomb-1gib", "raw-size-terabytes",
                     "tensor-offsets-overlap", "tensor-offsets-out-of-bounds", "shape-product-overflow",
                     "msgpack-nested-million", "msgpack-array-declares-4g", "msgpack-map-declares-4g",
                     "msgpack-duplicate-key", "noncanonical-str8", "unknown-required-feature", "newer-major",
                     "signature-truncated", "signature-forged", "signature-untrusted-key", "ref-branch-name",
                     "repo-id-dotdot", "file-name-slash", "file-name-nul", "arch-import-path", "arch-unregistered",
                     "mask-more-bits-than-filters", "label-outside-classifier"):
        assert required in names
    readme = (ATTACKS / "README.md").read_text()
    for a in INDEX:
        assert f"`{a['file']}`" in readme


def test_corpus_is_reproducible(tmp_path):
    from tools.gen_attacks import generate

    generate(tmp_path)
    for a in INDEX:
        assert (tmp_path / a["file"]).read_bytes() == (ATTACKS / a["file"]).read_bytes(), a["file"]
    assert (tmp_path / "index.json").read_text() == (ATTACKS / "index.json").read_text()
    assert (tmp_path / "README.md").read_text() == (ATTACKS / "README.md").read_text()


def test_real_entry_point_one_line_no_traceback():
    """A few attacks through the installed entry point in a fresh process (import errors, stderr handling)."""
    for name in ("zstd-bomb-1gib", "signature-untrusted-key", "repo-id-control-char", "msgpack-nested-million"):
        a = BY_NAME[name]
        proc = subprocess.run([sys.executable, "-m", "pnc_pack", "verify", *_args(a), str(ATTACKS / a["file"])],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == a["verify_exit"], proc.stderr
        _check_stderr(proc.stderr, proc.returncode, a["error"])


def test_former_hang_is_gone():
    """labels-quadratic took 20 s to load and hours to inspect; a generous guard catches a return of the hang."""
    path = ATTACKS / "labels-quadratic.pncd"
    proc = subprocess.run([sys.executable, "-m", "pnc_pack", "inspect", "--json", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["labels"]) == 65536


def test_terminal_escapes_are_not_printed(capsys):
    rc, out, err = _cli(capsys, "inspect", str(ATTACKS / "local-path-csi.pncd"))
    assert rc == 0
    assert "\u009b" not in out and "\\x9b2J" in out


def test_unregistered_architecture_fails_at_apply(tmp_path):
    """'evilnet' is a valid name, so the file loads; building it (registry, load_pretrained) is ArchitectureError."""
    pytest.importorskip("torch")
    from pnc_pack.refs import ModelRef
    from pnc_pack.zoo.registry import build_model

    delta = codec.load(ATTACKS / "arch-unregistered.pncd")
    ref = delta.modules[0].source
    assert ref.arch == "evilnet"
    with pytest.raises(ArchitectureError, match="evilnet"):
        build_model(ref.arch, ref.arch_args)
    # the loader path: a model folder that claims to be an evilnet, pinned by a reference
    from pnc_pack.zoo.pretrained import load_pretrained

    folder = tmp_path / "evil"
    folder.mkdir()
    from pnc_pack.zoo.config import ModelConfig

    cfg = ModelConfig(arch="evilnet", arch_args={"num_classes": 5}, input_shape=[1, 28, 28], training={},
                      classes=[{"label": i, "name": str(i)} for i in range(5)])
    (folder / "config.json").write_bytes(cfg.to_json())
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    pinned = ModelRef.from_folder(folder, "evilnet", {"num_classes": 5})
    with pytest.raises(ArchitectureError, match="evilnet"):
        load_pretrained(folder, pinned)


def test_fuzz_regressions(capsys):
    """Every finding in the fuzz logs (tools/fuzz_log/) is committed under tests/attacks/regressions/, and each
    regression file is now a clean outcome: a PncError (one line on stderr, exit 3/4/5) or a consistent accept."""
    import hashlib

    from tools.fuzz_target import execute

    logs = sorted((ROOT / "tools" / "fuzz_log").glob("*.json"))
    assert logs, "no fuzz log committed"
    have = {p.name.split("-", 1)[1][:16] for p in REGRESSIONS}
    for log in logs:
        for f in json.loads(log.read_text())["findings"]:
            assert f["file"].split("-", 1)[1][:16] in have, (log.name, f["file"])
    for path in REGRESSIONS:
        data = path.read_bytes()
        assert path.name.split("-", 1)[1].startswith(hashlib.sha256(data).hexdigest()[:16])
        execute(data)  # raises on anything but a PncError or a consistent accept
        rc, out, err = _cli(capsys, "verify", str(path))
        assert rc in (0, 3, 4, 5), err
        assert "Traceback" not in err and len(err.splitlines()) == (0 if rc == 0 else 1)
