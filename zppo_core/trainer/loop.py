"""The ZPPO / GRPO training loop (Algorithm 1 of the paper) with checkpoint/resume.

One call of :func:`train` runs rollout steps ``start+1 .. min(total_steps, max_steps)`` where
``start`` is the step of the newest complete checkpoint in ``<output_dir>/checkpoints`` (0 if
none). Each step (:func:`train_step`):

1. draws ``|X_new|`` = ``schedule.rollout_batch`` questions from the data cursor (identical on
   every rank, then sharded) and ``int(rho_replay * |X_new|)`` questions from the replay buffer
   (same seeded draw on every rank; questions also in X_new this step are skipped);
2. runs Stages 1-5 on this rank (:mod:`zppo_core.trainer.rollout`);
3. refreshes the replay buffer from the plain outcomes of ALL ranks (gathered, same order on
   every rank, so the buffers stay identical);
4. runs the I mini-batch updates (:mod:`zppo_core.trainer.update`);
5. syncs weights into a non-live student engine, logs, checkpoints.

Method switches come only from ``zppo.method`` (see ``zppo_core.config.METHODS``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zppo_core.replay import PromptReplayBuffer
from zppo_core.trainer import checkpoint as ck
from zppo_core.trainer.build import lr_at
from zppo_core.trainer.data import DataCursor, shard
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.metrics_step import step_metrics
from zppo_core.trainer.rollout import RolloutIO, collect
from zppo_core.trainer.update import run_updates

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
class Parts:
    """Objects built once per :func:`train` call."""

    cfg: Any
    dist: Dist
    model: Any
    optimizer: Any
    processor: Any
    io: RolloutIO
    questions: list[dict[str, Any]]
    pad_id: int
    vision_ids: set[int]
    output_dir: Path


def step_seed(cfg: Any, step: int, rank: int) -> int:
    return (cfg.schedule.seed * _SEED_STRIDE + step) * 1_009 + rank


def _replay_questions(parts: Parts, st: TrainerState, new_ids: set[str]) -> list[dict[str, Any]]:
    cfg = parts.cfg
    if not cfg.zppo.use_replay or cfg.replay_count == 0:
        return []
    drawn = st.buffer.sample(cfg.replay_count)
    return [payload for qid, payload in drawn if qid not in new_ids]


def train_step(parts: Parts, st: TrainerState) -> dict[str, float]:
    """One rollout step (Algorithm 1); mutates ``st`` and the model. Returns the step's metrics."""
    cfg, dist = parts.cfg, parts.dist
    t0 = time.perf_counter()
    step = st.step + 1
    idx = st.cursor.next(cfg.schedule.rollout_batch)
    new_all = [parts.questions[i] for i in idx]
    replay_all = _replay_questions(parts, st, {q["id"] for q in new_all})
    new_qs, replay_qs = shard(new_all, dist.rank, dist.world), shard(replay_all, dist.rank, dist.world)
    local_cap = cfg.aug_cap * len(new_qs) // max(len(new_all), 1)
    seed = step_seed(cfg, step, dist.rank)
    parts.model.eval()  # dropout off for sampling and the old-logprob pass alike
    sr = collect(parts.io, cfg, new_qs, replay_qs, step=step, local_cap=local_cap, seed=seed)
    if dist.is_main and cfg.tracking.samples_per_kind:
        _write_samples(parts, step, sr.rollouts)
    outcomes = dist.gather(sr.outcomes)
    buf_res = st.buffer.refresh(outcomes) if cfg.zppo.use_replay else {"admitted": 0, "graduated": 0, "evicted": []}
    for g in parts.optimizer.param_groups:
        g["lr"] = lr_at(step, cfg)
    t1 = time.perf_counter()
    train_m = run_updates(
        parts.model, parts.optimizer, sr.rollouts, algo=cfg.algo, micro_batch=cfg.schedule.micro_batch,
        grad_clip=cfg.optim.grad_clip, temperature=cfg.rollout.student.temperature, pad_id=parts.pad_id,
        vision_ids=parts.vision_ids, dist=dist, seed=seed,
    )
    update_time = time.perf_counter() - t1
    _sync_student(parts)
    st.step = step
    return step_metrics(
        step=step, sr=sr, outcomes=outcomes, n_new=len(new_all), n_replay=len(replay_all), buf_res=buf_res,
        buffer=st.buffer, train_m=train_m, lr=lr_at(step, cfg), update_time=update_time,
        step_time=time.perf_counter() - t0, dist=dist,
    )


def _write_samples(parts: Parts, step: int, rollouts: list[Any]) -> None:
    """A few rollouts per kind to ``samples.jsonl`` (:mod:`zppo_core.trainer.samples`)."""
    from zppo_core.models.processor import tokenizer_of
    from zppo_core.trainer.samples import append_samples, sample_rows

    tok = tokenizer_of(parts.processor)
    rows = sample_rows(rollouts, lambda ids: tok.decode(ids, skip_special_tokens=False), step,
                       parts.cfg.tracking.samples_per_kind)
    append_samples(parts.output_dir, rows)


def _sync_student(parts: Parts) -> None:
    """Push new weights into a student engine that does not wrap the live model (vLLM)."""
    backend = parts.io.student
    if parts.cfg.model.student_backend == "transformers" or not hasattr(backend, "update_weights"):
        return
    sync_dir = parts.output_dir / ".weight_sync"
    if parts.dist.is_main:
        _save_model(parts, sync_dir)
    parts.dist.barrier()
    backend.update_weights(str(sync_dir))


def _save_model(parts: Parts, out: Path) -> None:
    from zppo_core.models.processor import save_processor

    acc = parts.dist.acc
    unwrapped = acc.unwrap_model(parts.model)
    unwrapped.save_pretrained(str(out), safe_serialization=True, state_dict=acc.get_state_dict(parts.model))
    save_processor(parts.processor, out)


def _state_json(parts: Parts, st: TrainerState) -> dict[str, Any]:
    rngs = parts.dist.gather([ck.get_rng_state()])
    return {
        "run_id": st.run_id,
        "config_hash": parts.cfg.hash(),
        "method": parts.cfg.zppo.method,
        "world_size": parts.dist.world,
        "cursor": st.cursor.state_dict(),
        "buffer": st.buffer.state_dict(),
        "rng": rngs,
    }


def _sd_options(full: bool):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=full, cpu_offload=full)


def full_optimizer_state(parts: Parts) -> dict[str, Any]:
    """Unsharded optimizer state keyed by parameter name (same under 1 process, DDP, FSDP)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(parts.model, parts.optimizer, options=_sd_options(True))


def load_optimizer_state(parts: Parts, state: dict[str, Any]) -> None:
    """Inverse of :func:`full_optimizer_state` (every rank passes the full dict)."""
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    set_optimizer_state_dict(parts.model, parts.optimizer, state, options=_sd_options(parts.dist.is_fsdp))


def save(parts: Parts, st: TrainerState) -> Path | None:
    """Checkpoint the current step (every rank participates; rank 0 writes)."""
    state = _state_json(parts, st)  # collective: all ranks
    opt_state = full_optimizer_state(parts)  # collective under FSDP
    path = None
    if parts.dist.is_main:
        path = ck.save_checkpoint(
            parts.output_dir, st.step, save_model=lambda d: _save_model(parts, d), optimizer_state=opt_state,
            trainer_state=state, keep=parts.cfg.schedule.keep_checkpoints,
        )
    parts.dist.barrier()
    return path


__all__ = ["Parts", "TrainerState", "save", "step_seed", "train_step"]
