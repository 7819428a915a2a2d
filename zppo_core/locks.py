"""One writer per output folder: an OS advisory lock (``fcntl.flock``) on ``<folder>/.zppo.lock``.

``zppo train``, ``zppo eval`` and ``zppo pipeline`` hold the lock of their output folder for as
long as they run. A second writer is refused at once with :class:`FolderBusy`, whose message
names the holder's PID and command. The lock belongs to the open file, so the kernel releases it
when the holder exits, even on SIGKILL: a stale lock file never blocks a later run.

Under several ranks only the process with global rank 0 takes the lock (:func:`is_rank_zero`
reads ``RANK`` before any process group exists): the ranks of one run never refuse each other,
and when rank 0 of a second run is refused, the launcher stops its other ranks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from zppo_core.redact import mask_url_credentials, redact_argv

LOCK_NAME = ".zppo.lock"
#: lock files this process holds (resolved paths)
_HELD: set[str] = set()


class FolderBusy(RuntimeError):
    """Another process holds the output folder's lock."""


def is_rank_zero() -> bool:
    """Global rank 0 (or no launcher): ``RANK`` as set by torchrun / accelerate launch."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return mask_url_credentials(text) or "unknown"  # lock files of older versions hold raw URLs


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if missing) for the ``with`` body.

    ``what`` names the writer (e.g. ``zppo train``) in the holder record. Raises
    :class:`FolderBusy` immediately when another process holds it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    key = str(path.resolve())
    if key in _HELD:  # re-entrant within one process (the CLI and the flow it runs)
        yield path
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise FolderBusy(
                f"{folder} is in use by another writer (PID {_holder(path)}); wait for it to finish, "
                f"stop it, or choose another output folder"
            ) from None
        os.ftruncate(fd, 0)
        cmd = " ".join([Path(sys.argv[0]).name, *redact_argv(sys.argv[1:])])[:200] if sys.argv else ""
        os.write(fd, f"{os.getpid()} ({what}: {cmd})\n".encode())
        os.fsync(fd)
        _HELD.add(key)
        try:
            yield path
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def rank_zero_folder_lock(folder: str | Path, what: str) -> Iterator[None]:
    """:func:`folder_lock` on global rank 0; a no-op on the other ranks of the same run."""
    if not is_rank_zero():
        yield
        return
    with folder_lock(folder, what):
        yield


__all__ = ["LOCK_NAME", "FolderBusy", "folder_lock", "is_rank_zero", "rank_zero_folder_lock"]
