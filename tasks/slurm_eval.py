"""The evaluation stage under ``cluster.executor: slurm``: ``cluster.eval_jobs`` one-node jobs per
model, each running one pinned ``eval.worker`` per GPU slot on its share of every benchmark.

Worker ``w`` of job ``j`` (``W`` workers per job, ``J`` jobs) generates items ``k, k + N, ...``
with ``k = j * W + w`` and ``N = J * W`` (:func:`global_shards`), appending to
``<out>/<benchmark>/partial.<k>of<N>.jsonl`` on the shared filesystem; the per-benchmark tasks on
the Prefect worker's host then find every item done and only merge, score and log -- the numbers
are those of a local evaluation (the records are stamped with the same model fingerprint).

When evaluation needs a served judge whose URL is a loopback address, each job starts ``vllm
serve`` on the node's last ``serve_gpus_per_node`` GPUs (bound to the node's address), hands its
URL to the workers (``--set model.judge_url=...``) and stops it by PID when the job ends.

The stage side submits the jobs (or re-attaches: :class:`tasks.slurm.SlurmRun`, one record per
job under ``<out>/slurm/job<j>of<J>/``) and waits for all of them concurrently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.slurm_node import ServedModel, allocation_server, job_main, node_address
from zppo_core.config import Config
from zppo_core.placement import NodeSplit, split_node, visible_devices

WORKER_MODULE = "eval.worker"


@dataclass(frozen=True)
class EvalNodeSpec:
    """What one evaluation job runs (written by the stage to ``<job folder>/eval_spec.json``)."""

    config: str
    model: str
    benchmarks: tuple[str, ...]
    out: str
    python: str
    job_index: int
    jobs: int
    gpus_per_node: int
    workers_per_gpu: int
    serve_gpus: int
    server_port: int
    served: ServedModel | None = None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> "EvalNodeSpec":
        raw = json.loads(path.read_text())
        return cls(**{**raw, "served": ServedModel.from_json(raw.get("served")),
                      "benchmarks": tuple(raw["benchmarks"])})


@dataclass(frozen=True)
class WorkerLaunch:
    """One ``eval.worker`` of a job: its global shard and its device pinning ("" = CPU)."""

    shard: int
    shards: int
    device: str


def global_shards(job_index: int, jobs: int, devices: tuple[str, ...], workers_per_gpu: int) -> list[WorkerLaunch]:
    """The workers of job ``job_index`` of ``jobs`` over the node's training ``devices`` (mask
    entries): GPU-major round robin, ``workers_per_gpu`` per device, one CPU worker when there are
    none. Shards are global: ``job_index * W + w`` of ``jobs * W`` (``W`` workers per job), so the
    jobs together cover every item exactly once.

    >>> [(w.shard, w.shards, w.device) for w in global_shards(1, 2, ("4", "5"), 1)]
    [(2, 4, '4'), (3, 4, '5')]
    """
    if not 0 <= job_index < jobs:
        raise ValueError(f"evaluation job {job_index} of {jobs}")
    if workers_per_gpu < 1:
        raise ValueError(f"pipeline.eval_workers_per_gpu must be >= 1, got {workers_per_gpu}")
    slots = [d for _ in range(workers_per_gpu) for d in devices] or [""]
    per_job = len(slots)
    return [WorkerLaunch(job_index * per_job + w, jobs * per_job, d) for w, d in enumerate(slots)]


def worker_command(spec: EvalNodeSpec, launch: WorkerLaunch, judge_url: str) -> list[str]:
    cmd = [spec.python, "-m", WORKER_MODULE, "--config", spec.config, "--model", spec.model,
           "--benchmarks", ",".join(spec.benchmarks), "--out", spec.out,
           "--shard", f"{launch.shard}/{launch.shards}", "--gpu-share", str(spec.workers_per_gpu)]
    if spec.served and judge_url:
        for role in spec.served.roles:
            cmd += ["--set", f"model.{role}_url={judge_url}"]
    return cmd


def run_eval_node(spec: EvalNodeSpec, env: dict[str, str]) -> int:
    """This job's workers (one per GPU slot) next to the judge it serves, if any; returns the
    first non-zero worker exit code (0 when all finished)."""
    node = env.get("SLURMD_NODENAME", "node")
    addr = node_address(node)
    split: NodeSplit = split_node(visible_devices(env, spec.gpus_per_node), spec.serve_gpus if spec.served else 0)
    launches = global_shards(spec.job_index, spec.jobs, split.train, spec.workers_per_gpu)
    log_dir = Path(spec.out) / "servers"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"zppo-eval {node}: job {spec.job_index + 1}/{spec.jobs}, shards "
          f"{','.join(str(w.shard) for w in launches)} of {launches[0].shards}", flush=True)
    with allocation_server(spec.served, True, addr, spec.server_port, split, addr, log_dir, node) as url:
        procs = []
        for w in launches:
            wenv = dict(env)
            if w.device:
                wenv["CUDA_VISIBLE_DEVICES"] = w.device
            procs.append(subprocess.Popen(worker_command(spec, w, url), env=wenv))
        codes = [p.wait() for p in procs]
    return next((c for c in codes if c != 0), 0)


# -- the stage side (the Prefect worker's host) ---------------------------------------------


def eval_specs(conf: Config, cfg_path: Path, model: str, benchmarks: list[str], out: Path) -> list[EvalNodeSpec]:
    """One spec per evaluation job of ``model`` (``cluster.eval_jobs``)."""
    from tasks.slurm_train import served_model

    c = conf.cluster
    return [EvalNodeSpec(config=str(cfg_path.resolve()), model=model, benchmarks=tuple(benchmarks),
                         out=str(out.resolve()), python=c.python or sys.executable, job_index=j, jobs=c.eval_jobs,
                         gpus_per_node=c.gpus_per_node, workers_per_gpu=conf.pipeline.eval_workers_per_gpu,
                         serve_gpus=c.serve_gpus_per_node, server_port=c.server_port,
                         served=served_model(conf, "eval"))
            for j in range(c.eval_jobs)]


def run_eval_jobs(conf: Config, cfg_path: Path, model: str, benchmarks: list[str], out: Path, env: dict[str, str],
                  tag: str, on_line: Callable[[str], None], workdir: str) -> list[str]:
    """Submit (or attach to) every evaluation job of ``model`` and wait for all of them at once;
    returns their job ids. Raises :class:`tasks.slurm.SlurmJobError` (the first failure, one
    line) after every job has ended."""
    from tasks.slurm import SlurmRun
    from tasks.slurm_train import batch_job, job_name

    c = conf.cluster
    runs = []
    for spec in eval_specs(conf, cfg_path, model, benchmarks, out):
        folder = out / "slurm" / f"job{spec.job_index}of{spec.jobs}"
        folder.mkdir(parents=True, exist_ok=True)
        spec_path = folder / "eval_spec.json"
        spec.save(spec_path)
        cmd = [spec.python, "-m", "tasks.slurm_eval", str(spec_path)]
        job = batch_job(conf, job_name("eval", f"{tag}-{spec.job_index}"), cmd, 1, c.gpus_per_node, env=env,
                        time_limit=c.eval_time_limit)
        runs.append(SlurmRun(folder=folder, job=job, workdir=workdir, env=env, poll_s=c.poll_interval_s,
                             max_resubmits=c.max_resubmits,
                             on_line=lambda line, j=spec.job_index: on_line(f"[eval job {j}] {line}")))
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = [pool.submit(r.run) for r in runs]
        errors = [f.exception() for f in futures]
    bad = next((e for e in errors if e is not None), None)
    if bad is not None:
        raise bad
    return [f.result().job_id for f in futures]


def main(argv: list[str] | None = None) -> int:
    return job_main("python -m tasks.slurm_eval", "eval_spec.json written by the evaluation stage",
                    lambda spec, env: run_eval_node(EvalNodeSpec.load(spec), env), argv)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["EvalNodeSpec", "WorkerLaunch", "eval_specs", "global_shards", "run_eval_jobs", "run_eval_node",
           "worker_command"]
