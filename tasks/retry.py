"""Which failures a stage retries: transient ones (timeouts, refused connections, port clashes,
NCCL/rendezvous hiccups), never deterministic ones (bad config, missing file, OOM, a code bug,
an injected fault). Used as Prefect's ``retry_condition_fn``."""

from __future__ import annotations

import errno
import re
from typing import Any


class TransientStageError(RuntimeError):
    """A stage failed for a reason that may go away on retry (raised by the wrappers in tasks/)."""


class InjectedFault(RuntimeError):
    """Raised on purpose by the fault-injection switch (``ZPPO_FAULT_TRAIN_AFTER_STEP``)."""


#: substrings of a subprocess's log that mark a transient failure
TRANSIENT_LOG_MARKERS = (
    "address already in use",
    "eaddrinuse",
    "connection refused",
    "connection reset",
    "timed out",
    "timeout",
    "nccl error",
    "rendezvous",
    "temporarily unavailable",
    "503 service unavailable",
    "502 bad gateway",
)
#: substrings that make a failure deterministic even if a transient marker also appears
DETERMINISTIC_LOG_MARKERS = ("out of memory", "outofmemoryerror", "configerror")
#: a collective that never completed (a rank stalled or diverged): retrying repeats the hang
#: until the same timeout, so it is reported once (:func:`hang_report`) and not retried
HANG_LOG_MARKERS = (
    "watchdog caught collective operation timeout",
    "collective operation timeout",
    "processgroupnccl's watchdog",
    "nccl communicator was aborted",
    "rendezvoustimeouterror",
    "rendezvous timeout",
    "timed out waiting for",  # gloo / store waits for the other ranks
    "diststoreerror",
)
_RANK = re.compile(r"\[\s*rank\s*(\d+)\s*\]|\brank[ =:]+(\d+)", re.IGNORECASE)


class CollectiveHang(RuntimeError):
    """The trainer hung in a collective (NCCL / gloo / rendezvous timeout); never retried."""


def hang_report(log_tail: str, world: int | None = None) -> str | None:
    """One line naming the stalled rank(s) when ``log_tail`` shows a collective timeout, else None.

    The ranks that print the timeout are the ones that WAITED; with ``world`` known, the ranks
    of ``0..world-1`` that printed none are the ones that stalled (never joined the collective).
    """
    lines = [ln for ln in log_tail.splitlines() if any(m in ln.lower() for m in HANG_LOG_MARKERS)]
    if not lines:
        return None
    waited = sorted({int(a or b) for ln in lines for a, b in _RANK.findall(ln)})
    stalled = sorted(set(range(world)) - set(waited)) if world and waited else []
    if stalled:
        who = f"rank(s) {stalled} stalled (rank(s) {waited} timed out waiting for them)"
    elif waited:
        who = f"rank(s) {waited} timed out waiting (the stalled rank printed nothing)"
    else:
        who = "a rank timed out waiting"
    return f"collective hang (NCCL/gloo/rendezvous timeout, not retried): {who}: {lines[0].strip()[:300]}"


_TRANSIENT_ERRNOS = {errno.EADDRINUSE, errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EAGAIN}


def is_transient(exc: BaseException | None) -> bool:
    """Classify an exception (following ``__cause__``) as transient."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, (InjectedFault, CollectiveHang)):
            return False
        if isinstance(exc, (TransientStageError, TimeoutError, ConnectionError)):
            return True
        if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
            return True
        name = type(exc).__name__
        if name in {"TimeoutException", "ConnectTimeout", "ReadTimeout", "ConnectError", "RemoteProtocolError",
                    "APITimeoutError", "APIConnectionError"}:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def classify_log(log_tail: str) -> bool:
    """True when a failed subprocess's log tail points at a transient cause."""
    low = log_tail.lower()
    if any(m in low for m in DETERMINISTIC_LOG_MARKERS) or any(m in low for m in HANG_LOG_MARKERS):
        return False
    return any(m in low for m in TRANSIENT_LOG_MARKERS)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure is transient."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - we classify whatever the task raised
        return is_transient(exc)
    return False


__all__ = ["CollectiveHang", "HANG_LOG_MARKERS", "InjectedFault", "hang_report", "TransientStageError", "classify_log", "is_transient", "retry_transient"]
