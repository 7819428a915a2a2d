"""Children die with their parent, even when the parent is SIGKILLed.

The processes a run starts (the trainer, ``vllm serve``, evaluation workers) get their own
process group so that stopping one reaches its workers too -- which also means a SIGKILLed
parent (``zppo pipeline``) would leave them running. :func:`watch` starts a small watchdog
process (``python -m zppo_core.lifeline``) per child: it polls the parent every
:data:`POLL_S` seconds and, once the parent is gone, sends SIGTERM to the child's process group
(or the child alone), then SIGKILL after :data:`GRACE_S` seconds. It exits as soon as the child
has exited. The watchdog is in a session of its own, so whatever kills the parent leaves it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

#: seconds between two looks at the parent
POLL_S = 0.5
#: seconds between SIGTERM and SIGKILL of an orphaned child
GRACE_S = 10.0


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (an exited child not yet reaped -- a zombie -- does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _signal(target: int, group: bool, sig: int) -> None:
    try:
        os.killpg(target, sig) if group else os.kill(target, sig)
    except (ProcessLookupError, PermissionError):
        pass


def watch(child_pid: int, *, group: bool, parent_pid: int | None = None) -> subprocess.Popen:
    """Start the watchdog of ``child_pid`` (its process group when ``group``) for
    ``parent_pid`` (default: this process). Returns the watchdog's process."""
    parent = os.getpid() if parent_pid is None else parent_pid
    cmd = [sys.executable, "-m", "zppo_core.lifeline", str(parent), str(child_pid), "group" if group else "pid"]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def main(argv: list[str]) -> int:
    parent, child, mode = int(argv[0]), int(argv[1]), argv[2]
    group = mode == "group"
    while pid_alive(child):
        if not pid_alive(parent):
            _signal(child, group, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_S
            while pid_alive(child) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            _signal(child, group, signal.SIGKILL)
            return 0
        time.sleep(POLL_S)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
