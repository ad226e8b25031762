"""Round trips, determinism and the writer's rules of the clone-delta codec (spec/clone-delta-v1.md)."""

import ctypes
import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
import safetensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pnc_pack.errors import FormatError, LimitError, PncError
from pnc_pack.format import canonical, codec, container
from pnc_pack.format.delta import CloneDelta, ClonedModule, LabelEntry, Mask, RawTensor
from pnc_pack.format.limits import Limits
from pnc_pack.format.payload import encode_blob, group_bytes, ungroup_bytes
from pnc_pack.format.testing import hub_ref, local_ref, make_delta, random_tensor
from pnc_pack.refs import FileDigest, ModelRef

ROOT = Path(__file__).resolve().parents[1]

ST_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
            "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def test_roundtrip_every_dtype_and_encoding():
    for dtype in ("F32", "F16", "BF16"):
        d = make_delta(2, dtype=dtype, seed=3)
        for enc in ("zstd", "zstd+bytegroup"):
            data = codec.dumps(d, encoding=enc)
            assert codec.loads(data) == d
            delta, info = codec.decode(data)
            assert info.encoding == enc and info.file_size == len(data)


def test_save_load_atomic(tmp_path):
    d = make_delta(1, local=True)
    p = tmp_path / "x.pncd"
    n = codec.save(d, p)
    assert p.stat().st_size == n and codec.load(p) == d
    # A failing save leaves the old file and no temporary file behind.
    bad = dataclasses.replace(d, classifier_args={"num_outputs": 99})
    with pytest.raises(FormatError):
        codec.save(bad, p)
    assert codec.load(p) == d
    assert sorted(x.name for x in tmp_path.iterdir()) == ["x.pncd"]


def test_blob_is_what_safetensors_serialize_writes():
    tensors = {f"t.{d.lower()}": random_tensor(d, (3, 2), seed=i) for i, d in enumerate(ST_NAMES)}
    tensors["empty"] = RawTensor("U8", (0,), b"")
    tensors["scalar"] = random_tensor("F32", (), seed=9)
    ours, _ = encode_blob(tensors)
    bufs = [ctypes.create_string_buffer(t.data, max(1, len(t.data))) for t in tensors.values()]
    specs = {n: safetensors.TensorSpec(dtype=ST_NAMES[t.dtype], shape=list(t.shape),
                                       data_ptr=ctypes.addressof(b), data_len=len(t.data))
             for (n, t), b in zip(tensors.items(), bufs)}
    assert safetensors.serialize(specs) == ours
    parsed = {n: i for n, i in safetensors.deserialize(ours)}
    assert {n: bytes(i["data"]) for n, i in parsed.items()} == {n: t.data for n, t in tensors.items()}


def test_byte_grouping_roundtrip_and_planes():
    t = {"w": RawTensor("F32", (2,), bytes([1, 2, 3, 4, 5, 6, 7, 8])), "i": RawTensor("I32", (1,), b"abcd")}
    blob, layout = encode_blob(t)
    g = group_bytes(blob, layout)
    w = next(r for r in layout.regions if r.name == "w")
    i = next(r for r in layout.regions if r.name == "i")
    assert g[w.start:w.end] == bytes([1, 5, 2, 6, 3, 7, 4, 8])  # plane j = byte j of every element
    assert g[i.start:i.end] == b"abcd"  # integers are not grouped
    assert bytes(ungroup_bytes(g, layout)) == blob


def test_deterministic_across_processes():
    code = ("import hashlib, sys; from pnc_pack.format.testing import make_delta; "
            "from pnc_pack.format.codec import dumps; "
            "sys.stdout.write(hashlib.sha256(dumps(make_delta(2, dtype='BF16', seed=5))).hexdigest())")
    want = hashlib.sha256(codec.dumps(make_delta(2, dtype="BF16", seed=5))).hexdigest()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.stdout == want


def test_dict_order_does_not_matter():
    d = make_delta(1, provenance={"b": 1, "a": {"y": 2, "x": 3}})
    e = dataclasses.replace(d, provenance={"a": {"x": 3, "y": 2}, "b": 1},
                            classifier=dict(reversed(list(d.classifier.items()))))
    assert codec.dumps(d) == codec.dumps(e)


def test_digest_ignores_signatures_and_layout_offsets():
    data = codec.dumps(make_delta(1))
    c = container.parse(data)
    assert c.digest == hashlib.sha256(data[:c.signed_size]).digest()
    assert data[c.signed_size + 32:] == b"\x00\x00\x00\x00"
    assert data[:8] == b"\x89PNCD\r\n\x1a" and data[8:12] == b"\x01\x00\x00\x00"


