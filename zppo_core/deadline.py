"""Run a callable under a wall-clock budget, from any thread, without ever raising.

Used by :mod:`zppo_core.grading` for the sympy-backed equivalence steps, which can hang on
adversarial input. In the main thread a repeating ``SIGALRM`` timer interrupts the callee (the
repeat defeats bare ``except:`` clauses inside third-party code); in any other thread the callee
runs in a daemon helper thread that is cancelled by an asynchronously raised exception when the
budget runs out (``PyThreadState_SetAsyncExc``). A helper stuck in C code is abandoned (at most
:data:`MAX_ABANDONED_THREADS` at a time; beyond that, calls are skipped and counted).
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

#: Re-raise period of the main-thread alarm after the budget ran out (defeats bare ``except:``).
ALARM_REPEAT_S = 0.05
#: Cancellation attempts (each followed by an ALARM_REPEAT_S wait) of an overdue helper thread.
CANCEL_TRIES = 4
#: Helper threads that may still be running after their budget expired and cancellation failed.
MAX_ABANDONED_THREADS = 4

T = TypeVar("T")

class _Timeout(BaseException):
    """Raised by the alarm handler; a BaseException so ``except Exception`` does not eat it."""


class _AlarmState:
    armed = False


_ABANDONED: list[threading.Thread] = []
#: Counters of the time-bound machinery (approximate under threads); see :func:`grading_stats`.
STATS: Counter[str] = Counter()
_ABANDONED_LOCK = threading.Lock()


def _alarm_handler(signum: int, frame: Any) -> None:
    # Never raise inside this module's own bookkeeping frames: only inside the guarded callee.
    if _AlarmState.armed and (frame is None or frame.f_code not in _OWN_CODES):
        raise _Timeout()


def _safe(fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - sympy/antlr raise anything on odd input
        return None
    except RecursionError:
        return None


def _run_with_alarm(fn: Callable[[], T], timeout_s: float) -> T | None:
    previous = signal.signal(signal.SIGALRM, _alarm_handler)
    result = None
    try:
        _AlarmState.armed = True
        signal.setitimer(signal.ITIMER_REAL, timeout_s, ALARM_REPEAT_S)
        try:
            result = _safe(fn)
        except _Timeout:
            _AlarmState.armed = False  # a repeat alarm must not fire inside the bookkeeping below
            STATS["timeouts"] += 1
            result = None
    finally:
        _AlarmState.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
    return result


def _helper_target(fn: Callable[[], Any], box: dict[str, Any]) -> None:
    try:
        try:
            box["r"] = _safe(fn)
        except _Timeout:
            pass
    except _Timeout:  # a second cancellation landing in the handler above
        pass


def _cancel(worker: threading.Thread) -> bool:
    """Raise :class:`_Timeout` inside ``worker`` (repeatedly, briefly); True if it stopped."""
    for _ in range(CANCEL_TRIES):
        if worker.ident is None or not worker.is_alive():
            return True
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(_Timeout))
        worker.join(ALARM_REPEAT_S)
    return not worker.is_alive()


def _run_in_thread(fn: Callable[[], T], timeout_s: float) -> T | None:
    with _ABANDONED_LOCK:
        _ABANDONED[:] = [t for t in _ABANDONED if t.is_alive()]
        if len(_ABANDONED) >= MAX_ABANDONED_THREADS:
            STATS["skipped_busy"] += 1
            return None
    box: dict[str, Any] = {}
    worker = threading.Thread(target=_helper_target, args=(fn, box), name="zppo-grading", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        STATS["timeouts"] += 1
        if not _cancel(worker):  # stuck in C code: leave it, it is a daemon
            with _ABANDONED_LOCK:
                _ABANDONED.append(worker)
        return None
    return box.get("r")


def deadline_stats() -> dict[str, int]:
    """Counts since import: ``timeouts`` (symbolic step cut by the budget), ``skipped_busy``
    (too many abandoned helper threads), ``refused_unsafe`` (answer too long/risky for sympy)."""
    return {key: int(STATS[key]) for key in ("timeouts", "skipped_busy", "refused_unsafe")}


def _alarm_usable() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0
    )


def bounded(fn: Callable[[], T], timeout_s: float) -> T | None:
    """``fn()`` if it finishes within ``timeout_s`` seconds and does not raise, else None."""
    if timeout_s <= 0:
        return None
    if _alarm_usable():
        return _run_with_alarm(fn, timeout_s)
    return _run_in_thread(fn, timeout_s)


_OWN_CODES = frozenset({_run_with_alarm.__code__, bounded.__code__, _safe.__code__})
