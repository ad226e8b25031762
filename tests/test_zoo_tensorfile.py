"""zoo.tensorfile: safetensors bytes -> tensors viewing the buffer; as strict as the safetensors library."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from pnc_pack.errors import FormatError
from pnc_pack.zoo.tensorfile import parse, read_header


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(3, 4, generator=g), "h": torch.randn(5, generator=g).half(),
            "b": torch.randn(2, 2, generator=g).bfloat16(), "d": torch.randn(2, generator=g).double(),
            "n": torch.tensor([7, -1], dtype=torch.int64), "i": torch.arange(3, dtype=torch.int32),
            "s": torch.arange(2, dtype=torch.int16), "c": torch.tensor([-3], dtype=torch.int8),
            "u": torch.tensor([0, 255], dtype=torch.uint8), "m": torch.tensor([True, False]),
            "e": torch.empty(0, 3), "scalar": torch.tensor(1.5)}


def test_same_tensors_as_safetensors_and_views_of_the_buffer():
    data = st_save(_tensors(), metadata={"k": "v"})
    buf = bytearray(data)
    got, meta = parse(buf, "x")
    want = st_load(data)
    assert meta == {"k": "v"} and got.keys() == want.keys()
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape and torch.equal(got[k], want[k]), k
    base = torch.frombuffer(buf, dtype=torch.uint8).data_ptr()
    assert base <= got["w"].data_ptr() < base + len(buf)  # no copy
    del buf
    assert torch.equal(got["w"], want["w"])  # the tensors keep the buffer alive


def _file(header: dict, data: bytes, pad: bool = True) -> bytearray:
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return bytearray(len(h).to_bytes(8, "little") + h + data)


F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("header,data,match", [
    ({"a": F32x2}, b"\0" * 9, "cover 8 data bytes, the file has 9"),
    ({"a": F32x2}, b"\0" * 7, "cover 8 data bytes"),
    ({"a": F32x2, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "gap or overlap"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "gap or overlap"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "8 bytes for shape"),
    ({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, "unsupported dtype"),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "bad shape"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "bad data_offsets"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1}}, b"\0" * 8, "exactly dtype"),
    ({"__metadata__": {"k": 1}, "a": F32x2}, b"\0" * 8, "__metadata__"),
    ({"__metadata__": [], "a": F32x2}, b"\0" * 8, "__metadata__"),
    ({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x02", "BOOL byte"),
])
def test_hostile_headers_are_refused(header, data, match):
    with pytest.raises(FormatError, match=match):
        parse(_file(header, data), "bad.safetensors")


@pytest.mark.parametrize("raw,match", [
    (b"", "shorter than the 8-byte"),
    ((10**9).to_bytes(8, "little") + b"{}", "header length"),
    ((2).to_bytes(8, "little") + b"[]", "not a JSON object"),
    ((2).to_bytes(8, "little") + b"\xff{", "not UTF-8 JSON"),
    ((31).to_bytes(8, "little") + b'{"a":{"dtype":"F32"},"a":null} ', "duplicate key"),
])
def test_malformed_files_are_refused(raw, match):
    with pytest.raises(FormatError, match=match):
        read_header(bytearray(raw), "bad.safetensors")


def test_misaligned_tensor_is_copied_not_viewed():
    buf = _file({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [1, 5]}}, b"\x07" + b"\0\0\x80\x3f")
    got, _ = parse(buf, "x")
    assert got["a"].tolist() == [7] and got["b"].tolist() == [1.0]
