"""Write the named attack corpus into tests/attacks/ (or --out DIR), deterministically.

    python -m tools.gen_attacks [--out DIR]

Each attack is one hostile file that tries one thing (issue #9 lists them): oversized or lying length fields,
decompression bombs, terabyte declarations, overflowing shapes, overlapping tensor offsets, msgpack nested a million
deep or declaring huge containers, duplicate keys and non-canonical encodings, unknown features and newer majors,
truncated, forged, small-order-key and untrusted signatures, references with branch names, path tricks and control
characters, unregistered architecture names, masks and label maps that do not fit. ``index.json`` lists, for every
file, what it tries, the error class a reader must raise, and the exit codes of ``pnc-pack verify`` (with the
listed extra arguments) and ``pnc-pack inspect``; ``README.md`` is the same table for people. A few files are
*accepted* on purpose (exit 0): they are valid as files and must fail later (an unregistered architecture fails
at apply with ArchitectureError) or prove that a former hang is gone (labels-quadratic).

The forging helpers are those of tools/gen_vectors.py (one generator for vectors and attacks); several attacks
are the spec's invalid vectors under their attack name. Files are forged with a correct digest (unless the digest
is the point) so that a reader reaches the rule under attack. tests/test_attacks.py regenerates into a temporary
folder and compares bytes with the committed files, then runs every file through the CLI.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pnc_pack.format import canonical, container  # noqa: E402
from pnc_pack.format.codec import dumps  # noqa: E402
from pnc_pack.format.limits import DIGEST_SIZE  # noqa: E402
from pnc_pack.format.payload import plan  # noqa: E402
from pnc_pack.format.signing import sign  # noqa: E402
from pnc_pack.format.testing import make_delta  # noqa: E402
from pnc_pack.fsutil import atomic_write  # noqa: E402
from tools.gen_vectors import EXIT, cli, forge, invalid_vectors, parts, vector_key, write_index  # noqa: E402

DEFAULT_OUT = ROOT / "tests" / "attacks"
KEY_A = "spec/vectors/test-key-a.pub"  # relative to the repository root
EXIT_ACCEPTED = 0


def _zstd(blob: bytes, *, content_size: bool = True) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3, write_content_size=content_size, write_checksum=False,
                                    write_dict_id=False).compress(blob)


def rle_frame(declared: int, total: int, window_log: int = 17) -> bytes:
    """A zstd frame declaring ``declared`` content bytes, made of RLE blocks that decode to ``total`` zero bytes.

    Each 128 KiB RLE block is 4 bytes on disk (3-byte block header + the byte): 1 GiB costs 32 KiB.
    """
    fhd = 0x80  # Frame_Content_Size_flag = 2 (4 bytes), not single-segment, no checksum, no dictionary
    wd = (window_log - 10) << 3
    out = bytearray(b"\x28\xb5\x2f\xfd" + bytes([fhd, wd]) + declared.to_bytes(4, "little"))
    block = 1 << 17
    left = total
    while left > 0:
        n = min(block, left)
        left -= n
        last = 1 if left == 0 else 0
        hdr = last | (1 << 1) | (n << 3)  # Block_Type 1 = RLE
        out += hdr.to_bytes(3, "little") + b"\x00"
    return bytes(out)


def frame_header_len(frame: bytes) -> int:
    """Length of a zstd frame's header (magic, descriptor, window, dictionary id, content size)."""
    fhd = frame[4]
    single = (fhd >> 5) & 1
    fcs = [1 if single else 0, 2, 4, 8][fhd >> 6]
    return 5 + (0 if single else 1) + [0, 1, 2, 4][fhd & 3] + fcs


def reframe(frame: bytes, *, window_log: int = 17, content_size: int, fcs_bytes: int = 4, dict_id: int = 0
            ) -> bytes:
    """``frame``'s blocks under a new header: window 2^window_log, the given content size and dictionary id."""
    flag = {4: 2, 8: 3}[fcs_bytes]
    did = {0: 0, 1: 1}[1 if dict_id else 0]
    hdr = b"\x28\xb5\x2f\xfd" + bytes([(flag << 6) | did, (window_log - 10) << 3])
    hdr += bytes([dict_id]) if dict_id else b""
    return hdr + content_size.to_bytes(fcs_bytes, "little") + frame[frame_header_len(frame):]


