"""Ctrl-C on a long command: the handler stops every child process, prints one line with the
resume hint and exits 130, without waiting for the rest of the program."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zppo_core.interrupt import interrupt_line
from zppo_core.lifeline import pid_alive

REPO = Path(__file__).resolve().parents[2]
PROGRAM = """
import subprocess, sys, time
from zppo_core.interrupt import exit_on_interrupt
child = subprocess.Popen(["sleep", "300"])
grandchild = subprocess.Popen(["bash", "-c", "sleep 300 & wait"])
exit_on_interrupt("pipeline", "stages kept", grace_s=2.0)
print(child.pid, grandchild.pid, flush=True)
try:
    time.sleep(300)
finally:
    print("engine shutdown ran", flush=True)  # what the handler skips
"""


def test_the_line_names_what_is_kept_and_how_to_resume():
    assert interrupt_line("train", "checkpoints kept") == \
        "zppo train: interrupted: checkpoints kept; run the same command again to resume."


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_children_and_exits_130_at_once(sig):
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    pids = [int(x) for x in proc.stdout.readline().split()]
    t0 = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and time.monotonic() - t0 < 10
    assert err.strip() == "zppo pipeline: interrupted: stages kept; run the same command again to resume."
    assert "engine shutdown ran" not in out
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(not pid_alive(p) for p in pids), pids


def test_zppo_train_interrupted_says_what_is_kept_and_exits_130(monkeypatch, capsys):
    """Ctrl-C (or SIGTERM, turned into the same KeyboardInterrupt) inside `zppo train`."""
    import zppo_core.trainer.cli as train_cli
    from flows.zppo_cli import main

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "run", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert main(["train", "--config", "configs/tiny.yaml"]) == 130
        assert signal.getsignal(signal.SIGTERM) is not before  # SIGTERM takes the same path
    finally:
        signal.signal(signal.SIGTERM, before)
    assert capsys.readouterr().err.strip() == (
        "zppo train: interrupted: the checkpoints saved so far are kept in the output folder; "
        "run the same command again to resume.")
