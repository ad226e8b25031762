"""The whole exception tree of pnc-pack.

Every error pnc-pack raises on purpose is a :class:`PncError`. Each subclass also inherits the builtin exception
a caller would already catch for that kind of problem (``FormatError`` is a ``ValueError``, ``HubError`` an
``OSError``, ...), so existing ``except`` clauses keep working.

Each class carries ``exit_code``: the CLI exits with it. The codes are part of the public interface (README, "Exit
codes") and never change meaning:

====  ===================================================================
code  meaning
====  ===================================================================
0     success; everything that was checked holds
1     internal error (a bug: please report it)
2     usage error: bad flags, bad arguments, bad dataset spec
3     malformed or tampered input (a clone-delta file, a key, a config)
4     signature policy failed (missing, untrusted or invalid signature)
5     a referenced model is missing or its files do not match the pins
6     incompatible model: architecture not registered, shapes do not fit
7     training / building failed
8     a deployment gate failed (``apply --min-ori/--min-tar/--max-ori-drop``): the clone may not go out
9     export failed its check (the ONNX graph does not answer like torch); nothing was written
10    hub error (generic)
11    hub: repository, revision or file not found
12    hub: unauthorised / forbidden
13    hub: connection failed
14    hub: offline mode and the file is not in the cache
15    hub: the branch moved during a push (a concurrent push); nothing was written
====  ===================================================================
"""

from __future__ import annotations


class PncError(Exception):
    """Root of every error pnc-pack raises on purpose."""

    exit_code = 1


class UsageError(PncError, ValueError):
    """The caller asked for something that does not make sense (bad flag, bad argument)."""

    exit_code = 2


class DataError(UsageError):
    """A dataset spec or dataset file is wrong or cannot be read."""


class FormatError(PncError, ValueError):
    """A clone-delta file (or another file pnc-pack reads) is malformed."""

    exit_code = 3


class LimitError(FormatError):
    """A declared size or count exceeds a hard limit of the format."""


class VersionError(FormatError):
    """The file's major version (or a required feature) is not supported by this reader."""


class IntegrityError(FormatError):
    """The file's digest does not match its contents: it was damaged or tampered with."""


class KeyFormatError(FormatError):
    """A signing or verification key file is malformed."""


class SignatureError(PncError, ValueError):
    """The signature policy failed: a signature is missing, invalid or made by an untrusted key."""

    exit_code = 4


class ReferenceError(PncError, ValueError):  # noqa: A001 - deliberately shadows the rarely used builtin
    """A model reference is malformed (unpinned revision, bad repo id, bad file name)."""

    exit_code = 5


class ModelNotFoundError(ReferenceError, FileNotFoundError):
    """A referenced model (or one of its files) cannot be found where it was looked for."""


class ModelMismatchError(ReferenceError):
    """A referenced model file's sha256 or size is not the pinned one."""

    def __init__(self, message: str, *, file: str = "", expected: str = "", actual: str = ""):
        super().__init__(message)
        self.file = file
        self.expected = expected
        self.actual = actual


class ArchitectureError(PncError, LookupError):
    """An architecture is not registered, or tensors do not fit the architecture."""

    exit_code = 6


class BuildError(PncError, RuntimeError):
    """Training or building a clone failed."""

    exit_code = 7


class RankError(BuildError):
    """A distributed build stopped: another rank raised, died or stopped answering. The message names the rank and
    the cause; ``exit_code`` is the failing rank's own (7 when it died)."""

    def __init__(self, message: str, *, rank: int = -1, exit_code: int = 7):
        super().__init__(message)
        self.rank = rank
        self.exit_code = exit_code


class GateError(PncError, RuntimeError):
    """A deployment gate failed: a measured accuracy is below its minimum (or the drop above its maximum).

    ``gates`` holds every gate's record (name, limit, measured value, passed) and ``measured`` every value."""

    exit_code = 8

    def __init__(self, message: str, *, gates: list | None = None, measured: dict | None = None):
        super().__init__(message)
        self.gates = list(gates or [])
        self.measured = dict(measured or {})


class ExportError(PncError, RuntimeError):
    """An export failed its check (e.g. onnxruntime does not answer like torch); nothing was written."""

    exit_code = 9


class HubError(PncError, OSError):
    """Talking to the Hugging Face Hub failed."""

    exit_code = 10


class HubNotFoundError(HubError, FileNotFoundError):
    """Repository, revision or file not found on the Hub."""

    exit_code = 11


class HubAuthError(HubError, PermissionError):
    """The Hub refused the request: missing or insufficient token."""

    exit_code = 12


class HubConnectionError(HubError, ConnectionError):
    """The Hub could not be reached."""

    exit_code = 13


class HubOfflineError(HubError):
    """Offline mode (HF_HUB_OFFLINE) is on and what is needed is not in the local cache."""

    exit_code = 14


class HubConflictError(HubError):
    """A push was refused because its branch moved since its parent commit was read (a concurrent push)."""

    exit_code = 15
