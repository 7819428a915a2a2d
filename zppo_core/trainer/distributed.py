"""Thin wrapper around :class:`accelerate.Accelerator` for the collectives the trainer needs.

The trainer runs unchanged in one process (plain ``python``/``zppo train``) and under
``accelerate launch`` / ``torchrun`` with the student laid out as ``strategy`` (``single``,
``ddp`` or ``fsdp2``: see :mod:`zppo_core.trainer.parallel`); the accelerator only provides the
process group and object collectives. Every rank rolls out its own
shard of the questions; small python objects (question outcomes, rewards) are exchanged with
``gather_object`` so that decisions that must be identical on every rank -- replay-buffer
updates, advantage statistics, checkpoint contents -- are computed from the same data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def process_group_kwargs(timeout_s: float) -> Any:
    """accelerate's handler that starts the trainer's process group with ``timeout_s``
    (``parallel.collective_timeout_s``) instead of NCCL's 600 s default."""
    from datetime import timedelta

    from accelerate.utils import InitProcessGroupKwargs

    return InitProcessGroupKwargs(timeout=timedelta(seconds=float(timeout_s)))


def object_group(world: int, timeout_s: float) -> Any:
    """A gloo group over every rank for the object gathers / broadcasts (pickles go through host
    memory, not through NCCL and GPU buffers), with ``timeout_s``; ``None`` in one process or
    without a started process group (the accelerator's collectives are used then)."""
    import torch.distributed as td
    from datetime import timedelta

    if world == 1 or not (td.is_available() and td.is_initialized()):
        return None
    return td.new_group(backend="gloo", timeout=timedelta(seconds=float(timeout_s)))


class Dist:
    """Rank info and collectives; ``accelerator`` is an ``accelerate.Accelerator``.

    ``object_timeout_s``: timeout of the gloo group of the object collectives
    (:func:`object_group`); ``None``: the accelerator's object collectives on the default group."""

    def __init__(self, accelerator: Any, strategy: str | None = None, object_timeout_s: float | None = None) -> None:
        self.acc = accelerator
        self.rank = int(accelerator.process_index)
        self.world = int(accelerator.num_processes)
        self.is_main = bool(accelerator.is_main_process)
        self.strategy = strategy or ("single" if self.world == 1 else "ddp")
        self.obj_group = object_group(self.world, object_timeout_s) if object_timeout_s is not None else None

    @property
    def device(self) -> torch.device:
        return self.acc.device

    @property
    def is_fsdp(self) -> bool:
        return self.strategy == "fsdp2"

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over ranks (float64)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            t = self.acc.reduce(t, reduction="sum")
        return [float(v) for v in t.cpu()]

    def max_int(self, value: int) -> int:
        t = torch.tensor([int(value)], dtype=torch.long, device=self.device)
        if self.world > 1:
            t = self.acc.gather(t).max()
        return int(t.max())

    def gather(self, items: list[Any]) -> list[Any]:
        """Concatenation of every rank's ``items`` in rank order (python objects)."""
        if self.world == 1:
            return list(items)
        if self.obj_group is not None:
            import torch.distributed as td

            parts: list[Any] = [None] * self.world
            td.all_gather_object(parts, list(items), group=self.obj_group)
            return [x for part in parts for x in part]
        from accelerate.utils import gather_object

        return list(gather_object(list(items)))

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        if self.obj_group is not None:
            import torch.distributed as td

            td.broadcast_object_list(box, src=0, group=self.obj_group)
            return box[0]
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(box, from_process=0)
        return box[0]

    def backward(self, loss: torch.Tensor) -> None:
        self.acc.backward(loss)

    @contextlib.contextmanager
    def maybe_no_sync(self, model: Any, skip_sync: bool) -> Iterator[None]:
        """DDP ``no_sync`` for all but the last micro-batch (FSDP always syncs: less memory)."""
        if skip_sync and self.world > 1 and not self.is_fsdp:
            with self.acc.no_sync(model):
                yield
        else:
            yield

    def clip_grad_norm(self, model: Any, max_norm: float) -> float:
        """Clip the global gradient norm; returns the norm before clipping."""
        if self.is_fsdp:
            from zppo_core.trainer.parallel import clip_grad_norm

            return clip_grad_norm(list(model.parameters()), max_norm)
        norm = self.acc.clip_grad_norm_(model.parameters(), max_norm)
        return float(norm)

    def barrier(self) -> None:
        self.acc.wait_for_everyone()


def close_process_group(barrier: bool = True) -> None:
    """Destroy this process's default process group, if one was started (a launched run).

    A process that exits with the group alive leaves gloo/NCCL threads to the C++ runtime's exit,
    which can abort it ("terminate called without an active exception", SIGABRT) after the work
    is done. ``barrier``: wait for every rank first (the success path; not after a failure, where
    another rank may never arrive).
    """
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        if barrier:
            td.barrier()
        td.destroy_process_group()


def finish_rank(code: int) -> int:
    """End this process with exit status ``code``; a launched rank (process group started) ends
    without the interpreter's teardown.

    Destroying the group is not enough on gloo: a finished rank was seen to abort in the
    runtime's exit (SIGABRT, "terminate called without an active exception") after a clean
    ``destroy_process_group``, which ``torchrun`` reports as a failed run (and a pipeline would
    retry a finished stage). So a launched rank (world > 1) closes the group (after a barrier
    when ``code == 0``), flushes stdio and logging, and leaves with ``os._exit(code)``. Every
    output file the trainer writes is closed before this point. In one process (no group, or a
    world-1 group such as an in-process vLLM engine's) the group is closed and ``code`` returned:
    a caller in the same interpreter (a test, a notebook) goes on.
    """
    import logging
    import os
    import sys

    import torch.distributed as td

    if not (td.is_available() and td.is_initialized()):
        return code
    launched = td.get_world_size() > 1
    close_process_group(barrier=code == 0)
    if not launched:
        return code
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()
    os._exit(code)


__all__ = ["Dist", "close_process_group", "finish_rank", "object_group", "process_group_kwargs"]
