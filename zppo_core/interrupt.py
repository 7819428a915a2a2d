"""Ctrl-C (SIGINT) and SIGTERM on a long command: stop its children, say what was kept, exit 130.

``zppo pipeline`` runs its stages inside Prefect's flow engine, which answers a
``KeyboardInterrupt`` by marking runs crashed through its API server, waiting for event and log
workers, and then reports a connection error once its own server is gone -- minutes, exit 1. A
user who presses Ctrl-C wants the opposite: everything stopped now, one line, and the resume
hint. :func:`exit_on_interrupt` installs that for the whole process: on the first SIGINT/SIGTERM
it prints one line, sends SIGTERM to every descendant process (the trainer, ``vllm serve``,
evaluation workers, Prefect's temporary server), SIGKILLs what is left after ``grace_s``, and
leaves with exit status 130 without running the engine's shutdown. Nothing is lost by not running
it: every stage result, checkpoint and metrics row is on disk before it is reported, and the
folder lock is released by the kernel (:mod:`zppo_core.locks`). A second signal while stopping
exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

#: exit status of a command stopped by the user (128 + SIGINT), as a shell reports it
EXIT_INTERRUPTED = 130
#: seconds the children get between SIGTERM and SIGKILL
GRACE_S = 5.0


def stop_descendants(grace_s: float = GRACE_S) -> int:
    """SIGTERM every descendant of this process, wait up to ``grace_s``, SIGKILL the rest.
    Returns how many processes were signalled."""
    import psutil

    me = psutil.Process()
    kids = me.children(recursive=True)
    for p in kids:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(kids, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=1.0)
    return len(kids)


def interrupt_line(command: str, kept: str) -> str:
    """``zppo <command>: interrupted: <kept>; run the same command again to resume.``"""
    return f"zppo {command}: interrupted: {kept}; run the same command again to resume."


def exit_on_interrupt(command: str, kept: str, *, grace_s: float = GRACE_S,
                      exit: Callable[[int], None] = os._exit) -> None:
    """Install the SIGINT/SIGTERM handler described in the module docstring (main thread only)."""
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stopping.is_set():  # a second Ctrl-C: no more waiting
            exit(EXIT_INTERRUPTED)
            return
        stopping.set()
        print(interrupt_line(command, kept), file=sys.stderr, flush=True)
        try:
            stop_descendants(grace_s)
        finally:
            sys.stdout.flush()
            exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def terminate_as_interrupt() -> None:
    """SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C (commands that clean up in ``finally``)."""

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


__all__ = ["EXIT_INTERRUPTED", "GRACE_S", "exit_on_interrupt", "interrupt_line", "stop_descendants",
           "terminate_as_interrupt"]