@pytest.mark.parametrize("mutate, match", [
    (lambda d: dataclasses.replace(d, classifier_args={"in_features": 24}), "num_outputs"),
    (lambda d: dataclasses.replace(d, metrics={"loss": float("nan")}), "non-finite"),
    (lambda d: dataclasses.replace(d, provenance={1: "x"}), "not a string"),
    (lambda d: dataclasses.replace(d, provenance={"x": object()}), "cannot be stored"),
    (lambda d: dataclasses.replace(d, target_blocks=2), "target_position"),
    (lambda d: dataclasses.replace(d, classifier={**d.classifier, "a/b": RawTensor("U8", (1,), b"x")}), "tensor name"),
    (lambda d: dataclasses.replace(d, labels=d.labels[:-1]), "num_outputs"),
])
def test_writer_refuses_what_readers_refuse(mutate, match):
    with pytest.raises(FormatError, match=match):
        codec.dumps(mutate(make_delta(1)))


def test_writer_limits():
    d = make_delta(1)
    with pytest.raises(LimitError):
        codec.dumps(d, limits=Limits(max_payload_raw=100))
    with pytest.raises(LimitError):
        codec.dumps(d, limits=Limits(max_tensors=2))
    with pytest.raises(LimitError):
        codec.dumps(dataclasses.replace(d, provenance={"deep": [[[[[[]]]]]]}), limits=Limits(max_depth=4))


def test_reader_limits_are_enforced_before_work():
    data = codec.dumps(make_delta(1))
    for limits in (Limits(max_header_bytes=100), Limits(max_payload_compressed=100), Limits(max_payload_raw=100),
                   Limits(max_str=4), Limits(max_map=3), Limits(max_array=2), Limits(max_dims=1),
                   Limits(max_elements=10), Limits(max_mask_filters=4)):
        with pytest.raises(LimitError):
            codec.loads(data, limits=limits)


def test_load_refuses_oversized_file_before_reading(tmp_path):
    p = tmp_path / "big.pncd"
    with open(p, "wb") as f:
        f.truncate(10_000)  # sparse
    with pytest.raises(LimitError):
        codec.load(p, limits=Limits(max_header_bytes=1000, max_payload_compressed=1000))
    with pytest.raises(FormatError):
        codec.load(tmp_path / "missing.pncd")


# -- canonical msgpack ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32, 2**64 - 1, -1, -32, -33, -128,
                                   -129, -(2**63), 0.0, -0.0, 1.5, "", "a" * 31, "a" * 32, "a" * 256, b"", b"x",
                                   [], [1, [2, [3]]], {}, {"b": 1, "a": 2, "\u00e9": 3, "Z": None}, True, False,
                                   None])
def test_canonical_roundtrip(value):
    data = canonical.packb(value)
    assert canonical.unpackb(data) == value


@pytest.mark.parametrize("data", [
    b"\xcc\x05",  # 5 as uint8
    b"\xd0\x05",  # 5 as int8
    b"\xca\x3f\xc0\x00\x00",  # float32
    b"\xd9\x01a",  # str8 for a 1-char string
    b"\xc4\x01a\xc4",  # trailing
    b"\x82\xa1b\x01\xa1a\x02",  # unsorted keys
    b"\x82\xa1a\x01\xa1a\x02",  # duplicate keys
    b"\x81\x01\x02",  # int key
    b"\x81\xc4\x01a\x01",  # bin key
    b"\xd4\x01\x00",  # ext
    b"\xd6\xff\x00\x00\x00\x00",  # timestamp ext
    b"\xa1\xff",  # invalid utf-8
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # NaN
    b"\xdc\x00\x01\x01",  # array16 for one item
    b"\x91",  # truncated
    b"\xc1",  # never-used byte
])
def test_canonical_rejects(data):
    with pytest.raises(FormatError):
        canonical.unpackb(data)


def test_canonical_depth_and_size_limits():
    deep = b"\x91" * 40 + b"\x90"
    with pytest.raises(LimitError):
        canonical.unpackb(deep, Limits(max_depth=32))
    with pytest.raises(LimitError):
        canonical.unpackb(b"\x91" * 5000 + b"\x90")  # msgpack's own stack bound, still a LimitError
    with pytest.raises(LimitError):
        canonical.unpackb(msgpack.packb("x" * 100), Limits(max_str=50))
    with pytest.raises(LimitError):
        canonical.unpackb(msgpack.packb(list(range(20))), Limits(max_array=10))


# -- hypothesis: load(save(x)) == x ----------------------------------------------------------------------------------
NAME = st.from_regex(r"\A[a-z][a-z0-9_]{0,6}(\.[a-z0-9_]{1,5}){0,2}\Z")
SCALAR = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12) | st.binary(max_size=12))
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
FREE_MAP = st.dictionaries(st.text(max_size=8), VALUE, max_size=4)


