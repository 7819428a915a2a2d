"""Killable worker processes for the grader's symbolic steps (mathruler, math-verify / sympy).

sympy can run for minutes inside C code (big-integer arithmetic, e.g. parsing ``1e9999999``),
which neither a ``SIGALRM`` nor an asynchronously raised exception can interrupt. So the
symbolic comparison runs in a separate Python process that is killed (``SIGKILL``) when its
wall-clock budget runs out, and replaced by a fresh one (started at once, so its import time
overlaps the caller's next answers).

Protocol: the parent writes one JSON line ``[pred, gold]`` to the worker's stdin; the worker
answers one line ``true`` / ``false`` / ``null`` (raised) on its protocol pipe (its original
stdout; library prints are redirected to stderr, which goes to ``/dev/null``). A worker exits on
EOF, so it never outlives its parent's pipe.

A pool of at most :data:`MAX_WORKERS` workers per process serves concurrent callers (each call
checks one out). Waiting for a worker to *start* (``WORKER_START_TIMEOUT_S``) is not part of the
comparison budget; the budget covers the request round trip only. When no worker can be started
at all, :func:`compare` returns :data:`UNAVAILABLE` and the caller decides what to do.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

#: Workers per process (concurrent symbolic comparisons).
MAX_WORKERS = 4
#: Seconds a newly started worker may take to import sympy / math-verify and report ready.
WORKER_START_TIMEOUT_S = 120.0
#: Returned by :func:`compare` when no worker process could be started.
UNAVAILABLE = "unavailable"
_READY = b"ready"
#: Pairs a worker grades once before it reports ready (a fraction, a root, a power, an equation).
_WARMUP = (("\\frac{1}{2}", "0.5"), ("\\sqrt{2}", "2^{1/2}"), ("x=1", "1"))

#: Counters: ``timeouts`` (worker killed at the budget), ``started`` (worker processes started),
#: ``start_failures`` (a worker did not come up).
STATS: Counter[str] = Counter()


class _Worker:
    """One worker process; ``fd`` is the read end of its protocol pipe."""

    def __init__(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zppo_core.symbolic_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0,
        )
        STATS["started"] += 1
        self.fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        self.buf = b""
        self.ready = False

    def read_line(self, deadline: float) -> bytes | None:
        """One protocol line, or None when ``deadline`` (monotonic) passes or the worker died."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([self.fd], [], [], left)
            if not readable:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def wait_ready(self) -> bool:
        if not self.ready:
            self.ready = self.read_line(time.monotonic() + WORKER_START_TIMEOUT_S) == _READY
        return self.ready

    def request(self, pred: str, gold: str, timeout_s: float) -> tuple[bool, bool | None]:
        """(finished in time, answer). Answer None when the worker's comparison raised."""
        deadline = time.monotonic() + timeout_s
        try:
            self.proc.stdin.write(json.dumps([pred, gold]).encode() + b"\n")  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            return False, None
        line = self.read_line(deadline)
        if line is None:
            return False, None
        value = json.loads(line)
        return True, value if isinstance(value, bool) else None

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass


class _Pool:
    def __init__(self) -> None:
        self.idle: list[_Worker] = []
        self.total = 0
        self.cond = threading.Condition()

    def _spawn(self) -> _Worker | None:
        try:
            return _Worker()
        except OSError:
            STATS["start_failures"] += 1
            return None

    def acquire(self) -> _Worker | None:
        with self.cond:
            while not self.idle and self.total >= MAX_WORKERS:
                self.cond.wait()
            if self.idle:
                return self.idle.pop()
            self.total += 1
        worker = self._spawn()
        if worker is None:
            self.release(None)
        return worker

    def release(self, worker: _Worker | None) -> None:
        with self.cond:
            if worker is None:
                self.total -= 1
            else:
                self.idle.append(worker)
            self.cond.notify()

    def prestart(self) -> None:
        """Start one worker now, if this process has none, so that its imports and warm-up run
        while the caller sets up instead of inside the first answer that needs sympy."""
        with self.cond:
            if self.total:
                return
            self.total += 1
        self.release(self._spawn())

    def replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and put a freshly started one (still importing) in its slot."""
        worker.kill()
        fresh = self._spawn()
        self.release(fresh)

    def shutdown(self) -> None:
        with self.cond:
            workers, self.idle, self.total = self.idle, [], 0
        for w in workers:
            w.kill()


_POOL = _Pool()


def _shutdown_at_exit() -> None:
    _POOL.shutdown()


def _fresh_pool_after_fork() -> None:
    """A forked child must not share its parent's workers (their pipes are the parent's): it
    drops its copies of the pipes and starts its own workers on demand."""
    global _POOL
    for w in _POOL.idle:
        for stream in (w.proc.stdin, w.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
    _POOL = _Pool()


atexit.register(_shutdown_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_pool_after_fork)


def compare(pred: str, gold: str, timeout_s: float) -> bool | None | str:
    """The symbolic steps (:func:`zppo_core.symbolic.symbolic_steps`) in a worker process.

    Returns the worker's answer; None when it raised or ran past ``timeout_s`` seconds (then the
    worker is killed and replaced); :data:`UNAVAILABLE` when no worker process could be started.
    """
    worker = _POOL.acquire()
    if worker is None:
        return UNAVAILABLE
    if not worker.wait_ready():
        STATS["start_failures"] += 1
        worker.kill()
        _POOL.release(None)
        return UNAVAILABLE
    finished, answer = worker.request(pred, gold, timeout_s)
    if not finished:
        STATS["timeouts"] += 1
        _POOL.replace(worker)
        return None
    _POOL.release(worker)
    return answer


def prestart() -> None:
    """Start a worker in the background now (a no-op when this process already has one)."""
    _POOL.prestart()


def shutdown() -> None:
    """Stop every idle worker (they also stop on their own when this process exits)."""
    _POOL.shutdown()


def _serve() -> None:
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints of the libraries must not corrupt the protocol
    from zppo_core.symbolic import symbolic_steps

    # Warm-up before "ready": the first LaTeX parse builds math-verify's / latex2sympy's parsers
    # and sympy's caches (about a second on an idle core, several under load). Paid here, it is
    # start-up time; paid inside the first request, it would turn a right answer into a timeout.
    for pred, gold in _WARMUP:
        try:
            symbolic_steps(pred, gold)
        except Exception:  # noqa: BLE001 - warm-up only
            pass
    proto.write(_READY + b"\n")
    for line in sys.stdin.buffer:
        try:
            pred, gold = json.loads(line)
            answer: bool | None = bool(symbolic_steps(pred, gold))
        except Exception:  # noqa: BLE001 - sympy/antlr raise anything on odd input (RecursionError too)
            answer = None
        proto.write(json.dumps(answer).encode() + b"\n")


if __name__ == "__main__":
    _serve()
