"""Children die with their parent: a SIGKILLed parent's trainer-like child (own process group,
as StreamedProcess starts it) and that child's own child are stopped by the watchdog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

_PARENT = textwrap.dedent("""
    import sys, time
    from tasks.launch import StreamedProcess
    grandchild = "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); print(p.pid, flush=True); time.sleep(600)"
    p = StreamedProcess([sys.executable, "-c", grandchild], env=dict(__import__("os").environ), cwd=".",
                        on_line=lambda line: print(line, flush=True), log_file=sys.argv[1])
    print(p.proc.pid, flush=True)
    time.sleep(600)
""")


def test_children_of_a_sigkilled_parent_are_stopped(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path / "child.log")], stdout=subprocess.PIPE,
                              text=True, env=env, cwd=str(ROOT))
    pids: list[int] = []
    try:
        pids = sorted(int(parent.stdout.readline()) for _ in range(2))  # the child and its child
        procs = [psutil.Process(p) for p in pids]
        assert all(p.is_running() for p in procs)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone, alive = psutil.wait_procs(procs, timeout=60)  # a bound, not a measurement
        assert alive == [], f"still running after the parent's SIGKILL: {alive}"
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_the_watchdog_leaves_a_child_alone_while_the_parent_lives_and_exits_with_it():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    from zppo_core import lifeline

    dog = lifeline.watch(child.pid, group=True)
    try:
        assert dog.poll() is None and child.poll() is None  # parent (this test) alive: nothing happens
        child.kill()
        child.wait()
        assert dog.wait(timeout=60) == 0  # the child is gone: the watchdog ends too
    finally:
        if child.poll() is None:
            child.kill()
