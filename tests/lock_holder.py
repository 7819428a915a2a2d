"""Test helper: hold an output folder's lock in another process (``with lock_held(folder):``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = (
    "import sys, time\n"
    "from zppo_core.locks import folder_lock\n"
    "with folder_lock(sys.argv[1], 'holder'):\n"
    "    print('ready', flush=True)\n"
    "    time.sleep(600)\n"
)


@contextlib.contextmanager
def lock_held(folder: str | Path) -> Iterator[int]:
    """Yields the PID of a separate process that holds ``folder``'s lock; kills it afterwards."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RANK": "0"}
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(folder)], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=str(ROOT))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
