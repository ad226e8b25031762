"""Issue 20 items 1-6: the reader and the writers hold to spec/clone-delta-v1.md revision 2 where an outside reader
and structure-aware mutants found them lenient, crashing or disagreeing with the spec."""

import dataclasses
import json
from pathlib import Path

import pytest

import pnc_pack.errors as errors
from pnc_pack import refs
from pnc_pack.cli import main as cli_main
from pnc_pack.errors import FormatError, LimitError, ReferenceError, VersionError
from pnc_pack.format import codec, compose, rules
from pnc_pack.format.delta import LabelEntry
from pnc_pack.format.payload import TENSOR_NAME_RE
from pnc_pack.format.signing import private_key_from_seed, sign, sign_bytes, sign_file
from pnc_pack.format.testing import make_delta

ROOT = Path(__file__).resolve().parents[1]

from tools import mutate

VECTORS = ROOT / "spec" / "vectors"
INDEX = {v["file"]: v for v in json.loads((VECTORS / "index.json").read_text())["vectors"]}
KEY = private_key_from_seed(bytes(range(32)))


def forge(edit, data: bytes | None = None, minor: int | None = None) -> bytes:
    """``data`` (default: a fresh valid delta) with its header edited by ``edit``, re-digested and re-signed."""
    f = mutate.decode(data if data is not None else codec.dumps(make_delta(1)))
    edit(f.header)
    if minor is not None:
        f.minor = minor
    return mutate.encode(f)


def error_of(data: bytes) -> str:
    return mutate.verdict(data)


# -- 1. whole-string matches -------------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", [refs.REPO_ID_RE, refs.COMMIT_RE, refs.SHA256_RE, refs.ARCH_RE, rules.KIND_RE,
                                     rules.FEATURE_RE, rules.FIELD_RE, rules.PATH_RE, rules.LABEL_MODEL_RE,
                                     TENSOR_NAME_RE])
def test_no_pattern_accepts_a_trailing_newline(pattern):
    sample = {refs.REPO_ID_RE: "org/name", refs.COMMIT_RE: "a" * 40, refs.SHA256_RE: "b" * 64,
              refs.ARCH_RE: "lenet5", rules.KIND_RE: "linear", rules.FEATURE_RE: "x", rules.FIELD_RE: "x",
              rules.PATH_RE: "modules.*.x", rules.LABEL_MODEL_RE: "source:0", TENSOR_NAME_RE: "weight"}[pattern]
    assert pattern.fullmatch(sample) and pattern.match(sample)
    for bad in (sample + "\n", "\n" + sample, sample + "\r\n"):
        assert not pattern.fullmatch(bad) and not pattern.match(bad), bad  # .match() too: anchored with \A, \Z


@pytest.mark.parametrize("where, edit, error", [
    ("commit", lambda h: h["target"].update(commit=h["target"]["commit"] + "\n"), "ReferenceError"),
    ("repo_id", lambda h: h["target"].update(repo_id="pnc-test/target\n"), "ReferenceError"),
    ("arch", lambda h: h["target"].update(arch="lenet5\n"), "ReferenceError"),
    ("sha256", lambda h: h["target"]["files"]["config.json"].update(
        sha256=h["target"]["files"]["config.json"]["sha256"] + "\n"), "ReferenceError"),
    ("file name", lambda h: h["target"]["files"].update({"model.bin\n": h["target"]["files"]["config.json"]}),
     "ReferenceError"),
    ("adapter_kind", lambda h: h["modules"][0].update(adapter_kind="conv1x1\n"), "FormatError"),
    ("classifier_kind", lambda h: h.update(classifier_kind="linear\n"), "FormatError"),
    ("label model", lambda h: h["labels"][5].update(model="source:0\n"), "FormatError"),
    ("mask layer", lambda h: h["modules"][0]["masks"][0].update(layer="blocks.2.act\n"), "FormatError"),
    ("tensor name", lambda h: (h["classifier_tensors"].__setitem__(0, "bias\n"),
                               h["tensors"].__setitem__("classifier.bias\n", h["tensors"].pop("classifier.bias"))),
     "FormatError"),
])
def test_trailing_newline_is_refused_everywhere(where, edit, error):
    assert error_of(forge(edit)) == error, where