@st.composite
def raw_tensors(draw, max_n=3):
    out = {}
    for name in draw(st.lists(NAME, max_size=max_n, unique=True)):
        dtype = draw(st.sampled_from(sorted(ST_NAMES)))
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        n = 1
        for s in shape:
            n *= s
        from pnc_pack.format.delta import DTYPE_SIZES
        if dtype == "BOOL":  # BOOL elements are the bytes 0 and 1 (spec §6.1)
            data = bytes(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
        else:
            data = draw(st.binary(min_size=n * DTYPE_SIZES[dtype], max_size=n * DTYPE_SIZES[dtype]))
        out[name] = RawTensor(dtype, shape, data)
    return out


@st.composite
def refs(draw):
    files = {n: FileDigest(hashlib.sha256(n.encode()).hexdigest(), draw(st.integers(0, 2**40)))
             for n in draw(st.lists(st.from_regex(r"\A[a-z][a-z0-9_.-]{0,10}\Z").filter(lambda s: ".." not in s),
                                    min_size=1, max_size=3, unique=True))}
    args = draw(FREE_MAP)
    if draw(st.booleans()):
        return ModelRef("lenet5", args, files, path=draw(st.from_regex(r"\A[a-z/]{1,20}\Z")))
    return ModelRef(draw(st.sampled_from(["lenet5", "resnet-18", "mlp_2"])), args, files,
                    repo_id=draw(st.from_regex(r"\A[a-z]{1,8}/[a-z0-9]{1,8}\Z")),
                    commit=draw(st.from_regex(r"\A[0-9a-f]{40}\Z")))


@st.composite
def deltas(draw):
    target_blocks = draw(st.integers(1, 6))
    modules = []
    for i in range(draw(st.integers(0, 3))):
        sb = draw(st.integers(1, 6))
        layers = draw(st.lists(NAME, max_size=3, unique=True))
        masks = tuple(Mask.from_bools(layer, draw(st.lists(st.booleans(), min_size=1, max_size=20)))
                      for layer in layers)
        modules.append(ClonedModule(
            source=draw(refs()), source_blocks=sb, target_position=draw(st.integers(0, target_blocks - 1)),
            source_position=draw(st.integers(0, sb - 1)),
            clone_classes=tuple(draw(st.lists(st.integers(0, 50), min_size=1, max_size=4, unique=True))),
            masks=masks, adapter_kind=draw(st.sampled_from(["conv1x1", "linear", "identity"])),
            adapter_args=draw(FREE_MAP), adapter=draw(raw_tensors())))
    labels = [LabelEntry("target", c, draw(st.text(max_size=10).filter(str.isprintable)))
              for c in draw(st.lists(st.integers(0, 20), max_size=4, unique=True))]
    for i, m in enumerate(modules):
        labels += [LabelEntry(f"source:{i}", c, f"class {c}") for c in m.clone_classes]
    labels = draw(st.permutations(labels))
    return CloneDelta(
        target=draw(refs()), target_blocks=target_blocks, modules=tuple(modules), classifier_kind="linear",
        classifier_args={**draw(FREE_MAP), "num_outputs": len(labels)}, classifier=draw(raw_tensors()),
        labels=tuple(labels), provenance=draw(FREE_MAP), metrics=draw(FREE_MAP))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deltas(), st.sampled_from(["zstd", "zstd+bytegroup"]))
def test_property_roundtrip(delta, encoding):
    data = codec.dumps(delta, encoding=encoding)
    assert codec.loads(data) == delta
    assert codec.dumps(codec.loads(data), encoding=encoding) == data


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200))
def test_property_garbage_header_only_pnc_errors(blob):
    from tools.gen_vectors import forge

    _, p = _parts()
    try:
        codec.loads(forge(None, p, header_bytes=blob))
    except PncError:
        pass


def _parts():
    from tools.gen_vectors import parts
    return parts(make_delta(1))


def test_refs_roundtrip_local_and_hub():
    d = make_delta(2, local=True)
    back = codec.loads(codec.dumps(d))
    assert back.target.is_local and back.modules[0].source.is_local and not back.modules[1].source.is_local
    assert back.refs == d.refs == [d.target, d.modules[0].source, d.modules[1].source]
    assert hub_ref().uri().startswith("hf://") and local_ref().is_local


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(deltas())
def test_property_save_is_deterministic_across_processes(tmp_path, delta):
    """Another process (another hash seed) decoding and re-encoding a generated delta writes the same bytes."""
    p = tmp_path / "d.pncd"
    codec.save(delta, p)
    code = ("import sys; from pathlib import Path; from pnc_pack.format import codec; p = Path(sys.argv[1]); "
            "sys.exit(0 if codec.dumps(codec.load(p)) == p.read_bytes() else 1)")
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.returncode == 0, out.stderr
