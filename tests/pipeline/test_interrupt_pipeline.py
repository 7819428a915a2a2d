"""Ctrl-C on `zppo pipeline` while its trainer runs: exit 130 within seconds with one line that
says what was kept and that re-running resumes; no process of the run is left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest
from pipeline_helpers import REPO, TEST_OVERRIDES, base_env

pytestmark = [pytest.mark.slow]
#: seconds from Ctrl-C to the exit (the children get 5 s between SIGTERM and SIGKILL)
EXIT_WITHIN_S = 15


def _run_processes(marker: str) -> list[str]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if marker in cmd:
            found.append(f"{p.pid}: {cmd[:200]}")
    return found


def test_ctrl_c_stops_the_pipeline_and_its_trainer_with_exit_130(tmp_path):
    out = tmp_path / "run"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in {**TEST_OVERRIDES, "schedule.total_steps": 50,
                                                      "pipeline.methods": ["grpo"],
                                                      "pipeline.evaluate_base": False}.items()]
    env = base_env(tmp_path)
    env.pop("PREFECT_HOME")
    proc = subprocess.Popen([sys.executable, "-m", "flows.zppo_cli", "pipeline", "--profile", "tiny", "--output",
                             str(out), *sets], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    metrics = out / "train" / "builtin_tiny-qwen3.5-vl" / "grpo" / "seed0" / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while not (metrics.exists() and metrics.read_text().strip()) and proc.poll() is None:
        assert time.monotonic() < deadline, "the trainer never logged a step"
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert _run_processes(str(out / "train")), "no trainer process to stop"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 130 and took < EXIT_WITHIN_S, (proc.returncode, took, err[-3000:])
    line = f"zppo pipeline: interrupted: completed stages are cached and the last checkpoints kept in {out}; " \
           "run the same command again to resume."
    assert line in err.splitlines()
    assert "Traceback" not in err and "ConnectError" not in err
    time.sleep(1)
    assert _run_processes(str(out)) == []
    print(f"Ctrl-C to exit: {took:.1f} s")
