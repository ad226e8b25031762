"""Hostile input: every truncation and every single-byte change of a valid file is refused with a PncError
subclass (never another exception, never a hang); bombs are refused without allocating their size."""

import struct
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from pnc_pack.errors import FormatError, IntegrityError, PncError, SignatureError, VersionError
from pnc_pack.format import codec, container
from pnc_pack.format.payload import bounded_decompress

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "spec" / "vectors"

from tools.gen_vectors import forge, parts


@pytest.fixture(scope="module")
def small():
    data = (VECTORS / "valid-minimal.pncd").read_bytes()
    assert 2000 < len(data) < 5000
    return data


@pytest.fixture(scope="module")
def signed():
    return (VECTORS / "valid-signed-two.pncd").read_bytes()


def _refused(data):
    try:
        codec.loads(data)
    except PncError as exc:
        return exc
    return None


def test_every_truncation_is_refused(small, signed):
    for data in (small, signed):
        for n in range(len(data)):
            exc = _refused(data[:n])
            assert isinstance(exc, FormatError), (n, exc)


def test_every_single_byte_change_is_refused(small):
    for i in range(len(small)):
        for x in (0x01, 0xFF):
            b = bytearray(small)
            b[i] ^= x
            exc = _refused(bytes(b))
            assert exc is not None, f"byte {i} ^ {x:#x} accepted"


def test_every_value_of_every_preamble_byte(small):
    for i in range(container.PREAMBLE_SIZE):
        for v in range(256):
            if v == small[i]:
                continue
            b = bytearray(small)
            b[i] = v
            exc = _refused(bytes(b))
            assert exc is not None, (i, v)
            if i < 8:
                assert type(exc) is FormatError
            elif i < 10:
                assert type(exc) is VersionError


def test_every_byte_of_signature_section_is_checked(signed):
    c = container.parse(signed)
    for i in range(c.signed_size + 32, len(signed)):
        b = bytearray(signed)
        b[i] ^= 0x01
        assert isinstance(_refused(bytes(b)), (FormatError, SignatureError)), i
    for i in range(c.signed_size, c.signed_size + 32):  # the digest itself
        b = bytearray(signed)
        b[i] ^= 0x01
        assert isinstance(_refused(bytes(b)), IntegrityError), i


def test_redigested_changes_only_raise_pnc_errors(small):
    """Changes with the digest recomputed reach the header and payload parsers: they may be accepted (a changed
    metric is still a valid file) but must never raise anything but a PncError."""
    c = container.parse(small)
    accepted = 0
    payload_at = container.PREAMBLE_SIZE + len(c.header)
    # every header byte (two changes each); every 4th payload byte (the payload is mostly tensor data)
    positions = list(range(container.PREAMBLE_SIZE, payload_at)) + list(range(payload_at, c.signed_size, 4))
    for i in positions:
        for x in ((0x01, 0x80) if i < payload_at else (0xFF,)):
            b = bytearray(small[:c.signed_size])
            b[i] ^= x
            data = container.build_unsigned(bytes(b[32:32 + len(c.header)]), bytes(b[32 + len(c.header):]))
            data += b"\x00\x00\x00\x00"
            try:
                delta = codec.loads(data)
            except PncError:
                continue
            accepted += 1  # e.g. a changed tensor value or label character: still a well-formed delta
            if accepted % 16 == 1:
                assert codec.loads(codec.dumps(delta, encoding="zstd")) == delta
    assert accepted


def test_zstd_bomb_is_refused_without_allocating():
    big = bytes(256 << 20)
    frame = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(big)
    assert len(frame) < 20_000
    tracemalloc.start()
    try:
        # more output than declared is a malformed frame, FormatError (not LimitError: spec §6.3, issue 20)
        with pytest.raises(FormatError) as info:
            bounded_decompress(frame, 100_000)
        assert type(info.value) is FormatError
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20  # declared 100 kB; the frame would give 256 MiB


def test_bomb_vector_and_frame_rules():
    from pnc_pack.format.testing import make_delta
    h, p = parts(make_delta(1))
    raw = h["payload"]["raw_size"]
    blob = zstandard.ZstdDecompressor().decompress(p)
    # no content size in the frame
    nosize = zstandard.ZstdCompressor(write_content_size=False).compress(blob)
    with pytest.raises(FormatError, match="content size"):
        codec.loads(forge(h, nosize))
    # a content size that disagrees with raw_size
    with pytest.raises(FormatError, match="declares"):
        codec.loads(forge(h, zstandard.ZstdCompressor().compress(blob + b"\x00")))
    # two frames
    with pytest.raises(FormatError, match="after the zstd frame"):
        codec.loads(forge(h, p + p))
    # a frame with a checksum is fine (any zstd writer may add one)
    assert codec.loads(forge(h, zstandard.ZstdCompressor(write_checksum=True).compress(blob))) == make_delta(1)
    # a truncated frame
    with pytest.raises(FormatError):
        codec.loads(forge(h, p[:-3]))
    assert raw == len(blob)


def test_window_limit():
    from pnc_pack.format.testing import make_delta
    h, p = parts(make_delta(1))
    blob = zstandard.ZstdDecompressor().decompress(p)
    params = zstandard.ZstdCompressionParameters(window_log=28, write_content_size=True)
    frame = zstandard.ZstdCompressor(compression_params=params).compress(blob)
    # single-segment frames take the content size as window; force a windowed frame via the stream API
    cobj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    frame = cobj.compress(blob) + cobj.flush()
    fhd = frame[4]
    if fhd & 0x20:  # single segment: window = content size, fine
        pytest.skip("zstd chose a single-segment frame")
    assert zstandard.get_frame_parameters(frame).window_size >= 1 << 28
    with pytest.raises(FormatError):
        codec.loads(forge(h, frame))


def test_header_len_pointing_past_the_end(small):
    for hl in (0, 1, 2**32, 2**64 - 1):
        b = bytearray(small)
        b[16:24] = struct.pack("<Q", hl)
        assert isinstance(_refused(bytes(b)), FormatError)
