"""Expected errors of the command line, and how every ``zppo`` subcommand reports them.

An *expected* error is one the user can fix from the message alone: a bad config key, an unknown
model spec, a local path that does not exist, bad input data, an unreachable hub or server, a
failed preflight check. The CLIs print it as ONE line, ``zppo <command>: error: <what>``, and exit
with :data:`EXIT_USER_ERROR`; anything else is a bug or a crash and keeps its traceback.

Pure module: no I/O besides formatting; no Prefect, no MLflow.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

#: exit status of an expected (user-fixable) error; argparse also uses 2 for bad flags
EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error whose message alone tells the user what to fix (printed without a traceback)."""


class MissingPathError(UserError, FileNotFoundError):
    """A local file or folder named by the user does not exist."""


#: exception class names (third-party included) whose message is already a user-facing sentence
_EXPECTED_NAMES = {
    "ConfigError", "ModelSpecError", "SourceSchemaError", "PreflightError", "DataError",
    "RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError", "EntryNotFoundError",
    "LocalEntryNotFoundError", "OfflineModeIsEnabled", "HFValidationError", "DatasetNotFoundError",
    "BackendError",
}


def looks_like_local_path(spec: str) -> bool:
    """True when ``spec`` is meant as a local path rather than a hub id (``org/name``).

    Absolute, home-relative (``~``) and dot-relative paths, Windows drive paths and anything with
    more than one ``/`` are paths; a hub id has exactly one ``/`` and no leading dot.
    """
    if not spec or spec.startswith("builtin:"):
        return False
    if spec.startswith(("/", "~", "./", "../", ".\\", "..\\")) or spec in (".", ".."):
        return True
    if len(spec) > 1 and spec[1] == ":":  # C:\...
        return True
    return spec.count("/") > 1 or "\\" in spec


def check_local_path(spec: str, what: str) -> None:
    """Raise :class:`MissingPathError` when ``spec`` is a local path that does not exist."""
    if looks_like_local_path(spec) and not Path(os.path.expanduser(spec)).exists():
        raise MissingPathError(f"{what}: local path {spec} does not exist")


#: errno values of a full disk / exhausted quota (expected: the user frees space)
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name when it has none)."""
    if _disk_full(exc):
        where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""  # type: ignore[attr-defined]
        return f"no space left on the device{where}: free space or choose another output folder"
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a user-fixable error (see the module docstring)."""
    if isinstance(exc, (UserError, FileNotFoundError, NotADirectoryError, PermissionError)) or _disk_full(exc):
        return True
    return any(c.__name__ in _EXPECTED_NAMES for c in type(exc).__mro__)


def format_error(command: str, exc: BaseException | str) -> str:
    """``zppo <command>: error: <one line>`` (the single prefix style of every subcommand)."""
    msg = exc if isinstance(exc, str) else one_line(exc)
    return f"zppo {command}: error: {msg}"


__all__ = [
    "EXIT_USER_ERROR",
    "MissingPathError",
    "UserError",
    "check_local_path",
    "format_error",
    "is_expected",
    "looks_like_local_path",
    "one_line",
]


def guarded(command: str, fn, *args):  # noqa: ANN001, ANN201 - any CLI ``run``
    """Call ``fn(*args)``; an expected error becomes one line on stderr and exit status 2."""
    import sys

    try:
        return int(fn(*args) or 0)
    except Exception as e:  # noqa: BLE001 - expected errors become one line, the rest keep their trace
        if not is_expected(e):
            raise
        print(format_error(command, e), file=sys.stderr)
        return EXIT_USER_ERROR
