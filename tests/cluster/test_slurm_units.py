"""The Slurm executor's pure parts with exact expectations: the GPU split through a node's mask,
the batch script (a hostile path stays an argument), the parsers of scontrol / sacct / jobcomp,
the node launcher's command, the re-attach / resubmit policy, and the cluster config."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tasks import slurm
from tasks.slurm import JobRecord, SlurmJobError, SlurmRun, failure_line
from tasks.slurm_node import NodeSpec, ServedModel, launcher_command, serves_here
from tasks.slurm_script import (BatchJob, JobInfo, parse_jobcomp, parse_jobcomp_loc, parse_node_addr, parse_sacct,
                                parse_scontrol_job, parse_submitted, render_batch_script, sbatch_argv)
from zppo_core.config import ConfigError, load_config, replace
from zppo_core.placement import map_through_mask, ranks_per_node, split_node, visible_devices

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_split_maps_through_the_nodes_mask():
    mask = visible_devices({"CUDA_VISIBLE_DEVICES": "4,5,6,7"}, 4)
    assert mask == ("4", "5", "6", "7")
    s = split_node(mask, 1)
    assert (s.train_mask, s.serve_mask) == ("4,5,6", "7")
    paper = split_node(visible_devices({}, 8), 2)  # no mask: 0..7; the paper's 6 + 2
    assert (paper.train_mask, paper.serve_mask) == ("0,1,2,3,4,5", "6,7")
    uuids = visible_devices({"CUDA_VISIBLE_DEVICES": "GPU-a, GPU-b"}, 2)
    assert split_node(uuids, 1).serve == ("GPU-b",)
    assert map_through_mask(("4", "5", "6", "7"), [0, 2]) == "4,6"
    assert split_node((), 0).train == () and ranks_per_node(0, 0) == 1 and ranks_per_node(8, 2) == 6
    with pytest.raises(ValueError, match="names 2 device"):
        visible_devices({"CUDA_VISIBLE_DEVICES": "0,1"}, 4)
    with pytest.raises(ValueError, match="leave none"):
        split_node(("0", "1"), 2)
    with pytest.raises(ValueError, match=r"\[4\]"):
        map_through_mask(("4", "5"), [4])


def _job(tmp: Path, name: str = "zppo-train-x") -> BatchJob:
    return BatchJob(name=name, nodes=2, node_command=("python", "-m", "tasks.slurm_node", str(tmp / "spec.json")),
                    partition="debug", time_limit="00:30:00", extra_lines=("--constraint=h100",),
                    setup="true  # cluster.setup", env={"PYTHONUNBUFFERED": "1"})


def test_batch_script_directives_and_one_launcher_per_node(tmp_path):
    s = render_batch_script(_job(tmp_path))
    assert s.splitlines()[:7] == ["#!/bin/bash", "#SBATCH --job-name=zppo-train-x", "#SBATCH --nodes=2",
                                  "#SBATCH --ntasks-per-node=1", "#SBATCH --partition=debug",
                                  "#SBATCH --time=00:30:00", "#SBATCH --constraint=h100"]
    assert s.rstrip().splitlines()[-1] == (f"exec srun --nodes 2 --ntasks-per-node=1 --kill-on-bad-exit=1 python -m "
                                           f"tasks.slurm_node {tmp_path / 'spec.json'}")
    assert sbatch_argv("/r/job.sbatch", "/r/slurm-%j.log", "/repo") == [
        "sbatch", "--parsable", "--output=/r/slurm-%j.log", "--chdir=/repo", "/r/job.sbatch"]
    with pytest.raises(ValueError, match="cluster.partition"):
        render_batch_script(BatchJob("n", 1, ("x",), partition="debug\n#SBATCH --uid=0"))
    with pytest.raises(ValueError, match="spans lines"):
        render_batch_script(BatchJob("n", 1, ("x",), extra_lines=("--x\nrm -rf /",)))


def test_hostile_run_folder_is_an_argument_never_a_command(tmp_path):
    """A run folder named ``'; touch X; '`` reaches srun as one argument; nothing is executed."""
    hostile = tmp_path / "'; touch X; '" / "run $(touch Y)"
    hostile.mkdir(parents=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "srun"
    fake.write_text('#!/bin/bash\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$ARGS_OUT"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    script = tmp_path / "job.sbatch"
    script.write_text(render_batch_script(_job(hostile)))
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", ARGS_OUT=str(tmp_path / "args.txt"),
               SLURM_JOB_ID="1", SLURM_JOB_NODELIST="n[1-2]", SLURM_NNODES="2")
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "args.txt").read_text().splitlines()
    assert args[-1] == str(hostile / "spec.json")
    assert not list(tmp_path.rglob("X")) and not list(tmp_path.rglob("Y"))


SCONTROL = ("JobId=7 JobName=zppo-train-x UserId=root(0) JobState=RUNNING Reason=None ExitCode=0:0 "
            "NodeList=n[1-2] BatchHost=n1 NumNodes=2 NumCPUs=2 WorkDir=/shared/my runs StdOut=/x/slurm-7.log")
JOBCOMP = ("JobId=7 UserId=root(0) Name=a JobState=RUNNING NodeList=n[1-2] NodeCnt=2 ExitCode=0:0\n"
           "JobId=7 UserId=root(0) Name=a JobState=CANCELLED Partition=debug NodeList=n[1-2] NodeCnt=2 ProcCnt=2 "
           "WorkDir=/w ReservationName= DerivedExitCode=0:0 ExitCode=0:15\n")


def test_parsers_of_what_slurm_answers():
    assert parse_scontrol_job(SCONTROL, "7") == JobInfo("7", "RUNNING", "0:0", "n[1-2]", 2, "None")
    assert parse_scontrol_job("slurm_load_jobs error: Invalid job id specified", "7") is None
    assert parse_sacct("7|CANCELLED by 0|0:15|n[1-2]|2\n", "7") == JobInfo("7", "CANCELLED", "0:15", "n[1-2]", 2)
    assert parse_jobcomp(JOBCOMP, "7") == JobInfo("7", "CANCELLED", "0:15", "n[1-2]", 2)
    assert parse_jobcomp(JOBCOMP, "8") is None
    assert parse_node_addr("NodeName=n1 Arch=x86_64 CoresPerSocket=1  NodeAddr=10.0.0.5 NodeHostName=gpu01") == "10.0.0.5"
    assert parse_jobcomp_loc("JobCompLoc              = /s/jobcomp.txt\nJobCompType             = jobcomp/filetxt\n") == \
        "/s/jobcomp.txt"
    assert parse_jobcomp_loc("JobCompLoc = /x\nJobCompType = jobcomp/none\n") == ""
    assert parse_submitted("42\n") == "42" and parse_submitted("42;zt\n") == "42"
    with pytest.raises(ValueError, match="not a job id"):
        parse_submitted("sbatch: error: Batch job submission failed")


def _spec(**kw) -> NodeSpec:
    base = dict(config="/s/config.yaml", output="/s/out", run_id="r1", python="py", accelerate_config="/a.yaml",
                nodes=8, gpus_per_node=8, serve_gpus=2, serve_on="every", server_port=8000, rdzv_port=29500)
    return NodeSpec(**{**base, **kw})


def test_node_launcher_meets_at_the_first_nodes_address(tmp_path):
    served = ServedModel("Qwen/Qwen3.5-27B-FP8", ("teacher", "judge"), "", 32768, "bfloat16", 1800.0)
    cmd = launcher_command(_spec(served=served), 3, "10.0.0.1", "http://10.0.0.4:8000/v1")
    assert cmd[:18] == ["py", "-m", "accelerate.commands.launch", "--config_file", "/a.yaml", "--num_machines", "8",
                        "--num_processes", "48", "--machine_rank", "3", "--main_process_ip", "10.0.0.1",
                        "--main_process_port", "29500", "--rdzv_backend", "static", "--same_network"]
    assert cmd[-4:] == ["--set", "model.teacher_url=http://10.0.0.4:8000/v1", "--set",
                        "model.judge_url=http://10.0.0.4:8000/v1"]
    first = _spec(served=served, serve_on="first")
    assert [serves_here(first, r) for r in (0, 1)] == [True, False]
    assert serves_here(_spec(), 0) is False  # nothing to serve
    _spec(served=served).save(tmp_path / "s.json")
    assert NodeSpec.load(tmp_path / "s.json") == _spec(served=served)


def _fake_run(tmp_path, states: dict[str, list[str]], submitted: list[str]) -> SlurmRun:
    """A SlurmRun whose sbatch hands out ids 11, 12, ... and whose jobs go through ``states``."""
    run = SlurmRun(folder=tmp_path, job=BatchJob("n", 2, ("x",)), workdir=str(tmp_path), env={}, poll_s=0.0,
                   max_resubmits=1, on_line=lambda line: None)

    def submit(record: JobRecord) -> str:
        job_id = str(11 + len(submitted))
        submitted.append(job_id)
        record.job_id = job_id
        record.jobs.append(job_id)
        record.save(tmp_path)
        return job_id

    run.submit = submit  # type: ignore[method-assign]
    return run


def test_retry_attaches_to_a_running_job_and_resubmits_an_ended_one(tmp_path, monkeypatch):
    states = {"5": ["RUNNING", "RUNNING", "COMPLETED"]}

    def info(job_id: str) -> JobInfo:
        seq = states.setdefault(job_id, ["COMPLETED"])
        return JobInfo(job_id, seq.pop(0) if len(seq) > 1 else seq[0], "0:0")

    monkeypatch.setattr(slurm, "job_info", info)
    JobRecord("5", ["5"]).save(tmp_path)
    submitted: list[str] = []
    run = _fake_run(tmp_path, states, submitted)
    assert run.run().state == "COMPLETED" and submitted == [] and run.history == [("5", True)]

    states["5"] = ["CANCELLED"]  # scancel'ed before the retry: a new job, the record keeps both
    run = _fake_run(tmp_path, states, submitted)
    assert run.run().job_id == "11" and JobRecord.load(tmp_path).jobs == ["5", "11"]

    states["12"], states["13"] = ["TIMEOUT"], ["TIMEOUT"]  # time limit: resubmitted once, then one line
    JobRecord("", []).save(tmp_path)
    run = _fake_run(tmp_path, states, submitted)
    with pytest.raises(SlurmJobError, match=r"^slurm job 13 TIMEOUT \(exit 0:0\): no output"):
        run.run()
    assert [j for j, _ in run.history] == ["12", "13"]


def test_failure_is_one_line_with_state_exit_code_and_log_tail():
    line = failure_line(JobInfo("9", "FAILED", "1:0", "n[1-2]"), ["step 1", "", "RuntimeError: boom"], Path("/s/l.log"))
    assert line == "slurm job 9 FAILED (exit 1:0) on n[1-2]: step 1 | RuntimeError: boom (log: /s/l.log)"
    assert "\n" not in line


def test_cluster_config_is_typed_and_checked():
    paper = load_config(ROOT / "configs" / "paper.yaml")
    c = paper.cluster
    assert (c.executor, c.nodes, c.gpus_per_node, c.serve_gpus_per_node, c.serve_on) == ("local", 8, 8, 2, "every")
    with pytest.raises(ConfigError, match="cluster.executor"):
        replace(paper, **{"cluster.executor": "ray"})
    with pytest.raises(ConfigError, match="leaves none"):
        replace(paper, **{"cluster.serve_gpus_per_node": 8})
    with pytest.raises(ConfigError, match="pipeline.launcher: accelerate"):
        replace(paper, **{"cluster.executor": "slurm", "pipeline.launcher": "python"})


def test_slurm_local_profile_is_the_tiny_profile_on_the_test_cluster():
    tiny = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    local = yaml.safe_load((ROOT / "configs" / "slurm-local.yaml").read_text())
    assert local["cluster"]["executor"] == "slurm" and local["cluster"]["nodes"] == 2
    for key in ("name", "output_dir", "cluster"):
        local.pop(key), tiny.pop(key, None)
    pipe_l, pipe_t = local.pop("pipeline"), tiny.pop("pipeline")
    assert local == tiny
    assert {k: v for k, v in pipe_l.items() if k not in ("launcher", "accelerate_config")} == \
        {k: v for k, v in pipe_t.items() if k != "launcher"}
    assert load_config(ROOT / "configs" / "slurm-local.yaml").cluster.gpus_per_node == 0


def test_doctor_checks_the_cluster_before_anything_is_submitted(tmp_path):
    from zppo_core.cluster_checks import ClusterProbe, cluster_checks

    conf = replace(load_config(ROOT / "configs" / "slurm-local.yaml"), **{"tracking.tracking_uri": "http://t:5000"})
    calls: list[list[str]] = []

    def run(cmd: list[str]) -> tuple[int, str]:
        calls.append(cmd)
        return 0, "debug*\ngpu\n"

    ok = ClusterProbe(which=lambda t: f"/usr/bin/{t}", run=run, health=lambda url: url == "http://t:5000")
    assert cluster_checks(conf, tmp_path, ok) == [
        ("slurm", True, "partitions ['debug', 'gpu']; jobs of 2 node(s)"),
        ("shared", True, f"{tmp_path.resolve()} writable (must be mounted on every node)"),
        ("tracking", True, "http://t:5000 answers /health")]
    assert calls == [["sinfo", "-h", "-o", "%P"]]
    no_slurm = ClusterProbe(which=lambda t: None if t == "sbatch" else t, run=run, health=lambda url: False)
    rows = cluster_checks(replace(conf, **{"cluster.partition": "a100"}), tmp_path, no_slurm)
    assert rows[0] == ("slurm", False, "cluster.executor=slurm but sbatch not on PATH (run on a login node)")
    assert rows[2] == ("tracking", False, "http://t:5000 does not answer /health")
    wrong = ClusterProbe(which=lambda t: t, run=run, health=lambda url: True)
    assert cluster_checks(replace(conf, **{"cluster.partition": "a100"}), tmp_path, wrong)[0] == (
        "slurm", False, "cluster.partition='a100' not among the partitions ['debug', 'gpu']")


def test_eval_jobs_cover_every_item_once_each_worker_pinned():
    from tasks.slurm_eval import global_shards

    two_jobs = [global_shards(j, 2, ("4", "5"), 1) for j in (0, 1)]
    assert [[(w.shard, w.shards, w.device) for w in ws] for ws in two_jobs] == \
        [[(0, 4, "4"), (1, 4, "5")], [(2, 4, "4"), (3, 4, "5")]]
    shared = global_shards(0, 1, ("0", "1"), 2)  # two engines per GPU, GPU-major
    assert [(w.shard, w.device) for w in shared] == [(0, "0"), (1, "1"), (2, "0"), (3, "1")]
    cpu = [global_shards(j, 3, (), 1) for j in range(3)]  # CPU nodes: one unpinned worker per job
    assert [(w.shard, w.shards, w.device) for ws in cpu for w in ws] == [(0, 3, ""), (1, 3, ""), (2, 3, "")]
    with pytest.raises(ValueError, match="job 2 of 2"):
        global_shards(2, 2, (), 1)


def test_eval_job_serves_its_own_judge_and_hands_workers_its_url(tmp_path):
    from tasks.slurm_eval import EvalNodeSpec, WorkerLaunch, eval_specs, worker_command

    paper = load_config(ROOT / "configs" / "paper.yaml", {
        "cluster.executor": "slurm", "cluster.eval_jobs": 2, "model.judge_backend": "openai",
        "model.judge_url": "http://127.0.0.1:8000/v1", "eval.use_judge": True})
    specs = eval_specs(paper, tmp_path / "c.yaml", "/m", ["AI2D", "MMMU"], tmp_path)
    assert [(s.job_index, s.jobs, s.gpus_per_node, s.serve_gpus) for s in specs] == [(0, 2, 8, 2), (1, 2, 8, 2)]
    assert specs[0].served is not None and specs[0].served.roles == ("judge",)
    cmd = worker_command(specs[1], WorkerLaunch(7, 12, "5"), "http://10.0.0.9:8000/v1")
    assert cmd[1:] == ["-m", "eval.worker", "--config", str((tmp_path / "c.yaml").resolve()), "--model", "/m",
                       "--benchmarks", "AI2D,MMMU", "--out", str(tmp_path.resolve()), "--shard", "7/12",
                       "--gpu-share", "1", "--set", "model.judge_url=http://10.0.0.9:8000/v1"]
    specs[1].save(tmp_path / "e.json")
    assert EvalNodeSpec.load(tmp_path / "e.json") == specs[1]
    no_judge = eval_specs(replace(paper, **{"eval.use_judge": False}), tmp_path / "c.yaml", "/m", ["AI2D"], tmp_path)
    assert no_judge[0].served is None and "--set" not in worker_command(no_judge[0], WorkerLaunch(0, 2, ""), "")


def test_sweep_lanes_run_concurrently_bounded_and_in_order():
    import contextvars
    import threading
    import time as _time

    from flows.zppo_full import run_lanes

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("flow-run")
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def lane(i: int):
        def go() -> tuple[int, str]:
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            _time.sleep(0.2)
            with lock:
                state["now"] -= 1
            return i, var.get()
        return go

    assert run_lanes([lane(i) for i in range(5)], 2) == [(i, "flow-run") for i in range(5)]
    assert state["peak"] == 2  # two at once, never three
    state["peak"] = 0
    assert run_lanes([lane(i) for i in range(3)], 1) == [(0, "flow-run"), (1, "flow-run"), (2, "flow-run")]
    assert state["peak"] == 1

    finished = []

    def boom() -> None:
        raise RuntimeError("lane 0 failed")

    def slow() -> int:
        _time.sleep(0.3)
        finished.append(1)
        return 1

    with pytest.raises(RuntimeError, match="lane 0 failed"):
        run_lanes([boom, slow], 2)
    assert finished == [1]  # the other lane ran to its end first