# -- 2. booleans and floats are not integers ---------------------------------------------------------------------
@pytest.mark.parametrize("version", [[True, 0], [1, False], [1.0, 0], [1, 0.0]])
def test_version_of_booleans_or_floats(version):
    assert error_of(forge(lambda h: h.update(version=version))) == "FormatError"


@pytest.mark.parametrize("edit", [
    lambda h: h.update(target_blocks=4.0), lambda h: h.update(target_blocks=True),
    lambda h: h["modules"][0].update(target_position=2.0), lambda h: h["labels"][0].update(class_index=False),
    lambda h: h["classifier_args"].update(num_outputs=7.0), lambda h: h["payload"].update(raw_size=float(
        h["payload"]["raw_size"])), lambda h: h["target"]["files"]["config.json"].update(size=True),
    lambda h: h["modules"][0]["masks"][0].update(filters=6.0),
])
def test_no_integer_field_takes_a_boolean_or_float(edit):
    assert error_of(forge(edit)) == "FormatError"


# -- 3. the crash ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["target\n", "source:0\n", "source:", "source:00", "source:-1", "source:x",
                                   "target:0", "source:99999999999"])
def test_label_model_is_a_typed_error_never_a_crash(model):
    assert error_of(forge(lambda h: h["labels"][0].update(model=model))) == "FormatError"


# -- 4. writers validate with the reader's rules -----------------------------------------------------------------
def _bad_deltas():
    d = make_delta(1)
    yield "label model", dataclasses.replace(d, labels=(LabelEntry("target\n", 0, "x"),) + d.labels[1:]), FormatError
    yield "label name C1", dataclasses.replace(d, labels=(LabelEntry("target", 0, "x\x9b"),) + d.labels[1:]), \
        FormatError
    yield "label name long", dataclasses.replace(d, labels=(LabelEntry("target", 0, "n" * 256),) + d.labels[1:]), \
        LimitError
    yield "bool blocks", dataclasses.replace(d, target_blocks=True), FormatError
    yield "kind", dataclasses.replace(d, classifier_kind="linear\n"), FormatError
    ref = d.target
    object.__setattr__(ref := dataclasses.replace(ref), "commit", ref.commit + "\n")
    yield "commit", dataclasses.replace(d, target=ref), ReferenceError
    from pnc_pack.format.testing import random_tensor

    m = dataclasses.replace(d.modules[0], adapter={**d.modules[0].adapter, "gate": random_tensor("U8", (2,))})
    bad = dataclasses.replace(m.adapter["gate"], dtype="BOOL")
    object.__setattr__(bad, "data", b"\x02\x01")
    m = dataclasses.replace(m, adapter={**m.adapter, "gate": bad})
    yield "bool byte", dataclasses.replace(d, modules=(m,)), FormatError


@pytest.mark.parametrize("what, delta, error", list(_bad_deltas()), ids=lambda x: x if isinstance(x, str) else "")
def test_save_and_dumps_refuse_what_the_reader_refuses(tmp_path, what, delta, error):
    with pytest.raises(error) as info:
        codec.dumps(delta)
    assert type(info.value) is error
    out = tmp_path / "out.pncd"
    with pytest.raises(error):
        codec.save(delta, out)
    assert not out.exists()
    with pytest.raises(error):
        sign(delta, KEY)  # signing computes the digest of what would be written


def _composable(names: str):
    d = make_delta(1)
    labels = d.labels[:5] + tuple(dataclasses.replace(e, name=f"{names} {e.class_index}") for e in d.labels[5:])
    return dataclasses.replace(d, classifier_kind=compose.CLASSIFIER, labels=labels,
                               classifier={f"new.0.{k}": v for k, v in d.classifier.items()})


