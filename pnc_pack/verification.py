"""Verification of a clone delta (the public function is `pnc_pack.verify`): structure, limits, digest,
signatures, pinned references, and (when the models are at hand) the models' file hashes.

:func:`verify` returns a :class:`VerificationReport` and does not raise on a failed check (only on a caller's
mistake, or when ``raise_on_failure=True``), in the spirit of huggingface_hub's ``utils/_verification.py``: a
deployment pipeline wants the whole picture, not the first problem.

Signature policy:
- every signature present must verify against the digest (checked first: an invalid signature over a digest
  that holds is a bad signature, its bytes damaged or made over other content);
- with ``trusted_keys``, at least one valid signature must come from one of them (naming trusted keys means
  requiring them);
- with ``require_signature``, at least one valid signature must be present.
Exit codes (``report.exit_code``): 0 all checks hold; the failing error's code for structure and digest (3 for a
malformed or tampered file, 5 for a malformed model reference); 4 signature policy; 5 model files not matching.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple

from pnc_pack.errors import FormatError, IntegrityError, PncError, ReferenceError, SignatureError, UsageError
from pnc_pack.format.delta import CloneDelta
from pnc_pack.format.limits import DEFAULT_LIMITS, Limits


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


@dataclass
class SignatureInfo:
    fingerprint: str
    public_key: str  # hex
    valid: bool
    trusted: bool


@dataclass
class VerificationReport:
    ok: bool = True
    checks: list[Check] = field(default_factory=list)
    signatures: list[SignatureInfo] = field(default_factory=list)
    refs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    exit_code: int = 0
    digest: str | None = None
    delta: CloneDelta | None = field(default=None, repr=False, compare=False)
    _exceptions: list[PncError] = field(default_factory=list, repr=False, compare=False)

    def add(self, name: str, ok: bool, detail: str = "", exc: PncError | None = None) -> None:
        self.checks.append(Check(name, ok, detail))
        if not ok:
            self.errors.append(f"{name}: {detail}")
            if self.ok:
                self.exit_code = exc.exit_code if exc is not None else 3
            self.ok = False
            if exc is not None:
                self._exceptions.append(exc)

    @property
    def first_error(self) -> str | None:
        return self.errors[0] if self.errors else None

    def exception(self) -> PncError | None:
        """The error :meth:`raise_for_failure` raises (None when every check holds)."""
        if self.ok:
            return None
        return self._exceptions[0] if self._exceptions else FormatError(self.errors[0])

    def raise_for_failure(self) -> None:
        if not self.ok:
            raise self.exception()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "digest": self.digest,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "signatures": [vars(s).copy() for s in self.signatures],
            "refs": self.refs,
            "errors": list(self.errors),
        }


def _role_keys(delta: CloneDelta) -> list[tuple[str, Any]]:
    return [("target", delta.target)] + [(f"source:{i}", m.source) for i, m in enumerate(delta.modules)]


def _resolve_model_key(key: Any, delta: CloneDelta) -> int:
    roles = _role_keys(delta)
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(roles):
        return key
    for i, (role, ref) in enumerate(roles):
        if key in (role, ref.uri(), ref.short(), ref.repo_id, ref.path) and key is not None:
            return i
    raise UsageError(f"models: {key!r} names no reference of this delta "
                     f"(use 'target', 'source:<i>', an index, or a ref's repo id / path)")


def verify(obj: str | os.PathLike | bytes | CloneDelta, *, trusted_keys: Iterable[bytes] = (),
           require_signature: bool = False, models: Mapping[Any, str | os.PathLike] | None = None,
           limits: Limits = DEFAULT_LIMITS, raise_on_failure: bool = False) -> VerificationReport:
    """Check a clone delta (a path, the file's bytes, or an in-memory CloneDelta); see the module docstring.

    ``trusted_keys`` are raw 32-byte Ed25519 public keys (see signing.load_public_key). ``models`` maps a reference
    ('target', 'source:<i>', its index in ``delta.refs``, or its repo id / local path) to a model folder whose files
    are then checked against the pins.
    """
    from pnc_pack.format import codec
    from pnc_pack.format.signing import evaluate_policy, fingerprint, public_keys

    report = VerificationReport()
    trusted = public_keys(trusted_keys)
    if any(len(k) != 32 for k in trusted):
        raise UsageError("trusted keys must be raw 32-byte Ed25519 public keys")
    try:
        if isinstance(obj, CloneDelta):
            unsigned = codec.dumps_unsigned(obj, limits=limits)
            delta, digest = obj, unsigned[-32:]
            sigs = [(s.public_key, s.signature) for s in obj.signatures]
            report.add("structure", True, f"in-memory delta encodes within the limits ({len(unsigned)} bytes "
                                          "without signatures)")
        else:
            data = bytes(obj) if isinstance(obj, (bytes, bytearray, memoryview)) else codec.read_bytes(obj, limits)
            delta, info = codec.decode(data, limits=limits, check_signatures=False)
            digest = bytes.fromhex(info.digest)
            sigs = [(s.public_key, s.signature) for s in delta.signatures]
            report.add("structure", True, f"version {info.version[0]}.{info.version[1]}, {info.file_size} bytes, "
                                          f"{len(delta.tensors())} tensors, limits respected")
    except IntegrityError as exc:
        report.add("digest", False, str(exc), exc)
        return _finish(report, raise_on_failure)
    except (FormatError, ReferenceError) as exc:
        report.add("structure", False, f"{type(exc).__name__}: {exc}", exc)
        return _finish(report, raise_on_failure)
    report.delta = delta
    report.digest = digest.hex()
    report.add("digest", True, f"sha256 {digest.hex()}")

    # signatures
    valid, failure = evaluate_policy(digest, sigs, trusted, require_signature)
    for (pk, _), ok in zip(sigs, valid):
        report.signatures.append(SignatureInfo(fingerprint(pk), pk.hex(), ok, pk in trusted))
    if failure:
        report.add("signatures", False, failure, SignatureError(failure))
    else:
        good = [s for s in report.signatures if s.valid]
        detail = (f"{len(good)} valid signature(s), {sum(s.trusted for s in good)} by trusted keys" if sigs
                  else "unsigned (no signature required)")
        report.add("signatures", True, detail)

    # references
    for role, ref in _role_keys(delta):
        report.refs.append({"role": role, "uri": ref.uri(), "local": ref.is_local, "arch": ref.arch,
                            "files": sorted(ref.files)})
    local = [r["role"] for r in report.refs if r["local"]]
    report.add("refs", True, f"{len(report.refs)} pinned reference(s)" +
               (f"; local (unpublished): {', '.join(local)}" if local else ", all on the hub at 40-hex commits"))

    for key, folder in (models or {}).items():
        i = _resolve_model_key(key, delta)
        role, ref = _role_keys(delta)[i]
        try:
            ref.check_folder(folder)
            report.add(f"model:{role}", True, f"{folder}: {len(ref.files)} file(s) match their pinned sha256 and size")
        except ReferenceError as exc:
            report.add(f"model:{role}", False, str(exc), exc)
    return _finish(report, raise_on_failure)


def _finish(report: VerificationReport, raise_on_failure: bool) -> VerificationReport:
    if raise_on_failure:
        report.raise_for_failure()
    return report


__all__ = ["verify", "VerificationReport", "Check", "SignatureInfo"]