class Attacks:
    def __init__(self):
        self.items: dict[str, dict] = {}
        self.base = make_delta(1)
        self.good = dumps(self.base)
        self.vectors = invalid_vectors()

    def add(self, name: str, tries: str, error: str | None, data: bytes, *, verify_args=(), inspect_error="same",
            note: str = ""):
        """``error`` None: the file is accepted (exit 0). ``inspect_error`` "same" (as verify) or a class or None."""
        assert name not in self.items, name
        inspect = error if inspect_error == "same" else inspect_error
        self.items[name] = {
            "file": f"{name}.pncd", "tries": tries, "error": error,
            "verify_exit": EXIT[error] if error else EXIT_ACCEPTED, "verify_args": list(verify_args),
            "inspect_error": inspect, "inspect_exit": EXIT[inspect] if inspect else EXIT_ACCEPTED,
            "note": note, "data": data,
        }

    def vector(self, name: str, vector: str, tries: str):
        desc, error, data = self.vectors[vector]
        self.add(name, tries, error, data, note=f"the bytes of spec/vectors/{vector}.pncd")

    def header(self, mutate, encoding="zstd+bytegroup"):
        h, p = parts(self.base, encoding)
        mutate(h)
        return h, p

    def forged(self, mutate, **kw) -> bytes:
        h, p = self.header(mutate)
        return forge(h, p, **kw)

    def with_blob(self, blob: bytes) -> bytes:
        """A file whose payload is ``blob`` (plain zstd) in place of the real safetensors blob."""
        h, _ = parts(self.base, "zstd")
        assert len(blob) == h["payload"]["raw_size"], (len(blob), h["payload"]["raw_size"])
        return forge(h, _zstd(blob))

    def blob_and_layout(self):
        tensors = self.base.tensors()
        layout = plan({n: (t.dtype, t.shape) for n, t in tensors.items()})
        blob = layout.prefix + b"".join(tensors[r.name].data for r in layout.regions)
        return blob, layout

    def header_value(self, key: str, value_bytes: bytes) -> bytes:
        """The canonical header with the value of top-level ``key`` replaced by raw msgpack bytes."""
        h, p = self.header(lambda h: None)
        hb = canonical.packb(h)
        k, old = canonical.packb(key), canonical.packb(h[key])
        assert hb.count(k + old) == 1
        return forge(h, p, header_bytes=hb.replace(k + old, k + value_bytes))


