"""Write the clone-delta v1 test vectors into spec/vectors/ (or --out DIR), deterministically.

    python -m tools.gen_vectors [--out DIR]

Valid files cover every optional part and every dtype: unsigned, one and two signatures (test keys from fixed
seeds), hub and local references, one to three modules, F32/F16/BF16 (and the other dtypes), byte-grouped and
plain payloads, and a newer-minor file with ignored optional fields. Invalid files each break one rule; they are
forged with a correct digest (unless the digest is the point) so that a reader reaches the rule under test.
``index.json`` lists every file with its sha256, whether it is valid, the exact error class a reader raises and the
CLI exit code; valid files have their expected decode (``pnc-pack inspect --json`` output) in ``NAME.json``.

A test (tests/test_format_vectors.py) regenerates into a temporary folder and compares bytes with the committed
files. The compressed payloads depend on the zstd library: after a zstandard upgrade, regenerate and review.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import struct
import sys
from pathlib import Path

import msgpack
import zstandard

from pnc_pack.format import canonical, container
from pnc_pack.format.codec import decode, dumps
from pnc_pack.format.delta import Mask
from pnc_pack.format.header import build_header
from pnc_pack.format.limits import DIGEST_SIZE, MAGIC, SIGNING_CONTEXT
from pnc_pack.format.payload import ZSTD_MAGIC, encode_payload, plan
from pnc_pack.format.signing import fingerprint, private_key_from_seed, public_key_bytes, public_key_pem, sign
from pnc_pack.format.summary import summarize
from pnc_pack.format.testing import make_delta, random_tensor
from pnc_pack.fsutil import atomic_write

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "spec" / "vectors"
KEY_SEEDS = {name: hashlib.sha256(f"pnc-pack clone-delta v1 test key {name}".encode()).digest() for name in "ab"}
EXIT = {"FormatError": 3, "LimitError": 3, "VersionError": 3, "IntegrityError": 3, "KeyFormatError": 3,
        "SignatureError": 4, "ReferenceError": 5}


def vector_key(name: str):
    return private_key_from_seed(KEY_SEEDS[name])


# -- forging -----------------------------------------------------------------------------------------------------
def parts(delta, encoding="zstd+bytegroup"):
    """(header map, payload bytes) of ``delta`` as the writer makes them."""
    payload, raw = encode_payload(delta.tensors(), encoding)
    return build_header(delta, encoding, raw), payload


def forge(header, payload: bytes, *, major=1, minor=0, flags=0, header_bytes: bytes | None = None,
          header_len: int | None = None, sigs=(), digest: bytes | None = None, trailing: bytes = b"",
          raw_sig_section: bytes | None = None) -> bytes:
    """Assemble a file from parts, with a correct digest unless ``digest`` is given."""
    hb = header_bytes if header_bytes is not None else canonical.packb(header)
    pre = struct.pack("<8sHHIQQ", MAGIC, major, minor, flags, len(hb) if header_len is None else header_len,
                      len(payload))
    body = pre + hb + payload
    d = hashlib.sha256(body).digest() if digest is None else digest
    sig_section = raw_sig_section if raw_sig_section is not None else container.signature_section(sigs)
    return body + d + sig_section + trailing


def resign(data: bytes, keys) -> bytes:
    """Replace the signature section with signatures by ``keys`` over the file's (possibly forged) digest."""
    c = container.parse(data)
    sigs = [(public_key_bytes(k), k.sign(SIGNING_CONTEXT + c.digest)) for k in keys]
    return data[:c.signed_size + DIGEST_SIZE] + container.signature_section(sigs)


