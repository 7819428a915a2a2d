"""Where evaluation workers run: a pure plan of workers over GPUs, and each worker's pinning.

One worker process per (GPU, slot): ``workers_per_gpu`` workers share a GPU (each engine takes
``1 / workers_per_gpu`` of its memory). Worker ``w`` of ``n`` evaluates items ``w, w+n, ...`` of
every benchmark with ONE engine per model (:func:`eval.runner.evaluate_suite`), so every GPU gets
an even share of every benchmark. Without GPUs there is one worker and no pinning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Worker:
    """Evaluation worker ``index`` of ``count`` on ``gpu`` (node-local index; None = no GPU)."""

    index: int
    count: int
    gpu: int | None

    @property
    def shard(self) -> tuple[int, int]:
        return (self.index, self.count)

    def env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment pinning this worker to its GPU: this process's GPU ``gpu`` mapped through
        its own ``CUDA_VISIBLE_DEVICES`` (``environ``, default ``os.environ``), with its device
        order (PCI bus order, as nvidia-smi, when it sets none)."""
        if self.gpu is None:
            return {}
        from zppo_core.placement import device_env

        return device_env([self.gpu], os.environ if environ is None else environ)


def plan_workers(gpus: list[int], workers_per_gpu: int = 1) -> list[Worker]:
    """Workers over ``gpus``: GPU-major round robin (``[0, 1]`` x 2 -> GPUs 0, 1, 0, 1), so the
    first workers land on distinct GPUs. ``gpus == []``: one CPU worker."""
    if workers_per_gpu < 1:
        raise ValueError(f"pipeline.eval_workers_per_gpu must be >= 1, got {workers_per_gpu}")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"pipeline.eval_gpus lists a GPU twice: {gpus}")
    if not gpus:
        return [Worker(0, 1, None)]
    order = [g for _ in range(workers_per_gpu) for g in gpus]
    return [Worker(i, len(order), g) for i, g in enumerate(order)]


def available_gpus(configured: list[int], visible: int, reserved: list[int] = ()) -> list[int]:
    """The GPUs evaluation may use: ``configured`` when given, else all ``visible`` ones, minus
    ``reserved`` (GPUs serving the judge). Raises on a configured GPU that does not exist."""
    bad = [g for g in configured if not 0 <= g < visible]
    if bad:
        raise ValueError(f"pipeline.eval_gpus: {bad} not among the {visible} visible GPUs")
    pool = list(configured) if configured else list(range(visible))
    return [g for g in pool if g not in set(reserved)]


__all__ = ["Worker", "available_gpus", "plan_workers"]
