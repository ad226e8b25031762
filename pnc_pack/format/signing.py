"""Ed25519 signing of clone deltas, and the key files (spec/clone-delta-v1.md, "Signatures").

A signature signs ``SIGNING_CONTEXT + digest`` (the context string keeps a pnc-pack key's signatures from being
replayed as signatures over anything else). Signatures live after the digest, so adding one never changes the
digest or any byte before it; several coexist, one per key, sorted by public key. Ed25519 is deterministic, so
re-signing with the same key gives the same bytes: signing replaces that key's previous signature.

Key files: ``NAME`` holds the private key as unencrypted PKCS#8 PEM, written atomically with mode 0600; ``NAME.pub``
holds the public key as SubjectPublicKeyInfo PEM (both readable by ``openssl pkey``). A key is named in reports by its
fingerprint: the sha256 of the 32-byte raw public key, hex.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pnc_pack.errors import FormatError, KeyFormatError, SignatureError, UsageError
from pnc_pack.format import container
from pnc_pack.format.delta import CloneDelta, Signature
from pnc_pack.format.limits import DEFAULT_LIMITS, DIGEST_SIZE, Limits

MAX_KEY_FILE = 64 * 1024


# -- keys --------------------------------------------------------------------------------------------------------
def generate_keypair() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """A private key from its 32-byte seed (deterministic test keys; the vectors use these)."""
    if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
        raise KeyFormatError("an Ed25519 seed is exactly 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(bytes(seed))


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization  # lazy: ~10 ms, not needed to verify

    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: bytes) -> str:
    """sha256 of the raw 32-byte public key, hex: how reports name a key."""
    return hashlib.sha256(bytes(public_key)).hexdigest()


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey | bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization  # lazy: ~10 ms, not needed to verify

    if isinstance(key, (bytes, bytearray)):
        key = Ed25519PublicKey.from_public_bytes(bytes(key))
    elif isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_keypair(key: Ed25519PrivateKey, path: str | os.PathLike, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``path`` (private, PKCS#8 PEM, mode 0600) and ``path.pub`` (public, SPKI PEM), each atomically."""
    from cryptography.hazmat.primitives import serialization  # lazy: ~10 ms, not needed to verify

    from pnc_pack.fsutil import atomic_write

    path = Path(path)
    pub = path.with_name(path.name + ".pub")
    if not overwrite:
        for p in (path, pub):
            if p.exists():
                raise UsageError(f"{p} exists; refusing to overwrite a key")
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    atomic_write(path, private_pem, mode=0o600)
    atomic_write(pub, public_key_pem(key), mode=0o644)
    return path, pub


def keygen(path: str | os.PathLike, *, overwrite: bool = False) -> tuple[Path, Path, str]:
    """Generate a key pair and write it (see :func:`write_keypair`); returns (private, public, fingerprint)."""
    key = generate_keypair()
    priv, pub = write_keypair(key, path, overwrite=overwrite)
    return priv, pub, fingerprint(public_key_bytes(key))