# -- the vectors -------------------------------------------------------------------------------------------------
def valid_vectors() -> dict[str, tuple[str, bytes]]:
    """name -> (description, bytes)."""
    out = {}
    base = make_delta(1)
    out["valid-minimal"] = ("one module, F32, hub refs, byte-grouped payload, unsigned", dumps(base))
    out["valid-plain-zstd"] = ("as valid-minimal with the plain zstd encoding (no byte grouping)",
                               dumps(base, encoding="zstd"))
    out["valid-f16-local"] = ("F16 tensors, local (unpublished) target and source references",
                              dumps(make_delta(1, dtype="F16", local=True, seed=1)))
    out["valid-bf16-two-modules"] = ("two modules, BF16 adapters and classifier",
                                     dumps(make_delta(2, dtype="BF16", seed=2)))
    mixed = make_delta(3, dtype="F16", classifier_dtype="F32", seed=3, provenance={
        "builder": "tools/gen_vectors.py", "config": {"lr": 0.001, "epochs": 20, "betas": [0.9, 0.999]},
        "flags": [True, False, None], "negative": -123456789, "big": 2**63 + 5, "blob": b"\x00\x01\xfe\xff",
        "unicode": "chiffre \u00e9 \u6570\u5b57"}, metrics={"accuracy": {"ori": 0.98125, "tar": 0.9},
                                                          "loss_per_R": [1.25, 0.5, 0.375, -0.0]})
    extra = {f"dtype_{d.lower()}": random_tensor(d, (3, 2), seed=40 + i)
             for i, d in enumerate(("F64", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"))}
    m0 = dataclasses.replace(mixed.modules[0], adapter={**mixed.modules[0].adapter, **extra},
                             masks=mixed.modules[0].masks + (Mask.from_bools("blocks.3.extra", [True] * 9),))
    mixed = dataclasses.replace(mixed, modules=(m0,) + mixed.modules[1:])
    out["valid-three-modules-all-dtypes"] = (
        "three modules (one local source), every dtype, rich provenance (nested maps, bin, nil, big ints, "
        "non-ASCII text) and metrics", dumps(mixed))
    out["valid-signed-one"] = ("valid-minimal signed by test key a", dumps(sign(base, vector_key("a"))))
    out["valid-signed-two"] = ("valid-minimal signed by test keys a and b",
                               dumps(sign(sign(base, vector_key("b")), vector_key("a"))))
    h, p = parts(base)
    h["version"] = [1, 1]
    h["optional_fields"] = ["modules.*.quantization", "payload.checksum", "release_notes"]
    h["modules"][0]["quantization"] = {"scheme": "none"}
    h["payload"]["checksum"] = "xxh64:0"
    h["release_notes"] = "a field from a future minor version"
    out["valid-newer-minor-optional-fields"] = (
        "minor 1 (newer than 1.0) with unknown fields listed in optional_fields: accepted, fields ignored",
        forge(h, p, minor=1))
    h, p = parts(base)
    h["version"] = [1, 1]
    h["optional_fields"] = ["metrics", "modules.*.unused"]
    out["valid-newer-minor-listed-known-field"] = (
        "minor 1 listing a field this reader knows ('metrics') and a path no field has: both have no effect (§9)",
        forge(h, p, minor=1))
    h, p = parts(base)
    h["target"]["arch"] = "zz-unregistered"
    h["modules"][0]["adapter_kind"] = "zz-unregistered-adapter"
    h["classifier_kind"] = "zz-unregistered-classifier"
    h["labels"][0].update(name="\u202eright-to-left override, not a control character")
    h["labels"][1].update(name="")
    h["labels"][2].update(name="n" * 255, class_index=2**64 - 1)
    h["modules"][0]["masks"][0]["layer"] = "l" * 255
    out["valid-unregistered-names"] = (
        "names no registry knows (arch, kinds: checked when applied, not read), a 255-character label and layer "
        "name, an empty label name, U+202E in a label name, a class index of 2^64-1", forge(h, p))
    return out


def invalid_vectors() -> dict[str, tuple[str, str, bytes]]:
    """name -> (description, error class, bytes)."""
    base = make_delta(1)
    good = dumps(base)
    c = container.parse(good)
    v: dict[str, tuple[str, str, bytes]] = {}

    def add(name, error, description, data):
        v[name] = (description, error, data)

    def with_header(mutate, error, name, description, encoding="zstd+bytegroup", **kw):
        h, p = parts(base, encoding)
        mutate(h)
        add(name, error, description, forge(h, p, **kw))

    # container
    add("bad-magic", "FormatError", "first byte changed from 0x89", b"\x88" + good[1:])
    add("text-mangled-magic", "FormatError", "CR-LF in the magic turned into LF (text-mode transfer)",
        good[:5] + b"\n" + good[7:])
    h, p = parts(base)
    add("newer-major", "VersionError", "major version 2", forge(h, p, major=2))
    add("nonzero-flags", "FormatError", "preamble flags not 0", forge(h, p, flags=1))
    add("truncated-preamble", "FormatError", "only 20 bytes", good[:20])
    add("truncated-payload", "FormatError", "cut in the middle of the payload", good[:c.signed_size - 10])
    add("truncated-signatures", "FormatError", "signature count says 1, no signature follows",
        good[:-4] + struct.pack("<I", 1))
    add("trailing-bytes", "FormatError", "a byte after the signature section", good + b"\x00")
    add("digest-mismatch", "IntegrityError", "one payload byte changed, digest not updated",
        good[:c.signed_size - 5] + bytes([good[c.signed_size - 5] ^ 0x40]) + good[c.signed_size - 4:])
    add("header-len-over-limit", "LimitError", "header_len declares 1 GiB",
        forge(h, p, header_len=1 << 30))
    add("too-many-signatures", "LimitError", "signature count 1000", good[:-4] + struct.pack("<I", 1000))
    # canonical msgpack
    unsorted = msgpack.packb(dict(reversed(list(canonical.to_canonical(h).items()))), use_bin_type=True)
    add("header-unsorted-keys", "FormatError", "header map keys not sorted", forge(h, p, header_bytes=unsorted))
    hb = canonical.packb(h)
    dup = bytes([hb[0] + 1]) + hb[1:] + canonical.packb("version") + canonical.packb([1, 0])
    add("header-duplicate-key", "FormatError", "the key 'version' twice (map count raised, pair appended)",
        forge(h, p, header_bytes=dup))
    long_int = hb.replace(canonical.packb("target_blocks") + b"\x04", canonical.packb("target_blocks") + b"\xcc\x04")
    add("header-long-int", "FormatError", "target_blocks 4 as uint8 instead of fixint",
        forge(h, p, header_bytes=long_int))
    f32 = hb.replace(b"\xcb" + struct.pack(">d", 0.9375), b"\xca" + struct.pack(">f", 0.9375) + b"")
    add("header-float32", "FormatError", "a metric stored as float32", forge(h, p, header_bytes=f32))
    add("header-trailing-data", "FormatError", "a byte after the header's msgpack value",
        forge(h, p, header_bytes=hb + b"\xc0"))
    add("header-not-a-map", "FormatError", "the header is an array", forge([1, 0], p))
    deep: list = []
    cur = deep
    for _ in range(40):
        cur.append([])
        cur = cur[0]
    nested = msgpack.packb({**canonical.to_canonical(h), "provenance": {"deep": deep}}, use_bin_type=True)
    nested = canonical.packb(msgpack.unpackb(nested, raw=False), max_depth=100)
    add("header-too-deep", "LimitError", "provenance nested 40 arrays deep", forge(h, p, header_bytes=nested))
    bad_utf8 = hb.replace(canonical.packb("digit 0"), b"\xa7digit \xff")
    add("header-bad-utf8", "FormatError", "a label name that is not UTF-8", forge(h, p, header_bytes=bad_utf8))
    nan = hb.replace(b"\xcb" + struct.pack(">d", 0.9375), b"\xcb" + struct.pack(">d", float("nan")))
    add("header-nan", "FormatError", "a NaN metric", forge(h, p, header_bytes=nan))
    # schema
    with_header(lambda h: h.pop("metrics"), "FormatError", "missing-field", "no 'metrics' field")
    with_header(lambda h: h.update(surprise=1), "FormatError", "unknown-field", "unknown top-level field, minor 0")
    with_header(lambda h: h.update(surprise=1, version=[1, 1]), "FormatError", "newer-minor-unlisted-field",
                "minor 1 with an unknown field not listed in optional_fields", minor=1)
    with_header(lambda h: h.update(required_features=["sparse-masks"]), "VersionError", "unknown-required-feature",
                "required_features names a feature this reader lacks")
    with_header(lambda h: h["payload"].update(encoding="zstd+delta"), "VersionError", "unknown-encoding",
                "payload encoding this reader lacks")
    with_header(lambda h: h.update(version=[1, 1]), "FormatError", "version-mismatch",
                "header version 1.1, preamble 1.0")
    with_header(lambda h: h["target"].update(commit="main"), "ReferenceError", "unpinned-revision",
                "target pinned to the branch name 'main'")
    with_header(lambda h: h["modules"][0]["source"].update(commit="a" * 39), "ReferenceError", "short-commit",
                "source commit of 39 hex digits")
    with_header(lambda h: h["target"].update(repo_id="../../etc"), "ReferenceError", "bad-repo-id",
                "repo id '../../etc'")
    with_header(lambda h: h["target"]["files"].update({"../model.safetensors": h["target"]["files"]["config.json"]}),
                "ReferenceError", "file-name-dotdot", "a pinned file named '../model.safetensors'")
    with_header(lambda h: h["target"]["files"].update({"sub/model.safetensors": h["target"]["files"]["config.json"]}),
                "ReferenceError", "file-name-separator", "a pinned file named 'sub/model.safetensors'")
    with_header(lambda h: h["target"].update(local_path="models/target"), "ReferenceError", "ref-hub-and-local",
                "a reference with both a hub commit and a local path")
    with_header(lambda h: h["modules"][0].update(target_position=4), "FormatError", "target-position-out-of-range",
                "R = L_t")
    with_header(lambda h: h["modules"][0].update(source_position=-1), "FormatError", "source-position-negative",
                "R_s = -1")
    with_header(lambda h: h["labels"][5].update(model="source:3"), "FormatError", "label-bad-module",
                "label entry pointing at module 3 of 1")
    with_header(lambda h: h["labels"][5].update(class_index=7), "FormatError", "label-class-not-cloned",
                "label entry for a class the module does not clone")
    with_header(lambda h: h["labels"].append(dict(h["labels"][0])), "FormatError", "label-duplicate",
                "the same (model, class) twice in the label map")
    with_header(lambda h: h["modules"][0].update(clone_classes=[0, 0]), "FormatError", "clone-classes-duplicate",
                "clone_classes [0, 0]")
    with_header(lambda h: h["modules"][0]["masks"].append(dict(h["modules"][0]["masks"][0])), "FormatError",
                "mask-layer-duplicate", "two masks for one layer")
    with_header(lambda h: h["modules"][0]["masks"][0].update(bits=b"\xff"), "FormatError", "mask-padding-bits",
                "6-filter mask with padding bits set")
    with_header(lambda h: h["modules"][0]["masks"][0].update(filters=100), "FormatError", "mask-length",
                "mask of 100 filters with 1 byte of bits")
    with_header(lambda h: h["classifier_args"].update(num_outputs=6), "FormatError", "num-outputs-mismatch",
                "classifier num_outputs 6 with 7 labels")
    with_header(lambda h: h["modules"][0].update(adapter_kind="os.system"), "FormatError", "kind-import-path",
                "adapter kind that looks like an import path")
    with_header(lambda h: h["tensors"].pop("classifier.bias"), "FormatError", "index-missing-tensor",
                "a tensor owned by the classifier is missing from the tensor index")
    with_header(lambda h: h["tensors"]["classifier.weight"].update(shape=[24, 7]), "FormatError",
                "shape-disagrees-with-payload", "index shape [24, 7] for a [7, 24] payload tensor (same byte size)")
    with_header(lambda h: h["tensors"]["classifier.weight"].update(shape=[7, 25]), "FormatError",
                "shape-disagrees-with-size", "index shape [7, 25]: raw_size and the payload disagree with it")
    with_header(lambda h: (h["classifier_tensors"].append("x/../y"), h["tensors"].update(
        {"classifier.x/../y": {"dtype": "F32", "shape": [1]}})), "FormatError", "tensor-name-path",
        "a tensor named 'classifier.x/../y'")
    with_header(lambda h: h["tensors"]["classifier.bias"].update(shape=[2**31, 2**31]), "LimitError",
                "tensor-too-large", "a tensor of 2^62 elements")
    with_header(lambda h: h["payload"].update(raw_size=h["payload"]["raw_size"] + 8), "FormatError",
                "raw-size-mismatch", "raw_size 8 bytes more than the tensor index implies")
    # issue 20: whole-string grammars, integers that are not bool or float, names past max_name, reference types
    with_header(lambda h: h["modules"][0]["source"].update(commit=h["modules"][0]["source"]["commit"] + "\n"),
                "ReferenceError", "commit-trailing-newline", "a source commit of 40 hex digits and a newline")
    with_header(lambda h: h["labels"][0].update(model="target\n"), "FormatError", "label-model-trailing-newline",
                "a label model 'target' and a newline")
    with_header(lambda h: (h["classifier_tensors"].__setitem__(0, "bias\n"), h["tensors"].__setitem__(
        "classifier.bias\n", h["tensors"].pop("classifier.bias"))), "FormatError", "tensor-name-trailing-newline",
        "the tensor 'classifier.bias' renamed with a trailing newline in both places")
    with_header(lambda h: h["payload"].update(encoding="zstd+bytegroup\n"), "VersionError",
                "encoding-trailing-newline", "payload encoding 'zstd+bytegroup' and a newline: not a known encoding")
    with_header(lambda h: h.update(version=[True, 0]), "FormatError", "version-bool", "header version [true, 0]")
    with_header(lambda h: h.update(version=[1.0, 0]), "FormatError", "version-float", "header version [1.0, 0]")
    with_header(lambda h: h["target"]["files"]["config.json"].update(size=True), "FormatError", "file-size-bool",
                "a pinned file size of true")
    with_header(lambda h: h["target"].update(commit=h["target"]["commit"].encode()), "FormatError",
                "ref-commit-not-a-string", "a commit stored as bin: a wrong type is FormatError, also in a reference")
    with_header(lambda h: h["labels"][0].update(name="n" * 256), "LimitError", "label-name-too-long",
                "a label name of 256 characters (max_name is 255)")
    with_header(lambda h: (h["classifier_tensors"].__setitem__(0, "b" * 256), h["tensors"].__setitem__(
        "classifier." + "b" * 256, h["tensors"].pop("classifier.bias"))), "LimitError", "tensor-name-too-long",
        "a tensor name of 256 characters, in the index and the classifier's list")
    with_header(lambda h: h["target"]["files"].update({"f" * 256: h["target"]["files"]["config.json"]}),
                "ReferenceError", "file-name-too-long", "a pinned file name of 256 characters (a reference rule)")
    # issue 20: the ambiguities the spec now settles
    with_header(lambda h: h["labels"][0].update(name="digit \u009b0"), "FormatError", "label-name-c1-control",
                "a label name holding U+009B (a C1 control character)")
    with_header(lambda h: h.update(optional_fields=["release_notes"]), "FormatError", "optional-fields-in-1.0",
                "a 1.0 file whose optional_fields is not []")
    with_header(lambda h: h.update(version=[1, 1], optional_fields=["modules.0.quantization"],
                                   modules=[{**h["modules"][0], "quantization": 1}]),
                "FormatError", "optional-field-index-path", "minor 1 listing 'modules.0.quantization': not a path "
                "(an array index is always '*' in a path)", minor=1)
    with_header(lambda h: h.update(version=[1, 1], optional_fields=["a.b"], **{"a.b": 1}), "FormatError",
                "optional-field-dotted-key", "minor 1 with an unknown top-level key 'a.b' listed as 'a.b': a key that "
                "is not a field name is never ignorable", minor=1)
    add("truncated-digest", "FormatError", "cut in the middle of the digest (check 5: a short file is FormatError)",
        good[:c.signed_size + 10])
    bool_delta = make_delta(1)
    bool_mod = dataclasses.replace(bool_delta.modules[0], adapter={
        **bool_delta.modules[0].adapter, "gate": random_tensor("BOOL", (4,), seed=5)})
    bool_delta = dataclasses.replace(bool_delta, modules=(bool_mod,))
    h, p = parts(bool_delta, "zstd")
    blob = bytearray(zstandard.ZstdDecompressor().decompress(p))
    gate = next(r for r in plan({n: (e["dtype"], tuple(e["shape"])) for n, e in h["tensors"].items()}).regions
                if r.name == "modules.0.adapter.gate")
    blob[gate.start] = 2
    add("bool-not-0-or-1", "FormatError", "a BOOL tensor element stored as the byte 2",
        forge(h, zstandard.ZstdCompressor(level=9, write_content_size=True).compress(bytes(blob))))
    h, p = parts(base)
    n = (1 << 27) + 64
    h["tensors"]["classifier.bias"] = {"dtype": "U8", "shape": [n]}
    raw = plan({k: (e["dtype"], tuple(e["shape"])) for k, e in h["tensors"].items()}).size
    h["payload"]["raw_size"] = raw
    single = ZSTD_MAGIC + bytes([0xA0]) + raw.to_bytes(4, "little") + b"\x01\x00\x00"
    add("zstd-single-segment-window", "LimitError", "a single-segment frame: its window is its content size, "
        f"{raw} bytes, over 2^27", forge(h, single))
    # payload
    h, p = parts(base)
    add("payload-trailing-data", "FormatError", "a byte after the zstd frame", forge(h, p + b"\x00"))
    add("payload-not-zstd", "FormatError", "payload does not start with the zstd magic", forge(h, b"\x00" + p[1:]))
    big = bytes(64 << 20)
    frame = _bomb_frame(big, h["payload"]["raw_size"])
    add("zstd-bomb", "FormatError", "a frame declaring raw_size bytes that decompresses to 64 MiB",
        forge(h, frame))
    # signatures
    signed = dumps(sign(base, vector_key("a")))
    add("signature-invalid", "SignatureError", "one bit of the signature flipped",
        signed[:-1] + bytes([signed[-1] ^ 1]))
    sc = container.parse(signed)
    sec = signed[sc.signed_size + DIGEST_SIZE:]
    add("signature-duplicate-key", "FormatError", "the same key's signature twice",
        signed[:sc.signed_size + DIGEST_SIZE] + struct.pack("<I", 2) + sec[4:] + sec[4:])
    two = dumps(sign(sign(base, vector_key("a")), vector_key("b")))
    tc = container.parse(two)
    s1, s2 = two[tc.signed_size + DIGEST_SIZE + 4:][:96], two[tc.signed_size + DIGEST_SIZE + 4:][96:]
    add("signatures-unsorted", "FormatError", "two signatures not sorted by public key",
        two[:tc.signed_size + DIGEST_SIZE] + struct.pack("<I", 2) + s2 + s1)
    other = dumps(make_delta(1, seed=9))
    oc = container.parse(resign(other, [vector_key("a")]))
    add("signature-other-file", "SignatureError", "valid-minimal carrying a signature made for another delta",
        good[:-4] + struct.pack("<I", 1) + oc.signatures[0][0] + oc.signatures[0][1])
    return v


def _bomb_frame(content: bytes, declared: int) -> bytes:
    """A zstd frame of ``content`` whose header claims ``declared`` bytes (a 4-byte Frame_Content_Size)."""
    import zstandard

    f = zstandard.ZstdCompressor(level=3, write_content_size=False, write_checksum=False,
                                 write_dict_id=False).compress(content)
    fhd = f[4]
    assert fhd >> 5 == 0  # no content size, not single-segment: a window descriptor follows
    return f[:4] + bytes([fhd | 0x80, f[5]]) + declared.to_bytes(4, "little") + f[6:]


# -- writing -----------------------------------------------------------------------------------------------------
def generate(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    index = {"format": "pnc-pack clone-delta v1 test vectors", "generator": "tools/gen_vectors.py",
             "keys": {}, "vectors": []}
    for name, seed in KEY_SEEDS.items():
        pk = public_key_bytes(vector_key(name))
        atomic_write(out / f"test-key-{name}.pub", public_key_pem(pk))
        index["keys"][name] = {"seed": seed.hex(), "public_key": pk.hex(), "fingerprint": fingerprint(pk),
                               "file": f"test-key-{name}.pub"}
    for name, (desc, data) in valid_vectors().items():
        delta, info = decode(data)
        summary = summarize(delta, info)
        atomic_write(out / f"{name}.pncd", data)
        atomic_write(out / f"{name}.json", (json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False)
                                            + "\n").encode())
        index["vectors"].append({"file": f"{name}.pncd", "valid": True, "description": desc,
                                 "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                 "expected": f"{name}.json", "exit_code": 0})
    for name, (desc, error, data) in invalid_vectors().items():
        atomic_write(out / f"{name}.pncd", data)
        index["vectors"].append({"file": f"{name}.pncd", "valid": False, "description": desc, "error": error,
                                 "exit_code": EXIT[error], "sha256": hashlib.sha256(data).hexdigest(),
                                 "size": len(data)})
    write_index(out, index)
    return index


def write_index(out: Path, index: dict) -> None:
    atomic_write(out / "index.json", (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())


def cli(doc: str, generate, default_out: Path, key: str, argv=None) -> int:
    """The command line of a generator: ``--out DIR`` (default ``default_out``), then one line saying what it wrote."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", type=Path, default=default_out)
    args = ap.parse_args(argv)
    index = generate(args.out)
    print(f"wrote {len(index[key])} {key} to {args.out}")
    return 0


def main(argv=None) -> int:
    return cli(__doc__, generate, DEFAULT_OUT, "vectors", argv)


if __name__ == "__main__":
    sys.exit(main())
