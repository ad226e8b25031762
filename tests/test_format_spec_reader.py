"""An independent reader written from spec/clone-delta-v1.md alone (no pnc_pack.format code) must decode every valid
vector to what pnc_pack decodes: a check that the spec is complete enough to implement."""

import hashlib
import json
import struct
from pathlib import Path

import msgpack
import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pnc_pack.format import codec

VECTORS = Path(__file__).resolve().parents[1] / "spec" / "vectors"
VALID = [v["file"] for v in json.loads((VECTORS / "index.json").read_text())["vectors"] if v["valid"]]
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
RANK = "I64 F64 F32 I32 BF16 F16 I16 I8 U8 BOOL".split()


def spec_read(data: bytes):
    magic, major, minor, flags, h, p = struct.unpack_from("<8sHHIQQ", data)
    assert magic == b"\x89PNCD\r\n\x1a" and major == 1 and flags == 0
    digest = data[32 + h + p:64 + h + p]
    assert hashlib.sha256(data[:32 + h + p]).digest() == digest
    (n,) = struct.unpack_from("<I", data, 64 + h + p)
    assert len(data) == 68 + h + p + 96 * n
    for i in range(n):
        at = 68 + h + p + 96 * i
        Ed25519PublicKey.from_public_bytes(data[at:at + 32]).verify(
            data[at + 32:at + 96], b"pnc-pack clone-delta v1 digest\n" + digest)
    header = msgpack.unpackb(data[32:32 + h], raw=False)
    assert header["version"] == [major, minor]
    index = header["tensors"]
    order = sorted(index, key=lambda name: (RANK.index(index[name]["dtype"]), name.encode()))
    entries, offset, spans = [], 0, {}
    for name in order:
        e = index[name]
        nbytes = SIZES[e["dtype"]]
        for d in e["shape"]:
            nbytes *= d
        entries.append('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'
                       % (name, e["dtype"], ",".join(map(str, e["shape"])), offset, offset + nbytes))
        spans[name] = (offset, offset + nbytes)
        offset += nbytes
    js = ("{" + ",".join(entries) + "}").encode()
    js += b" " * (-(8 + len(js)) % 8)
    prefix = struct.pack("<Q", len(js)) + js
    assert header["payload"]["raw_size"] == len(prefix) + offset
    blob = bytearray(zstandard.ZstdDecompressor().decompress(data[32 + h:32 + h + p]))
    assert len(blob) == header["payload"]["raw_size"]
    if header["payload"]["encoding"] == "zstd+bytegroup":
        for name, (a, b) in spans.items():
            k = SIZES[index[name]["dtype"]]
            if index[name]["dtype"] in ("F64", "F32", "F16", "BF16") and b > a:
                region, count = bytes(blob[len(prefix) + a:len(prefix) + b]), (b - a) // k
                out = bytearray(b - a)
                for j in range(k):
                    out[j::k] = region[j * count:(j + 1) * count]
                blob[len(prefix) + a:len(prefix) + b] = out
    assert bytes(blob[:len(prefix)]) == prefix
    tensors = {name: bytes(blob[len(prefix) + a:len(prefix) + b]) for name, (a, b) in spans.items()}
    return header, tensors


@pytest.mark.parametrize("name", VALID)
def test_spec_reader_agrees(name):
    data = (VECTORS / name).read_bytes()
    header, tensors = spec_read(data)
    delta = codec.loads(data)
    assert tensors == {n: t.data for n, t in delta.tensors().items()}
    assert [(e["model"], e["class_index"], e["name"]) for e in header["labels"]] == \
        [(e.model, e.class_index, e.name) for e in delta.labels]
    for i, m in enumerate(header["modules"]):
        assert [mk["bits"] for mk in m["masks"]] == [mk.bits for mk in delta.modules[i].masks]
        assert (m["target_position"], m["source_position"]) == (delta.modules[i].target_position,
                                                                delta.modules[i].source_position)
