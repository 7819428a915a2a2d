"""``zppo pipeline --dry-run``: what a run would do, from the resolved config alone.

Nothing starts (no Prefect, no MLflow, no folder): the stages, every training and evaluation job
with where it runs and on how many GPUs, the servers the stages start, and the work in steps and
rollouts. Time is not estimated: it depends on the hardware, and the progress lines print an ETA
from the measured pace once a stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zppo_core.config import Config, replace


@dataclass(frozen=True)
class Job:
    """One training or evaluation job of the run."""

    kind: str  # "train" | "eval"
    lane: str  # "<student>/<method>/s<seed>" or "<student>/base"
    where: str  # "this host" | "slurm: 8 nodes x 8 GPUs (6 train + 2 serve)" ...
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The dry run's answer (:func:`build_plan`)."""

    executor: str
    stages: tuple[str, ...]
    jobs: tuple[Job, ...]
    steps_per_training: int
    rollouts_per_step: int
    benchmarks: tuple[str, ...]
    in_flight: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def trainings(self) -> int:
        return sum(j.kind == "train" for j in self.jobs)


def _train_where(cfg: Config) -> str:
    c = cfg.cluster
    if c.executor == "slurm" and c.gpus_per_node:
        return (f"slurm: one job of {c.nodes} node(s) x {c.gpus_per_node} GPUs "
                f"({c.gpus_per_node - c.serve_gpus_per_node} train + {c.serve_gpus_per_node} serve)")
    if c.executor == "slurm":
        return f"slurm: one job of {c.nodes} CPU node(s), one rank each"
    served = sorted(set(cfg.model.teacher_gpus) | set(cfg.model.judge_gpus))
    return f"this host ({cfg.pipeline.launcher}; servers on GPUs {served or '-'})"


def _eval_where(cfg: Config) -> str:
    c = cfg.cluster
    if c.executor == "slurm":
        if not c.gpus_per_node:
            return f"slurm: {c.eval_jobs} one-node CPU job(s), one worker each"
        return (f"slurm: {c.eval_jobs} one-node job(s) x {c.gpus_per_node} GPUs, "
                f"{cfg.pipeline.eval_workers_per_gpu} worker(s) per GPU")
    return f"this host ({cfg.pipeline.eval_concurrency} benchmark(s) at once; GPU workers on {cfg.pipeline.eval_gpus or 'all visible GPUs'})"


def _servers(cfg: Config, stage: str) -> tuple[str, ...]:
    from tasks.servers import needed_roles

    where = "inside the job" if cfg.cluster.executor == "slurm" else "on this host when nothing answers"
    return tuple(f"{r}: {getattr(cfg.model, r)} at {getattr(cfg.model, f'{r}_url')} ({where})"
                 for r in needed_roles(cfg, stage))


def build_plan(cfg: Config, sweep: dict[str, Any]) -> Plan:
    """The plan of ``cfg`` over ``sweep`` (``students``, ``methods``, ``seeds``, ``benchmarks``)."""
    jobs: list[Job] = []
    for student in sweep["students"]:
        scfg = replace(cfg, **{"model.student": student})
        if cfg.pipeline.evaluate_base:
            jobs.append(Job("eval", f"{student}/base", _eval_where(scfg), _servers(scfg, "eval")))
        for method in sweep["methods"]:
            mcfg = replace(scfg, **{"zppo.method": method})
            for seed in sweep["seeds"]:
                lane = f"{student}/{method}/s{seed}"
                jobs.append(Job("train", lane, _train_where(mcfg), _servers(mcfg, "train")))
                jobs.append(Job("eval", lane, _eval_where(mcfg), _servers(mcfg, "eval")))
    s, r = cfg.schedule, cfg.rollout
    notes = []
    if cfg.pipeline.preflight:
        notes.append("the preflight (zppo doctor's checks) runs first and stops the run on a missing piece")
    return Plan(executor=cfg.cluster.executor,
                stages=("preflight", "curate", "train + evaluate per (student, method, seed)", "report"),
                jobs=tuple(jobs), steps_per_training=s.total_steps,
                rollouts_per_step=s.rollout_batch * r.group_size, benchmarks=tuple(sweep["benchmarks"]),
                in_flight=cfg.cluster.max_jobs_in_flight if cfg.cluster.executor == "slurm" else 1,
                notes=tuple(notes))


def format_plan(plan: Plan) -> str:
    lines = [f"stages: {' -> '.join(plan.stages)}",
             f"executor: {plan.executor} ({plan.in_flight} run(s) of the sweep at once)",
             f"trainings: {plan.trainings} x {plan.steps_per_training} steps "
             f"({plan.rollouts_per_step} plain rollouts per step, more on hard questions) = "
             f"{plan.trainings * plan.steps_per_training} steps in all",
             f"benchmarks per model: {len(plan.benchmarks)} ({', '.join(plan.benchmarks)})", "jobs:"]
    for j in plan.jobs:
        lines.append(f"  {j.kind:<5} {j.lane:<40} {j.where}")
        lines += [f"        serves {s}" for s in j.servers]
    lines += [f"note: {n}" for n in plan.notes]
    lines.append("time: not estimated here (hardware-dependent); each stage prints an ETA from its measured pace")
    return "\n".join(lines)


__all__ = ["Job", "Plan", "build_plan", "format_plan"]