def build() -> dict[str, dict]:
    a = Attacks()
    good = a.good
    container.parse(good)  # the base file must parse
    h0, p0 = parts(a.base)

    # -- container: length fields ----------------------------------------------------------------------------------
    a.add("header-len-beyond-file", "header_len (64 KiB) larger than the whole file", "FormatError",
          forge(h0, p0, header_len=64 * 1024))
    a.vector("header-len-over-limit", "header-len-over-limit", "header_len of 1 GiB, over the 16 MiB limit")
    a.add("header-len-u64-max", "header_len 2^64-1", "LimitError", forge(h0, p0, header_len=2**64 - 1))
    payload_huge = bytearray(good)
    struct.pack_into("<Q", payload_huge, 24, 1 << 40)
    a.add("payload-len-terabyte", "payload_len of 1 TiB", "LimitError", bytes(payload_huge))
    a.add("sig-count-u32-max", "signature count 2^32-1", "LimitError", good[:-4] + struct.pack("<I", 2**32 - 1))
    a.vector("truncated-preamble", "truncated-preamble", "a file of 20 bytes")
    a.vector("trailing-bytes", "trailing-bytes", "one byte after the signature section")
    a.vector("digest-mismatch", "digest-mismatch", "a payload byte changed after the digest was computed")
    a.vector("nonzero-flags", "nonzero-flags", "reserved preamble flags set")

    # -- zstd ------------------------------------------------------------------------------------------------------
    raw = h0["payload"]["raw_size"]
    a.add("zstd-bomb-1gib", f"a frame declaring the true raw_size ({raw} B) whose RLE blocks expand to 1 GiB "
          "(32 KiB on disk)", "FormatError", forge(h0, rle_frame(raw, 1 << 30)))
    a.vector("zstd-bomb-64mib", "zstd-bomb", "a frame declaring raw_size whose compressed content is 64 MiB")
    a.add("zstd-frame-declares-terabytes", "frame content size 4 TiB (8-byte field), header raw_size true",
          "FormatError", forge(h0, reframe(p0, content_size=1 << 42, fcs_bytes=8)))
    a.add("raw-size-terabytes", "header.payload.raw_size of 4 TiB", "LimitError",
          a.forged(lambda h: h["payload"].update(raw_size=1 << 42)))
    a.add("index-implies-terabytes", "tensor index implying 16 GiB (an F64 tensor of 2^31-1 elements) with "
          "a matching raw_size", "LimitError",
          a.forged(lambda h: (h["tensors"]["classifier.weight"].update(dtype="F64", shape=[2**31 - 1]),
                              h["payload"].update(raw_size=(2**31 - 1) * 8 + raw))))
    a.add("zstd-window-2gib", "a frame asking for a 2 GiB window", "LimitError",
          forge(h0, reframe(p0, window_log=31, content_size=raw)))
    a.add("zstd-no-content-size", "a frame that does not declare its size", "FormatError",
          forge(parts(a.base, "zstd")[0], _zstd(a.blob_and_layout()[0], content_size=False)))
    a.add("zstd-two-frames", "a second zstd frame after the first", "FormatError",
          forge(h0, p0 + _zstd(b"x" * 100)))
    a.add("zstd-skippable-frame", "a skippable frame before the real one", "FormatError",
          forge(h0, b"\x50\x2a\x4d\x18" + struct.pack("<I", 4) + b"junk" + p0))
    a.add("zstd-dictionary", "a frame that needs dictionary 7", "FormatError",
          forge(h0, reframe(p0, content_size=raw, dict_id=7)))
    a.vector("zstd-trailing-byte", "payload-trailing-data", "a byte after the frame")

    # -- tensors -------------------------------------------------------------------------------------------------
    a.add("shape-product-overflow", "eight dimensions of 2^31-1: the element count overflows 64 bits",
          "LimitError", a.forged(lambda h: h["tensors"]["classifier.bias"].update(shape=[2**31 - 1] * 8)))
    a.add("shape-dim-u64-max", "a dimension of 2^64-1", "LimitError",
          a.forged(lambda h: h["tensors"]["classifier.bias"].update(shape=[2**64 - 1])))
    a.add("shape-negative-dim", "a dimension of -1", "FormatError",
          a.forged(lambda h: h["tensors"]["classifier.bias"].update(shape=[-1])))
    a.add("shape-nine-dims", "nine dimensions (limit 8)", "LimitError",
          a.forged(lambda h: h["tensors"]["classifier.bias"].update(shape=[1] * 9)))
    blob, layout = a.blob_and_layout()
    js = blob[8:len(layout.prefix)].decode()
    r1 = layout.regions[1]
    base_off = len(layout.prefix)
    overlap = js.replace(f'"data_offsets":[{r1.start - base_off},{r1.end - base_off}]',
                         f'"data_offsets":[0,{r1.end - r1.start}]')
    assert overlap != js
    a.add("tensor-offsets-overlap", "safetensors data_offsets in the payload making two tensors overlap",
          "FormatError", a.with_blob(_same_len(blob, layout, overlap)))
    oob = js.replace(f'"data_offsets":[{r1.start - base_off},{r1.end - base_off}]',
                     f'"data_offsets":[{r1.start - base_off},{"9" * len(str(r1.end - base_off))}]')
    a.add("tensor-offsets-out-of-bounds", "safetensors data_offsets past the end of the data", "FormatError",
          a.with_blob(_same_len(blob, layout, oob)))
    a.vector("shape-disagrees-with-payload", "shape-disagrees-with-payload",
             "index shape [24, 7] for a [7, 24] payload tensor (same bytes)")
    a.vector("tensor-name-path", "tensor-name-path", "a tensor named 'classifier.x/../y'")

    # -- msgpack ---------------------------------------------------------------------------------------------------
    a.add("msgpack-nested-million", "provenance nested 1,000,000 arrays deep", "LimitError",
          a.header_value("provenance", b"\x91" * 1_000_000 + b"\x90"))
    a.add("msgpack-array-declares-4g", "an array32 header declaring 2^32-1 items (none follow)", "LimitError",
          a.header_value("provenance", b"\xdd\xff\xff\xff\xff"))
    a.add("msgpack-map-declares-4g", "a map32 header declaring 2^32-1 entries", "LimitError",
          a.header_value("provenance", b"\xdf\xff\xff\xff\xff"))
    a.add("msgpack-str-declares-4g", "a str32 declaring 4 GiB of text (the header ends first: nothing is allocated)",
          "FormatError", a.header_value("provenance", b"\xdb\xff\xff\xff\xff"))
    a.add("msgpack-bin-declares-4g", "a bin32 declaring 4 GiB of bytes (the header ends first)", "FormatError",
          a.header_value("provenance", b"\xc6\xff\xff\xff\xff"))
    a.add("msgpack-str-over-limit", "a 100 KiB str (limit 64 KiB)", "LimitError",
          a.header_value("provenance", b"\xdb" + (100 << 10).to_bytes(4, "big") + b"x" * (100 << 10)))
    a.add("msgpack-bin-over-limit", "a bin of 1 MiB + 1 byte (limit 1 MiB)", "LimitError",
          a.header_value("provenance", b"\xc6" + ((1 << 20) + 1).to_bytes(4, "big") + bytes((1 << 20) + 1)))
    flood = 1_100_000
    a.add("msgpack-value-flood", f"{flood} one-byte empty arrays in provenance (1.1 MB header): memory "
          "amplification", "LimitError",
          a.header_value("provenance", b"\xdc\x00\x11" + (b"\xdd" + (flood // 17).to_bytes(4, "big")
                                                          + b"\x90" * (flood // 17)) * 17))
    a.vector("msgpack-duplicate-key", "header-duplicate-key", "the key 'version' twice in the header map")
    a.vector("noncanonical-unsorted-keys", "header-unsorted-keys", "header map keys out of order")
    a.vector("noncanonical-long-int", "header-long-int", "4 as uint8 instead of fixint")
    a.vector("noncanonical-float32", "header-float32", "a float32 where canonical is float64")
    hb = canonical.packb(h0)
    for name, tries, old, new in [
        ("noncanonical-str8", "a short string as str8 instead of fixstr",
         canonical.packb("classifier_kind") + canonical.packb("linear"), canonical.packb("classifier_kind")
         + b"\xd9\x06linear"),
        ("noncanonical-array16", "a 2-element array as array16", canonical.packb("version") + b"\x92\x01\x00",
         canonical.packb("version") + b"\xdc\x00\x02\x01\x00"),
        ("noncanonical-map16", "the payload map as map16", canonical.packb("payload") + b"\x82",
         canonical.packb("payload") + b"\xde\x00\x02"),
    ]:
        assert hb.count(old) == 1, name
        a.add(name, tries, "FormatError", forge(h0, p0, header_bytes=hb.replace(old, new)))
    metrics = canonical.packb(h0["metrics"])
    assert metrics[0] & 0xF0 == 0x80 and hb.count(canonical.packb("metrics") + metrics) == 1
    with_ext = bytes([metrics[0] + 1]) + metrics[1:] + canonical.packb("z") + b"\xd6\xff\x00\x00\x00\x00"
    a.add("msgpack-ext-type", "an ext value (a msgpack timestamp) in metrics", "FormatError",
          forge(h0, p0, header_bytes=hb.replace(canonical.packb("metrics") + metrics,
                                                canonical.packb("metrics") + with_ext)))
    a.vector("msgpack-nan", "header-nan", "a NaN float")
    a.vector("msgpack-bad-utf8", "header-bad-utf8", "a str that is not UTF-8")

    # -- versions and features -----------------------------------------------------------------------------------
    a.vector("unknown-required-feature", "unknown-required-feature", "required_features names 'sparse-masks'")
    a.vector("newer-major", "newer-major", "major version 2")
    a.add("major-65535", "major version 65535", "VersionError", forge(h0, p0, major=65535))
    a.vector("unknown-encoding", "unknown-encoding", "payload encoding 'zstd+delta'")
    a.vector("unknown-field-minor-0", "unknown-field", "an unknown top-level field in a 1.0 file")

    # -- signatures ------------------------------------------------------------------------------------------------
    signed = dumps(sign(a.base, vector_key("a")))
    sc = container.parse(signed)
    head = signed[:sc.signed_size + DIGEST_SIZE]
    a.add("signature-truncated", "signature count 1 and only 50 of its 96 bytes", "FormatError",
          head + struct.pack("<I", 1) + signed[-96:-46])
    a.add("signature-forged", "key a's public key with 64 random bytes as its signature", "SignatureError",
          head + struct.pack("<I", 1) + sc.signatures[0][0] + hashlib.sha512(b"forged").digest())
    a.vector("signature-bit-flip", "signature-invalid", "one bit of a valid signature flipped")
    a.vector("signature-from-other-file", "signature-other-file", "a valid signature made for another delta")
    a.vector("signature-duplicate-key", "signature-duplicate-key", "the same key twice in the signature section")
    ident = bytes([1]) + bytes(31)
    a.add("signature-small-order-key", "public key = the identity point, signature R = identity, S = 0: verifies "
          "for every message under plain RFC 8032 verification", "SignatureError",
          head + struct.pack("<I", 1) + ident + ident + bytes(32))
    signed_b = dumps(sign(a.base, vector_key("b")))
    a.add("signature-untrusted-key", "validly signed by test key b, verified trusting only test key a",
          "SignatureError", signed_b, verify_args=("--trusted-key", KEY_A), inspect_error=None,
          note="inspect does not apply a trust policy: exit 0")
    a.add("unsigned-but-required", "an unsigned file verified with --require-signature", "SignatureError", good,
          verify_args=("--require-signature",), inspect_error=None, note="inspect: exit 0")

    # -- references ------------------------------------------------------------------------------------------------
    def ref(field, value, where="target"):
        def m(h):
            r = h["target"] if where == "target" else h["modules"][0]["source"]
            if field == "files":
                r["files"] = {value: r["files"]["config.json"], **{k: v for k, v in r["files"].items()
                                                                  if k != "config.json"}}
            else:
                r[field] = value
        return a.forged(m)

    a.vector("ref-branch-name", "unpinned-revision", "target commit 'main' (a branch, not a commit)")
    a.add("ref-tag-name", "source commit 'v1.0' (a tag)", "ReferenceError", ref("commit", "v1.0", "source"))
    a.add("ref-commit-uppercase", "a 40-hex commit in upper case", "ReferenceError", ref("commit", "A" * 40))
    a.vector("repo-id-dotdot", "bad-repo-id", "repo id '../../etc'")
    a.add("repo-id-three-parts", "repo id 'a/b/c'", "ReferenceError", ref("repo_id", "a/b/c"))
    a.add("repo-id-absolute", "repo id '/etc/passwd'", "ReferenceError", ref("repo_id", "/etc/passwd"))
    a.add("repo-id-control-char", "repo id with a newline", "ReferenceError", ref("repo_id", "pnc-test/na\nme"))
    a.vector("file-name-dotdot", "file-name-dotdot", "a pinned file named '../model.safetensors'")
    a.vector("file-name-slash", "file-name-separator", "a pinned file named 'sub/model.safetensors'")
    a.add("file-name-backslash", "a pinned file named '..\\\\config.json'", "ReferenceError",
          ref("files", "..\\config.json"))
    a.add("file-name-absolute", "a pinned file named '/etc/passwd'", "ReferenceError", ref("files", "/etc/passwd"))
    a.add("file-name-nul", "a pinned file name with a NUL byte", "ReferenceError", ref("files", "config.json\x00x"))
    a.add("file-name-terminal-escape", "a pinned file name with an ANSI escape (ESC [ 2 J)", "ReferenceError",
          ref("files", "\x1b[2Jconfig.json"))
    a.add("local-path-control-char", "a local path with a BEL character", "ReferenceError",
          a.forged(lambda h: (h["target"].pop("repo_id"), h["target"].pop("commit"),
                              h["target"].update(local_path="models/\x07target"))))
    a.add("arch-import-path", "architecture 'os:system' (an import path)", "ReferenceError",
          ref("arch", "os:system"))
    a.add("arch-dotted", "architecture 'os.system'", "ReferenceError", ref("arch", "os.system", "source"))
    a.add("arch-dunder", "architecture '__import__'", "ReferenceError", ref("arch", "__import__"))
    a.add("arch-unregistered", "architecture 'evilnet': a valid name no registry knows", None,
          ref("arch", "evilnet", "source"),
          note="a valid file: apply / build_model / load_pretrained refuse it with ArchitectureError (exit 6)")
    a.vector("kind-import-path", "kind-import-path", "adapter kind 'os.system'")
    a.add("classifier-kind-import-path", "classifier kind 'builtins:eval'", "FormatError",
          a.forged(lambda h: h.update(classifier_kind="builtins:eval")))

    # -- masks and labels ----------------------------------------------------------------------------------------
    a.add("mask-more-bits-than-filters", "a 6-filter mask with 2 bytes (16 bits) of bits", "FormatError",
          a.forged(lambda h: h["modules"][0]["masks"][0].update(bits=h["modules"][0]["masks"][0]["bits"] + b"\x00")))
    a.vector("mask-fewer-bits-than-filters", "mask-length", "a 100-filter mask with 1 byte of bits")
    a.vector("mask-padding-bits", "mask-padding-bits", "bits set past the last filter")
    a.add("mask-filters-over-limit", "a mask of 2^21 filters (limit 2^20)", "LimitError",
          a.forged(lambda h: h["modules"][0]["masks"][0].update(filters=1 << 21, bits=bytes(1 << 18))))
    a.add("label-outside-classifier", "an eighth label for a classifier with 7 outputs", "FormatError",
          a.forged(lambda h: h["labels"].append({"model": "target", "class_index": 5, "name": "extra"})))
    a.vector("label-module-out-of-range", "label-bad-module", "a label pointing at module 3 of 1")
    a.vector("label-class-not-cloned", "label-class-not-cloned", "a label for a class the module does not clone")
    a.vector("target-position-out-of-range", "target-position-out-of-range", "R = L_t")

    # -- former hangs and display tricks (accepted, must be quick / harmless) -------------------------------------
    n = 65536 - 5

    def quadratic(h):
        h["modules"][0]["clone_classes"] = list(range(n))
        h["labels"] = h["labels"][:5] + [{"model": "source:0", "class_index": i, "name": "c"} for i in range(n)]
        h["classifier_args"]["num_outputs"] = len(h["labels"])

    a.add("labels-quadratic", f"{n} cloned classes and labels: the label check and the inspect summary were "
          "quadratic (load 24 s, inspect more than 90 s)", None, a.forged(quadratic),
          note="accepted; now loads in about a second")
    a.add("local-path-csi", "a local path holding U+009B (the one-byte CSI) and text meant for the terminal",
          None, a.forged(lambda h: (h["target"].pop("repo_id"), h["target"].pop("commit"),
                                    h["target"].update(local_path="models/\u009b2J\u009b31mtarget"))),
          note="accepted; inspect prints the path escaped")
    return a.items


def _same_len(blob: bytes, layout, new_json: str) -> bytes:
    """``blob`` with its safetensors JSON replaced by ``new_json`` padded to the original header length."""
    n = len(layout.prefix) - 8
    js = new_json.rstrip(" ").encode()
    assert len(js) <= n, (len(js), n)
    js += b" " * (n - len(js))
    return blob[:8] + js + blob[8 + n:]


def readme(items: dict[str, dict]) -> str:
    lines = [
        "# Attack corpus",
        "",
        "Hostile clone-delta files, one attack each, written by `python -m tools.gen_attacks` (deterministic;",
        "tests/test_attacks.py regenerates them and compares bytes, then runs each through `pnc-pack verify` and",
        "`pnc-pack inspect`: the exit code below, exactly one line on stderr naming the error class, no traceback).",
        "`index.json` holds the same table. Exit codes: 3 malformed (FormatError and its subclasses LimitError,",
        "VersionError, IntegrityError), 4 signature policy (SignatureError), 5 bad reference (ReferenceError),",
        "0 accepted. `regressions/` holds the fuzzer's findings (tests/test_attacks.py runs them too).",
        "",
        "| file | tries | must raise | verify exit | inspect exit |",
        "|---|---|---|---:|---:|",
    ]
    for name, it in items.items():
        err = it["error"] or "accepted"
        extra = f" (`verify {' '.join(it['verify_args'])}`)" if it["verify_args"] else ""
        note = f" — {it['note']}" if it["note"] else ""
        tries = it["tries"].replace("|", "\\|")
        lines.append(f"| `{it['file']}` | {tries}{note} | {err}{extra} | {it['verify_exit']} | "
                     f"{it['inspect_exit']} |")
    return "\n".join(lines) + "\n"


def generate(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    items = build()
    index = {"generator": "tools/gen_attacks.py", "attacks": []}
    for name, it in items.items():
        data = it.pop("data")
        atomic_write(out / it["file"], data)
        index["attacks"].append({"name": name, **it, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    write_index(out, index)
    atomic_write(out / "README.md", readme({a["name"]: a for a in index["attacks"]}).encode())
    return index


def main(argv=None) -> int:
    return cli(__doc__, generate, DEFAULT_OUT, "attacks", argv)


if __name__ == "__main__":
    sys.exit(main())
