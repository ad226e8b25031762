"""What every command shares: error handling, --json output, progress."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from pnc_pack.errors import PncError, UsageError

_RUN = threading.local()  # this run's --json flag (.json) and whether a JSON document was printed (.emitted)


def run_main(group: click.Group, argv=None) -> int:
    """Run the click group; turn every PncError into one line on stderr and its exit code.

    Under ``--json`` an error is also a JSON object on stdout, ``{"error": {"type", "message", "exit_code"}}``
    (unless the command already printed its own report, which then carries the same ``error``), with the same exit
    code. Tracebacks are shown only when ``PNC_PACK_DEBUG=1``.
    """
    debug = os.environ.get("PNC_PACK_DEBUG") == "1"
    _RUN.json = _RUN.emitted = False
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        group.main(args=args, prog_name="pnc-pack", standalone_mode=False)  # commands signal failure by raising
    except click.exceptions.Abort:
        return _fail("Aborted", "aborted", 130, "pnc-pack: aborted")
    except click.exceptions.ClickException as exc:  # usage errors (bad flags, missing files, ...)
        code = 2 if isinstance(exc, click.UsageError) else exc.exit_code
        if getattr(_RUN, "json", False) or _json_asked(exc, args):
            emit_json({"error": error_object("UsageError", exc.format_message(), code)})
        exc.show()
        return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except PncError as exc:
        if debug:
            raise
        return _fail(type(exc).__name__, one_line(str(exc)), exc.exit_code,
                     f"pnc-pack: error: {type(exc).__name__}: {one_line(str(exc))}")
    except KeyboardInterrupt:
        return _fail("KeyboardInterrupt", "interrupted", 130, "pnc-pack: interrupted")
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line, unless debugging
        if debug:
            raise
        return _fail("InternalError", f"{type(exc).__name__}: {one_line(str(exc))}", 1,
                     f"pnc-pack: internal error: {type(exc).__name__}: {one_line(str(exc))} "
                     "(set PNC_PACK_DEBUG=1 for a traceback, and please report it)")
    return 0


def error_object(kind: str, message: str, exit_code: int) -> dict:
    """What ``--json`` prints for an error (under the key ``error``)."""
    return {"type": kind, "message": message, "exit_code": exit_code}


def _fail(kind: str, message: str, code: int, line: str) -> int:
    """One line on stderr; under --json also the error object on stdout, unless a report was printed already."""
    if getattr(_RUN, "json", False) and not getattr(_RUN, "emitted", False):
        emit_json({"error": error_object(kind, message, code)})
    click.echo(line, err=True)
    return code


def _json_asked(exc: click.ClickException, args: list) -> bool:
    """--json on the command line of a command that takes it, when click stopped before reading it."""
    ctx = getattr(exc, "ctx", None)
    if ctx is None or not any(p.name == "as_json" for p in ctx.command.params):
        return False
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (sorted keys, UTF-8)."""
    _RUN.emitted = True
    click.echo(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def _note_json(ctx, param, value):
    if value:
        _RUN.json = True  # eager: known before any other option can fail, so that failure is JSON too
    return value


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, is_eager=True, callback=_note_json,
                        help="Print the result as JSON (an error too: {\"error\": {type, message, exit_code}}).")(f)


def device_options(f=None, *, precision: bool = True, deterministic: bool = False):
    """``--device`` (and ``--precision``, ``--deterministic`` where a command trains): every command that runs
    torch takes them the same way (:mod:`pnc_pack.devices` checks the values before any work starts)."""
    def wrap(f):
        if deterministic:
            f = click.option("--deterministic", is_flag=True,
                             help="torch.use_deterministic_algorithms during the run (CUDA: reproducible on the same "
                                  "GPU and software; docs/devices.md).")(f)
        if precision:
            f = click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
                             help="fp32, or bf16 autocast of the forward passes (weights and deltas stay fp32).")(f)
        return click.option("--device", default="auto", show_default=True,
                            help="auto (cuda when available, else cpu), cpu, cuda or cuda:N.")(f)

    return wrap(f) if f is not None else wrap


def force_option(f):
    return click.option("--force", is_flag=True, help="Overwrite outputs that already exist.")(f)


def check_outputs(*paths, force: bool = False) -> None:
    """The one rule for what a command writes, checked before any work: a file that already exists is kept unless
    ``--force`` was given, a folder is never taken for a file, and the folder each file goes in (created when
    missing) must be writable. UsageError naming the file, the flag or the folder."""
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        if p.is_dir():
            raise UsageError(f"{p} is a folder, not a file: give the file to write")
        if (p.exists() or p.is_symlink()) and not force:
            raise UsageError(f"{p} already exists; pass --force to overwrite it")
        check_writable(p.parent)


def check_writable(folder) -> None:
    """UsageError unless files can be created in ``folder`` (or in its nearest existing parent, when missing)."""
    folder = Path(folder)
    here = folder
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        raise UsageError(f"cannot write in {folder}: {here} is not a folder")
    if not os.access(here, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {folder}: permission denied on {here}")


def progress_enabled() -> bool:
    """Progress bars only on a terminal, and never when HF_HUB_DISABLE_PROGRESS_BARS or PNC_PACK_QUIET is set."""
    if os.environ.get("PNC_PACK_QUIET") == "1" or os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1":
        return False
    return sys.stderr.isatty()
