"""The ZPPO / GRPO training loop (Algorithm 1 of the paper): :func:`fit` and :func:`train_step`.

:func:`fit` runs rollout steps ``st.step+1 .. end``, appends each step's metrics (rank 0) and
checkpoints (:mod:`zppo_core.trainer.checkpoint`). Each step (:func:`train_step`):

1. draws ``|X_new|`` = ``schedule.rollout_batch`` questions from the data cursor (identical on
   every rank, then sharded) and ``int(rho_replay * |X_new|)`` questions from the replay buffer
   (same seeded draw on every rank; questions also in X_new this step are skipped);
2. runs Stages 1-5 on this rank's questions, with the ZPD pre-cap / post-cap decided once over
   the hard questions of ALL ranks (:mod:`zppo_core.trainer.rollout`);
3. refreshes the replay buffer from the plain outcomes of ALL ranks (gathered, same order on
   every rank, so the buffers stay identical);
4. runs the I mini-batch updates (:mod:`zppo_core.trainer.update`);
5. syncs weights into a non-live student engine, logs (metrics, and the bounded BCQ/NCQ
   candidate-match audit files ``bcq_debug.jsonl`` / ``ncq_debug.jsonl``), checkpoints.

Building the run (model, optimizer, backends) and resuming is :mod:`zppo_core.trainer.setup`;
the types shared by all of these are :mod:`zppo_core.trainer.state`. Method switches come only
from ``zppo.method`` (see ``zppo_core.config.METHODS``): the Hint / Prefix rows add groups after
Stage 1 (:mod:`zppo_core.trainer.guidance`); the distillation rows replace step 4 by one JSD
update (:mod:`zppo_core.trainer.distill`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from zppo_core.audit import bounded
from zppo_core.durable import append_line_durably
from zppo_core.replay import entry_bins
from zppo_core.trainer import checkpoint as ck
from zppo_core.trainer.audit_log import AuditLog
from zppo_core.trainer.build import lr_at
from zppo_core.trainer.data import shard
from zppo_core.trainer.distill import distill_step
from zppo_core.trainer.guidance import add_guidance_groups
from zppo_core.trainer.metrics_baselines import BaselineCounts, baseline_metrics
from zppo_core.trainer.metrics_step import step_metrics
from zppo_core.trainer.rollout import StepRollouts, collect
from zppo_core.trainer.state import Parts, TrainerState, step_seed
from zppo_core.trainer.update import run_updates

Callback = Callable[[int, dict[str, float]], None]


def _replay_questions(parts: Parts, st: TrainerState, new_ids: set[str]) -> list[dict[str, Any]]:
    cfg = parts.cfg
    if not cfg.zppo.use_replay or cfg.replay_count == 0:
        return []
    drawn = st.buffer.sample(cfg.replay_count)
    return [payload for qid, payload in drawn if qid not in new_ids]


def _audit(parts: Parts, sr: StepRollouts) -> None:
    """Gather this step's candidate-match records (each rank's first ``per_step`` per kind) and
    let rank 0 append them to the bounded ``<kind>_debug.jsonl`` files."""
    per_step = parts.cfg.tracking.audit_records_per_step
    local = bounded(sr.audit, per_step, {}, per_step)
    records = parts.dist.gather(local)
    if parts.audit_log is not None and parts.dist.is_main:
        parts.audit_log.write(records)


def train_step(parts: Parts, st: TrainerState) -> dict[str, float]:
    """One rollout step (Algorithm 1); mutates ``st`` and the model. Returns the step's metrics.
    Rank 0 writes the step's candidate-match audit records to ``parts.audit_log`` (if open)."""
    cfg, dist = parts.cfg, parts.dist
    t0 = time.perf_counter()
    step = st.step + 1
    idx = st.cursor.next(cfg.schedule.rollout_batch)
    new_all = [parts.questions[i] for i in idx]
    replay_all = _replay_questions(parts, st, {q["id"] for q in new_all})
    new_qs, replay_qs = shard(new_all, dist.rank, dist.world), shard(replay_all, dist.rank, dist.world)
    # each question's position in the step's global order (new, then replayed): the tie-break
    # of the global pre-cap, identical whatever the number of ranks
    order = shard(list(range(len(new_all))), dist.rank, dist.world) + \
        shard(list(range(len(new_all), len(new_all) + len(replay_all))), dist.rank, dist.world)
    seed = step_seed(cfg, step, dist.rank)
    parts.model.eval()  # dropout off for sampling and the old-logprob pass alike
    sr = collect(parts.io, cfg, new_qs, replay_qs, step=step, cap=cfg.aug_cap, seed=seed, order=order,
                 gather=dist.gather)
    replay_ids, extra = {q["id"] for q in replay_qs}, BaselineCounts()
    if cfg.zppo.guidance:  # GRPO†+Hint / +Prefix: extra groups on X_aug
        add_guidance_groups(parts, sr, extra, replay_ids=replay_ids, step=step, order=order, seed=seed)
    _audit(parts, sr)
    if dist.is_main and cfg.tracking.samples_per_kind:
        _write_samples(parts, step, sr.rollouts)
    outcomes = dist.gather(sr.outcomes)
    buf_res = st.buffer.refresh(outcomes) if cfg.zppo.use_replay else {"admitted": 0, "graduated": 0, "evicted": []}
    for g in parts.optimizer.param_groups:
        g["lr"] = lr_at(step, cfg)
    t1 = time.perf_counter()
    parts.student.before_update()  # colocated vLLM: free its GPU memory for the update (sleep mode)
    if cfg.zppo.distill:  # Off-/On-Distill: one JSD update against the in-process teacher
        train_m = distill_step(parts, sr, extra, new_qs + replay_qs, replay_ids, step=step, seed=seed)
    else:
        train_m = run_updates(parts.update, sr.rollouts, seed=seed)
    update_time = time.perf_counter() - t1
    parts.student.after_update(parts)  # vLLM: the new weights into the engine, then it wakes
    st.step = step
    return baseline_metrics(cfg, extra, dist) | step_metrics(
        step=step, sr=sr, outcomes=outcomes, n_new=len(new_all), n_replay=len(replay_all), buf_res=buf_res,
        buffer=st.buffer, train_m=train_m, lr=lr_at(step, cfg), update_time=update_time,
        step_time=time.perf_counter() - t0, dist=dist, bins=entry_bins(cfg.rollout.group_size, cfg.zppo.tau),
    )


