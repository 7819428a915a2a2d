"""Helpers of the pipeline tests: server processes stopped by PID, the shrunken tiny profile,
running `zppo pipeline` as a user does, Prefect REST queries."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
#: the tiny profile made smaller still: 2 training steps, 2 offline benchmarks of a few items
TEST_OVERRIDES: dict = {
    "schedule.total_steps": 2,
    "schedule.checkpoint_every": 1,
    "schedule.rollout_batch": 4,
    "rollout.group_size": 2,
    "rollout.student.max_new_tokens": 24,
    "rollout.teacher.max_new_tokens": 24,
    "eval.sampling.max_new_tokens": 24,
    "curation.synthetic": True,
    "curation.synthetic_scale": 200,
    "eval.benchmarks": ["OfflineLLM", "OfflineVLM"],
    "eval.max_items": 4,
    "pipeline.retry_delay_s": 1.0,
    "pipeline.poll_interval_s": 0.5,
}
SERVER_START_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "TOKENIZERS_PARALLELISM": "false",
                "PREFECT_HOME": str(tmp / "prefect_home"), "PYTHONPATH": str(REPO)})
    env.pop("PREFECT_API_URL", None)
    return env


class Server:
    """A server subprocess in its own process group, stopped by its PID."""

    def __init__(self, cmd: list[str], env: dict[str, str], health: str, log: Path):
        self.log = log
        self._fh = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=self._fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + SERVER_START_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd[0:3]} exited early:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(health, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"{cmd[0:3]} not healthy after {SERVER_START_S}s:\n{log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._fh.close()


def run_pipeline(out: Path, env: dict[str, str], *extra: str, overrides: dict | None = None,
                 timeout: int = 900) -> subprocess.CompletedProcess:
    """``zppo pipeline --profile tiny`` with the test overrides, as a user runs it."""
    sets = [f"--set={k}={json.dumps(v)}" for k, v in {**TEST_OVERRIDES, **(overrides or {})}.items()]
    cmd = [sys.executable, "-m", "flows.zppo_cli", "pipeline", "--profile", "tiny", "--output", str(out), *sets, *extra]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def prefect_task_runs(api: str, flow_run_id: str) -> list[dict]:
    body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200}
    r = httpx.post(f"{api}/task_runs/filter", json=body, timeout=30)
    r.raise_for_status()
    return r.json()