@pytest.mark.parametrize("name, error", [("bad\n", FormatError), ("bad\x85", FormatError), ("b" * 256, LimitError)])
def test_add_and_remove_write_only_what_the_reader_reads(name, error):
    """add joins a base and a delta with a forbidden label name: writing the result refuses it, as reading would."""
    base = _composable("base")
    new = _composable("new")
    new = dataclasses.replace(new, labels=new.labels[:5] + (dataclasses.replace(new.labels[5], name=name),)
                              + new.labels[6:])
    joined = compose.add(base, new)
    with pytest.raises(error):
        codec.dumps(joined)
    assert codec.loads(codec.dumps(compose.remove(joined, [1]))) == compose.remove(joined, [1])


def test_file_commands_refuse_a_forbidden_file_and_leave_it_alone(tmp_path, capsys):
    """remove, sign (in place and -o) and the sign API on a file with a forbidden value: the reader's error, the file
    unchanged, nothing written (before, they rewrote and re-signed it)."""
    bad = tmp_path / "bad.pncd"
    data = forge(lambda h: h["target"].update(commit=h["target"]["commit"] + "\n"))
    bad.write_bytes(data)
    key = tmp_path / "key"
    assert cli_main(["keygen", "-o", str(key)]) == 0
    out = tmp_path / "out.pncd"
    for cmd in (["remove", str(bad), "--module", "0", "-o", str(out)], ["sign", str(bad), "--key", str(key)],
                ["sign", str(bad), "--key", str(key), "-o", str(out)]):
        assert cli_main(cmd) == errors.ReferenceError.exit_code, cmd
        assert "ReferenceError" in capsys.readouterr().err
        assert bad.read_bytes() == data and not out.exists()
    with pytest.raises(ReferenceError):
        sign_bytes(data, KEY)
    with pytest.raises(ReferenceError):
        sign_file(bad, KEY)
    assert bad.read_bytes() == data


# -- 5. error classes agree with the spec ------------------------------------------------------------------------
@pytest.mark.parametrize("edit, error", [
    (lambda h: h["labels"][0].update(name="n" * 256), "LimitError"),  # names over max_name: LimitError (§10)
    (lambda h: h["modules"][0]["masks"][0].update(layer="l" * 256), "LimitError"),
    (lambda h: h["target"]["files"].update({"f" * 256: h["target"]["files"]["config.json"]}), "ReferenceError"),
    (lambda h: h["payload"].update(encoding="zstd+delta"), "VersionError"),  # unknown encoding (§6.2)
    (lambda h: h["payload"].update(encoding="zstd\n"), "VersionError"),
    (lambda h: h["payload"].update(encoding=1), "FormatError"),
    (lambda h: h["target"].update(commit=1), "FormatError"),  # mistyped reference fields: FormatError (§4.2)
    (lambda h: h["target"].update(repo_id=None), "FormatError"),
    (lambda h: h["target"].update(arch=["lenet5"]), "FormatError"),
    (lambda h: h["target"].update(files=[]), "FormatError"),
    (lambda h: h["target"]["files"]["config.json"].update(sha256=b"\x00" * 32), "FormatError"),
    (lambda h: h["target"]["files"]["config.json"].update(size=-1), "ReferenceError"),
    (lambda h: h["target"].update(files={}), "ReferenceError"),
    (lambda h: h["target"].pop("commit"), "ReferenceError"),  # the form of a reference: ReferenceError
    (lambda h: h["target"].pop("arch"), "FormatError"),
    (lambda h: h["classifier_kind"].__class__ and h.update(classifier_kind="k" * 300), "FormatError"),
])
def test_error_classes_follow_the_spec(edit, error):
    assert error_of(forge(edit)) == error


def test_a_frame_past_its_declared_size_and_a_directory_are_format_errors(tmp_path):
    vec = INDEX["zstd-bomb.pncd"]
    assert vec["error"] == "FormatError" and error_of((VECTORS / "zstd-bomb.pncd").read_bytes()) == "FormatError"
    with pytest.raises(FormatError) as info:
        codec.load(tmp_path)  # a directory given as a delta (§11); the CLI's own check is the CLI's
    assert type(info.value) is FormatError