def _write_samples(parts: Parts, step: int, rollouts: list[Any]) -> None:
    """A few rollouts per kind to ``samples.jsonl`` (:mod:`zppo_core.trainer.samples`)."""
    from zppo_core.models.processor import tokenizer_of
    from zppo_core.trainer.samples import append_samples, sample_rows

    tok = tokenizer_of(parts.processor)
    rows = sample_rows(rollouts, lambda ids: tok.decode(ids, skip_special_tokens=False), step,
                       parts.cfg.tracking.samples_per_kind, {q["id"]: q["answer"] for q in parts.questions})
    append_samples(parts.output_dir, rows)


def fit(parts: Parts, st: TrainerState, end: int, metrics_path: Path,
        callbacks: Iterable[Callback] = ()) -> dict[str, float]:
    """Run steps until ``st.step == end``; rank 0 appends metrics rows and calls ``callbacks``.

    Checkpoints every ``schedule.checkpoint_every`` steps and at ``end``. Returns the last
    step's metrics (``{}`` when no step ran).
    """
    cfg = parts.cfg
    last: dict[str, float] = {}
    if parts.dist.is_main:  # drops audit lines of steps after the resumed checkpoint
        parts.audit_log = AuditLog(parts.output_dir, cfg.tracking.audit_records_per_step,
                                   cfg.tracking.audit_max_records, resume_step=st.step)
    while st.step < end:
        last = train_step(parts, st)
        if parts.dist.is_main:
            append_line_durably(metrics_path, json.dumps(last))
            for cb in callbacks:
                cb(st.step, last)
        if st.step % cfg.schedule.checkpoint_every == 0 or st.step == end:
            ck.save(parts, st)
    return last


__all__ = ["Callback", "fit", "train_step"]
