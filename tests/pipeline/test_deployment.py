"""Deploy ``zppo-full/tiny`` from the repository's prefect.yaml to a real Prefect server, start a
process worker, trigger the deployment with ``prefect deployment run`` and watch it complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from pipeline_helpers import REPO, TEST_OVERRIDES, VENV_BIN, base_env

pytestmark = [pytest.mark.slow, pytest.mark.server]

POOL = "zppo-pool"  # the pool named in prefect.yaml
WATCH_S = 900


def _prefect(args: list[str], env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "prefect"), *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_deploy_and_run_tiny_deployment(tmp_path, prefect_server):
    env = {**base_env(tmp_path), "PREFECT_API_URL": prefect_server}
    made = _prefect(["work-pool", "create", POOL, "--type", "process"], env)
    assert made.returncode == 0 or "already exists" in made.stdout + made.stderr, made.stdout + made.stderr
    dep = _prefect(["--no-prompt", "deploy", "--all"], env, timeout=300)
    assert dep.returncode == 0, dep.stdout[-3000:] + dep.stderr[-3000:]
    assert all(f"zppo-full/{d}" in dep.stdout for d in ("tiny", "qwen-sweep", "miniature")), dep.stdout[-2000:]

    wlog = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([str(VENV_BIN / "prefect"), "worker", "start", "--pool", POOL, "--limit", "1"],
                              env=env, cwd=REPO, stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        overrides = {**TEST_OVERRIDES, "schedule.total_steps": 1, "pipeline.evaluate_base": False,
                     "eval.benchmarks": ["OfflineLLM"], "eval.max_items": 2}
        params = {"methods": ["grpo"], "output_dir": str(tmp_path / "run"), "overrides": overrides}
        run = _prefect(["deployment", "run", "zppo-full/tiny", "--params", json.dumps(params), "--watch",
                        "--watch-timeout", str(WATCH_S)], env, timeout=WATCH_S + 60)
        text = run.stdout + run.stderr
        assert run.returncode == 0, text[-3000:] + (tmp_path / "worker.log").read_text()[-5000:]
        assert "Completed" in text
        assert (tmp_path / "run" / "report" / "results.json").exists()
        _paper_sweep_stops_at_preflight(tmp_path, env, prefect_server)
    finally:
        # the process worker exits on SIGINT (not reliably on SIGTERM); stopped by its PID
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGINT)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        wlog.close()


def _paper_sweep_stops_at_preflight(tmp_path, env: dict, api: str) -> None:
    """The paper's sweep on a host without its 8 GPUs fails in the preflight task, before
    curation, and ``--watch`` / the flow run's final state message name the GPUs in one line."""
    import httpx

    params = {"output_dir": str(tmp_path / "paper")}
    run = _prefect(["deployment", "run", "zppo-full/qwen-sweep", "--params", json.dumps(params), "--watch",
                    "--watch-timeout", "600"], env, timeout=660)
    text = " ".join((run.stdout + run.stderr).split())  # the CLI wraps long lines
    assert run.returncode == 1, text[-3000:]
    assert "zppo.preflight.failed * preflight failed: gpus: 8 training processes per machine" in text, text[-3000:]
    body = {"deployments": {"name": {"any_": ["qwen-sweep"]}}, "limit": 5}
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()
    state = runs[0]["state"]
    assert state["type"] == "FAILED" and state["message"].startswith("preflight failed: gpus: ")
    assert "\n" not in state["message"]
    assert not (tmp_path / "paper" / "curation").exists()  # stopped before any expensive stage
