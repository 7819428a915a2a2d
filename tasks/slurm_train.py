"""The training stage under ``cluster.executor: slurm``: one job of ``cluster.nodes`` nodes per
(student, method, seed), one launcher per node (:mod:`tasks.slurm_node`), FSDP2 across them.

The stage (on the Prefect worker's host) writes ``node_spec.json`` into the training folder,
submits or re-attaches (:class:`tasks.slurm.SlurmRun`), streams the job's log to the stage log,
and keeps reading ``metrics.jsonl`` from the shared folder into MLflow while the job runs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tasks.slurm import SlurmRun
from tasks.slurm_node import NodeSpec, ServedModel
from tasks.slurm_script import BatchJob, JobInfo

#: a served model's URL on one of these hosts means "serve it inside the allocation"
LOOPBACK = ("127.0.0.1", "localhost")


def job_name(kind: str, tag: str) -> str:
    """``zppo-train-<tag>`` with every character Slurm or a shell might mind replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"zppo-{kind}-{tag}")[:120]


def served_model(conf: Any, stage: str = "train") -> ServedModel | None:
    """The model the job serves itself: the roles ``stage`` needs over HTTP whose URL is a loopback
    address (a URL naming another host is a server of its own, used as is). One model per job."""
    from tasks.servers import needed_roles

    roles = [r for r in needed_roles(conf, stage) if urlparse(getattr(conf.model, f"{r}_url")).hostname in LOOPBACK]
    if not roles:
        return None
    models = {getattr(conf.model, r) for r in roles}
    if len(models) > 1:
        raise ValueError(f"cluster.executor=slurm serves one model per job; teacher and judge differ: {sorted(models)}")
    m = conf.model
    return ServedModel(model=models.pop(), roles=tuple(roles), python=m.server_python, dtype=m.dtype.replace(
        "float32", "bfloat16"), max_model_len=m.server_max_model_len, startup_timeout_s=m.server_startup_timeout_s)


def node_spec(conf: Any, cfg_path: Path, out: Path, run_id: str, accelerate_config: str) -> NodeSpec:
    c = conf.cluster
    return NodeSpec(config=str(cfg_path.resolve()), output=str(out.resolve()), run_id=run_id,
                    python=c.python or sys.executable, accelerate_config=accelerate_config, nodes=c.nodes,
                    gpus_per_node=c.gpus_per_node, serve_gpus=c.serve_gpus_per_node, serve_on=c.serve_on,
                    server_port=c.server_port, rdzv_port=c.rdzv_port, served=served_model(conf))


def batch_job(conf: Any, name: str, node_command: list[str], nodes: int, gpus_per_node: int,
              env: dict[str, str] | None = None, time_limit: str = "") -> BatchJob:
    """The job's resources from ``cluster``: partition, account, qos, time (``time_limit`` or the
    training jobs' ``cluster.time_limit``), extra lines, set-up."""
    c = conf.cluster
    return BatchJob(name=name, nodes=nodes, node_command=tuple(node_command), gpus_per_node=gpus_per_node,
                    partition=c.partition, account=c.account, qos=c.qos, time_limit=time_limit or c.time_limit,
                    extra_lines=tuple(c.sbatch_lines), setup=c.setup, env=dict(env or {"PYTHONUNBUFFERED": "1"}))


def run_training_job(conf: Any, cfg_path: Path, out: Path, run_id: str, accelerate_config: str, env: dict[str, str],
                     tag: str, on_line: Callable[[str], None], on_tick: Callable[[], None],
                     on_submit: Callable[[str], None], workdir: str,
                     on_attach: Callable[[JobInfo], None] = lambda info: None) -> tuple[JobInfo, list[str]]:
    """Submit (or attach to) the stage's job and wait for it; returns its final info and log tail.
    Raises :class:`tasks.slurm.SlurmJobError` (one line) when it did not complete."""
    spec = node_spec(conf, cfg_path, out, run_id, accelerate_config)
    spec_path = out / "node_spec.json"
    spec.save(spec_path)
    cmd = [spec.python, "-m", "tasks.slurm_node", str(spec_path)]
    c = conf.cluster
    run = SlurmRun(folder=out, job=batch_job(conf, job_name("train", tag), cmd, c.nodes, c.gpus_per_node),
                   workdir=workdir, env=env, poll_s=c.poll_interval_s, max_resubmits=c.max_resubmits,
                   on_line=on_line, on_tick=on_tick, on_submit=on_submit, on_attach=on_attach)
    info = run.run()
    return info, run.tail


__all__ = ["LOOPBACK", "batch_job", "job_name", "node_spec", "run_training_job", "served_model"]
