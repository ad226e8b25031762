"""Constants and hard limits of the clone-delta format v1 (spec/clone-delta-v1.md, "Limits").

Every limit is checked *before* the thing it bounds is read or allocated: lengths in the preamble before the header
or payload is sliced, msgpack container and string sizes while the header is unpacked, the declared raw payload
size before decompression (and decompression stops as soon as the output passes it).

The defaults are generous for clone deltas (adapters and classifiers: kilobytes to a few megabytes) yet small enough
that a hostile file cannot make a reader allocate more than a small multiple of ``max_payload_raw``. Callers may pass
a tighter :class:`Limits` (tests do); a looser one is at their own risk.
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"\x89PNCD\r\n\x1a"  # PNG-style: non-ASCII first byte, CR-LF and ^Z catch text-mode mangling
MAJOR = 1
MINOR = 0
PREAMBLE_SIZE = 32  # magic 8 + major 2 + minor 2 + flags 4 + header_len 8 + payload_len 8
DIGEST_SIZE = 32  # sha256
SIG_COUNT_SIZE = 4  # u32 number of signatures
SIG_ENTRY_SIZE = 96  # 32-byte Ed25519 public key + 64-byte signature
SIGNING_CONTEXT = b"pnc-pack clone-delta v1 digest\n"  # prefixed to the digest before signing (domain separation)

# zstd level used by the writer. Not normative (readers accept any level); fixed so that output is deterministic.
# Level 9 vs 19 on trained MLP weights, F32, byte-grouped (tools/bench/format.py): 19 saves 0.9 % more bytes at
# about 13x the time (285 vs 22 ms for 1.2 MB); level 3 gives 0.4 % more bytes than 9.
ZSTD_LEVEL = 9
MAX_WINDOW_LOG = 27  # readers refuse zstd frames that need a window above 128 MiB


@dataclass(frozen=True)
class Limits:
    """Hard limits a reader enforces (and a writer refuses to exceed). See the spec's limits table."""

    max_header_bytes: int = 16 * 1024 * 1024
    max_payload_raw: int = 2 * 1024 * 1024 * 1024  # decompressed safetensors bytes
    max_payload_compressed: int = 2 * 1024 * 1024 * 1024
    max_tensors: int = 4096
    max_dims: int = 8
    max_dim: int = 2**31 - 1  # elements along one dimension
    max_elements: int = 2**31 - 1  # elements in one tensor
    max_signatures: int = 16
    max_str: int = 64 * 1024  # bytes in one msgpack str
    max_bin: int = 1024 * 1024  # bytes in one msgpack bin (mask bits)
    max_array: int = 1 << 20  # items in one msgpack array
    max_map: int = 1 << 16  # entries in one msgpack map
    max_depth: int = 32  # nesting of arrays and maps in the header (the top-level map is depth 1)
    # msgpack values in the header (every scalar, array, map, and map key). Bounds the Python objects a header can
    # become: without it 16 MiB of one-byte empty arrays unpacked into 15 M objects (2.3 GB RSS, 30+ s CPU,
    # measured before the limit; see canonical._Counter). 2^20 leaves room for 2^16 labels (7 values each) and
    # hundreds of modules.
    max_header_values: int = 1 << 20
    max_modules: int = 256
    max_labels: int = 1 << 16
    max_mask_filters: int = 1 << 20
    max_name: int = 255  # tensor, layer and label names; kinds are shorter by their own rule

    @property
    def max_file_size(self) -> int:
        return (
            PREAMBLE_SIZE + self.max_header_bytes + self.max_payload_compressed + DIGEST_SIZE + SIG_COUNT_SIZE
            + SIG_ENTRY_SIZE * self.max_signatures
        )


DEFAULT_LIMITS = Limits()