def _read_key_file(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFormatError(f"{path}: cannot read key file: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE:
        raise KeyFormatError(f"{path}: too large for a key file")
    return data


def load_private_key(path: str | os.PathLike) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization  # lazy: ~10 ms, not needed to verify

    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFormatError(f"{path}: the private key is encrypted; pnc-pack reads unencrypted PKCS#8 keys") from None
    except Exception as exc:  # ValueError, UnsupportedAlgorithm, ...
        raise KeyFormatError(f"{path}: not a PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike) -> bytes:
    """The raw 32-byte public key from a ``.pub`` file (SPKI PEM)."""
    from cryptography.hazmat.primitives import serialization  # lazy: ~10 ms, not needed to verify

    data = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except Exception as exc:
        raise KeyFormatError(f"{path}: not a PEM public key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFormatError(f"{path}: not an Ed25519 public key")
    return public_key_bytes(key)


def public_keys(keys) -> set[bytes]:
    """Trusted keys as raw 32-byte Ed25519 keys: each given raw (bytes) or as a ``.pub`` file path."""
    out = set()
    for k in keys:
        if isinstance(k, (bytes, bytearray, memoryview)):
            if len(k) != 32:
                raise KeyFormatError(f"a raw Ed25519 public key has 32 bytes, got {len(k)}")
            out.add(bytes(k))
        else:
            out.add(load_public_key(k))
    return out


# -- signatures --------------------------------------------------------------------------------------------------
_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decode_point(enc: bytes) -> tuple[int, int] | None:
    """RFC 8032 §5.1.3 point decoding; None if ``enc`` is not a canonical encoding of a curve point."""
    y = int.from_bytes(enc, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    if (v * x * x - u) % _P:
        x = (x * _SQRT_M1) % _P
        if (v * x * x - u) % _P:
            return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y


def _double(pt: tuple[int, int]) -> tuple[int, int]:
    x, y = pt
    t = _D * x * x * y * y % _P
    return ((2 * x * y) * pow(1 + t, _P - 2, _P) % _P, (y * y + x * x) * pow(1 - t, _P - 2, _P) % _P)


@functools.lru_cache(maxsize=256)
def weak_public_key(public_key: bytes) -> bool:
    """True for a public key no signature should be accepted from: not a canonical point encoding, or a point of
    small order (8 * A = identity).

    OpenSSL (through ``cryptography``) verifies RFC 8032 signatures without this check, and with the identity as
    public key the signature R = identity, S = 0 verifies for *every* message (measured: tests/attacks/
    signature-small-order-key.pncd passed verification before this check). Such a key proves nothing about who
    made a file, so its signatures count as invalid (libsodium refuses the same keys).
    """
    pt = _decode_point(bytes(public_key))
    if pt is None:
        return True
    for _ in range(3):
        pt = _double(pt)
    return pt == (0, 1)


def signature_valid(public_key: bytes, signature: bytes, digest: bytes) -> bool:
    if len(public_key) != 32 or weak_public_key(public_key):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public_key)).verify(bytes(signature),
                                                                     container.signed_message(digest))
        return True
    except (InvalidSignature, ValueError):
        return False


def bad_signature(index: int, public_key: bytes) -> str:
    """The message of a signature that does not verify. The digest was checked first and matches the content, so
    the content is as hashed: it is the signature that is bad (its bytes damaged, or made over other content)."""
    return (f"signature {index} by key sha256:{fingerprint(public_key)[:16]} is invalid: it does not verify over the "
            "file's digest, which itself matches the content (the signature bytes are damaged, or it was made over "
            "other content)")


def check_signatures(digest: bytes, signatures, *, strict: bool = False) -> list[bool]:
    """Validity of each (public key, signature) over ``digest``; with ``strict`` raise SignatureError on the first
    invalid one."""
    out = []
    for i, (pk, sig) in enumerate(signatures):
        ok = signature_valid(pk, sig, digest)
        if strict and not ok:
            raise SignatureError(bad_signature(i, pk))
        out.append(ok)
    return out


def evaluate_policy(digest: bytes, signatures, trusted_keys=(), require_signature: bool = False
                    ) -> tuple[list[bool], str | None]:
    """(validity of each signature, the policy failure or None).

    Policy: every signature present must verify; with ``trusted_keys`` (raw 32-byte public keys) at least one valid
    signature must be by one of them; with ``require_signature`` at least one valid signature must be present.
    """
    trusted = public_keys(trusted_keys)
    valid = check_signatures(digest, signatures)
    good = [bytes(pk) for (pk, _), ok in zip(signatures, valid) if ok]
    bad = [bytes(pk) for (pk, _), ok in zip(signatures, valid) if not ok]
    if bad:
        i = valid.index(False)
        return valid, bad_signature(i, signatures[i][0])
    if trusted and not any(pk in trusted for pk in good):
        what = "is unsigned" if not signatures else "has no valid signature by a trusted key"
        return valid, f"the delta {what} ({len(trusted)} trusted key(s) given)"
    if require_signature and not good:
        return valid, "the delta is unsigned and a signature is required"
    return valid, None


def enforce_policy(delta: CloneDelta | bytes, *, trusted_keys=(), require_signature: bool = False) -> list[str]:
    """Raise SignatureError unless ``delta`` (a CloneDelta or a file's bytes) satisfies the signature policy of
    :func:`evaluate_policy`; return the fingerprints of its valid signatures by trusted keys."""
    from pnc_pack.format import codec

    if isinstance(delta, CloneDelta):
        digest = codec.digest(delta)
        sigs = [(sg.public_key, sg.signature) for sg in delta.signatures]
    else:
        c = container.parse(bytes(delta))
        digest, sigs = c.digest, list(c.signatures)
    _, failure = evaluate_policy(digest, sigs, trusted_keys, require_signature)
    if failure:
        raise SignatureError(failure)
    trusted = public_keys(trusted_keys)
    return [fingerprint(pk) for pk, _ in sigs if bytes(pk) in trusted]


def _make(key: Ed25519PrivateKey, digest: bytes) -> tuple[bytes, bytes]:
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"expected an Ed25519 private key, got {type(key).__name__}")
    return public_key_bytes(key), key.sign(container.signed_message(digest))


def _merge(existing, new: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return sorted([s for s in existing if s[0] != new[0]] + [new])


def sign(delta: CloneDelta, private_key: Ed25519PrivateKey, **dump_kw) -> CloneDelta:
    """``delta`` with a signature by ``private_key`` added (replacing that key's earlier signature)."""
    from pnc_pack.format.codec import carry_origin
    from pnc_pack.format.codec import digest as _digest

    new = _make(private_key, _digest(delta, **dump_kw))
    sigs = _merge([(s.public_key, s.signature) for s in delta.signatures], new)
    out = dataclasses.replace(delta, signatures=tuple(Signature(pk, sig) for pk, sig in sigs))
    # a delta read from a file keeps being written as that file's bytes (the digest just signed), unless dump_kw
    # asked for another encoding
    return out if dump_kw else carry_origin(delta, out)


def sign_bytes(data: bytes, private_key: Ed25519PrivateKey, *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """A delta file's bytes with a signature added; everything up to and including the digest is unchanged.

    The file is fully decoded first (a signature vouches for a file that loads), and existing signatures must
    verify."""
    from pnc_pack.format.codec import decode

    delta, info = decode(data, limits=limits)
    new = _make(private_key, bytes.fromhex(info.digest))
    sigs = _merge([(s.public_key, s.signature) for s in delta.signatures], new)
    return container.with_signatures(data, sigs, limits)


def sign_file(path: str | os.PathLike, private_key: Ed25519PrivateKey, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """Add a signature to the delta file at ``path`` (atomic rewrite). Returns the digest, hex.

    The read-sign-write cycle holds an advisory lock on ``.NAME.lock`` next to the file
    (:func:`pnc_pack.fsutil.locked`): two processes signing one file with different keys both end with their
    signature in it. Without the lock both read the unsigned file and the second rename dropped the first
    signature (tests/test_crash_safety.py runs concurrent signers).
    """
    from pnc_pack.format.codec import read_bytes
    from pnc_pack.fsutil import atomic_write, locked

    if not os.path.isfile(path):
        raise FormatError(f"{path}: no such file")
    try:
        with locked(path):
            data = read_bytes(path, limits)
            out = sign_bytes(data, private_key, limits=limits)
            atomic_write(path, out, mode=_mode_of(path))
    except OSError as exc:  # the folder is not writable (lock or temporary file), the disk is full, ...
        raise UsageError(f"{path}: cannot rewrite the file: {exc.strerror or exc}") from None
    return container.parse(out, limits).digest.hex()


def _mode_of(path) -> int:
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return 0o644


__all__ = ["keygen", "evaluate_policy", "enforce_policy", "generate_keypair", "private_key_from_seed",
           "public_key_bytes", "fingerprint", "write_keypair", "weak_public_key", "load_private_key",
           "load_public_key", "signature_valid", "check_signatures", "sign", "sign_bytes", "sign_file", "DIGEST_SIZE"]
