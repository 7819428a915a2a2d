"""The trainer's typed state: objects built once per run (:class:`Parts`), what a step mutates
(:class:`TrainerState`), and the arguments of the update path (:class:`UpdateContext`).

Kept apart from :mod:`zppo_core.trainer.loop` so the loop, the checkpoint I/O and the update
code can all name these types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zppo_core.config import Config
from zppo_core.replay import PromptReplayBuffer
from zppo_core.trainer.batch import Rollout
from zppo_core.trainer.audit_log import AuditLog
from zppo_core.trainer.data import DataCursor
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.rollout import RolloutIO

if TYPE_CHECKING:  # student_engine imports checkpoint, which imports this module
    from zppo_core.trainer.student_engine import StudentEngine

#: group id of zero-weight filler rollouts (never part of the loss)
FILLER_UID = "__filler__"
#: multiplier separating per-(step, rank) seeds
_SEED_STRIDE = 1_000_003


@dataclass
class TrainerState:
    """Everything a step mutates besides model/optimizer."""

    step: int
    cursor: DataCursor
    buffer: PromptReplayBuffer
    run_id: str | None


@dataclass
class UpdateContext:
    """Everything the update path (:func:`zppo_core.trainer.update.run_updates` and below) needs
    besides the step's rollouts; built once per run.

    ``algo``: the ``algo`` config section; ``micro_batch``: rollouts per forward/backward;
    ``grad_clip``: global grad-norm clip; ``temperature``: the student's sampling temperature
    (log-probs are computed at it); ``pad_id`` / ``vision_ids``: see
    :func:`zppo_core.trainer.batch.collate`; ``logprob_chunk``: see
    :func:`zppo_core.trainer.batch.token_logprobs`; ``packing`` / ``micro_batch_tokens``: see
    :mod:`zppo_core.trainer.packing`; ``reuse_old_logprobs``: see :mod:`zppo_core.trainer.update`.
    """

    model: Any
    optimizer: Any
    algo: Any
    micro_batch: int
    grad_clip: float
    temperature: float
    pad_id: int
    vision_ids: set[int]
    dist: Dist
    logprob_chunk: int = 0
    packing: str = "off"
    micro_batch_tokens: int = 0
    reuse_old_logprobs: bool = False
    #: FSDP2 + VLM only: a zero-weight rollout with an image (see ``engine.matched_micros``)
    vision_filler: Rollout | None = None

    def filler(self) -> Rollout:
        """A one-token rollout for zero-weight passes of a rank that is out of data (it keeps
        forwards, and so FSDP's collectives, matched across ranks)."""
        return Rollout(uid=FILLER_UID, kind="plain", question_id=FILLER_UID, prompt_ids=[self.pad_id],
                       response_ids=[self.pad_id])

    @classmethod
    def from_config(cls, cfg: Config, *, model: Any, optimizer: Any, pad_id: int, vision_ids: set[int],
                    dist: Dist) -> UpdateContext:
        return cls(model=model, optimizer=optimizer, algo=cfg.algo, micro_batch=cfg.schedule.micro_batch,
                   grad_clip=cfg.optim.grad_clip, temperature=cfg.rollout.student.temperature,
                   pad_id=pad_id, vision_ids=vision_ids, dist=dist, logprob_chunk=cfg.parallel.logprob_chunk,
                   packing=cfg.schedule.packing, micro_batch_tokens=cfg.schedule.micro_batch_tokens,
                   reuse_old_logprobs=cfg.algo.reuse_old_logprobs)


@dataclass
class Parts:
    """Objects built once per ``train`` call."""

    cfg: Config
    dist: Dist
    model: Any
    optimizer: Any
    processor: Any
    io: RolloutIO
    questions: list[dict[str, Any]]
    pad_id: int
    vision_ids: set[int]
    output_dir: Path
    update: UpdateContext
    #: the student's generation engine around each update (sleep, weight sync, wake)
    student: StudentEngine
    teacher: Any = None  # in-process frozen teacher (distillation rows only)
    tokenizer: Any = None  # the student's tokenizer
    #: rank 0's writer of the bounded ``bcq_debug`` / ``ncq_debug`` audit files (opened by ``fit``)
    audit_log: AuditLog | None = None
    #: the checkpoint this run resumed from: pruning keeps it until the run ends
    resumed_from: Path | None = None
    #: content hash of the training rows (:func:`zppo_core.trainer.resume.data_fingerprint`)
    data_fingerprint: str = ""


def step_seed(cfg: Config, step: int, rank: int) -> int:
    return (cfg.schedule.seed * _SEED_STRIDE + step) * 1_009 + rank


__all__ = ["FILLER_UID", "Parts", "TrainerState", "UpdateContext", "step_seed"]