def test_spec_and_vectors_name_the_same_classes():
    spec = (ROOT / "spec" / "clone-delta-v1.md").read_text()
    assert "decompression past `raw_size`" not in spec  # §6.3 and §11 no longer say LimitError for it
    assert "names over `max_name`" in spec and "not a regular file (a directory" in spec
    for name, cls in (("label-name-too-long", "LimitError"), ("tensor-name-too-long", "LimitError"),
                      ("file-name-too-long", "ReferenceError"), ("unknown-encoding", "VersionError"),
                      ("encoding-trailing-newline", "VersionError"), ("ref-commit-not-a-string", "FormatError"),
                      ("zstd-bomb", "FormatError")):
        assert INDEX[f"{name}.pncd"]["error"] == cls, name


# -- 6. the ambiguities the spec settles -------------------------------------------------------------------------
@pytest.mark.parametrize("name, error", [
    ("truncated-digest", "FormatError"), ("truncated-payload", "FormatError"),  # a short file in check 5
    ("too-many-signatures", "LimitError"),  # sig_count over the limit comes before the exact length
    ("optional-fields-in-1.0", "FormatError"), ("optional-field-index-path", "FormatError"),
    ("optional-field-dotted-key", "FormatError"), ("label-name-c1-control", "FormatError"),
    ("bool-not-0-or-1", "FormatError"), ("zstd-single-segment-window", "LimitError"),
    ("valid-unregistered-names", None), ("valid-newer-minor-listed-known-field", None),
])
def test_settled_by_a_vector(name, error):
    vec = INDEX[f"{name}.pncd"]
    assert vec["valid"] is (error is None) and vec.get("error") == error
    assert error_of((VECTORS / vec["file"]).read_bytes()) == (error or "ok")


def test_control_characters_c1_and_local_paths():
    assert error_of(forge(lambda h: h["labels"][0].update(name="a\x7f"))) == "FormatError"
    assert error_of(forge(lambda h: h["labels"][0].update(name="a\u0085"))) == "FormatError"
    assert error_of(forge(lambda h: h["labels"][0].update(name="\u202e\u2028"))) == "ok"  # not Cc
    assert error_of(forge(lambda h: h["target"]["files"].update({"a\x9b": h["target"]["files"]["config.json"]}))) \
        == "ReferenceError"
    local = codec.dumps(make_delta(1, local=True))
    assert error_of(forge(lambda h: h["target"].update(local_path="models/\x9bx"), local)) == "ok"  # C0 only
    assert error_of(forge(lambda h: h["target"].update(local_path="models/\x1bx"), local)) == "ReferenceError"


def test_precedence_own_rule_before_relations():
    """A value that breaks its own rule and a relation to another value gets its own rule's class (§1, §4.8)."""
    # a 256-character local tensor name: LimitError, although the tensor index no longer matches
    assert error_of(forge(lambda h: h["classifier_tensors"].__setitem__(0, "b" * 256))) == "LimitError"
    # an unknown required feature comes before everything else in the header
    assert error_of(forge(lambda h: h.update(required_features=["zz"], target_blocks=0))) == "VersionError"
    # a shape over max_elements: LimitError, although raw_size no longer matches
    assert error_of(forge(lambda h: h["tensors"]["classifier.bias"].update(shape=[2**16, 2**16]))) == "LimitError"


def test_newer_minor_paths():
    base = codec.dumps(make_delta(1))

    def newer(optional, **extra):
        return forge(lambda h: h.update(version=[1, 1], optional_fields=optional, **extra), base, minor=1)

    assert error_of(newer(["zz_new"], zz_new={"any": 1})) == "ok"
    assert error_of(newer(["metrics", "zz_unused"])) == "ok"
    assert error_of(newer([], zz_new=1)) == "FormatError"
    assert error_of(newer(["Zz"], Zz=1)) == "FormatError"  # not a field name: never a path
    assert error_of(newer(["zz_new", "zz_new"], zz_new=1)) == "FormatError"  # unique
    assert error_of(newer(["a" * 64 + "." + "b" * 64 + "." + "c" * 64 + "." + "d" * 64])) == "FormatError"  # > 255
    assert VersionError and rules.MAX_PATH == 255
