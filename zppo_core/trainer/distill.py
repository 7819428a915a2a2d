"""Off-Distill (Alg. 2) and On-Distill (Alg. 3): the distillation rows, as a switch of the one loop.

The step's data cursor, plain rollouts (Stage 1), replay buffer (same admission / graduation /
FIFO policy), checkpointing and logging are the loop's; only the gradient batch and the loss
differ:

* **Off-Distill**: every prompt of the step (new, and replayed for †) gets G_T fresh teacher
  rollouts on the plain prompt p(x) (online, through the teacher backend), graded by the same
  reward; the correct ones are the sequences of the loss (none correct => no loss for that
  prompt). The student's G_S plain rollouts only feed the buffer and the metrics.
* **On-Distill**: the sequences are the student's own G_S plain rollouts.

On each sequence (prompt rendered by the student's processor + response tokens), the teacher
model -- loaded IN PROCESS from ``model.teacher``, frozen, laid out like the student (sharded
with the trainer's FSDP2 helper under the fsdp2 layout) -- gives its next-token distribution at every response position; the loss is the
per-token full-vocabulary JSD (:func:`zppo_core.loss.jsd_loss`) -- Off-Distill: the mean over the
step's correct teacher trajectories (all ranks) of each one's mean per-token JSD, the paper's
Alg. 2 objective (``zppo.off_distill_agg``); On-Distill: like the RL loss (``algo.loss_agg``,
token mean over the whole batch on all ranks) -- and applied in ONE optimizer
update per rollout step (micro-batched gradient accumulation). The served teacher's text never
becomes a gradient target except through those teacher logits.

Documented choices:

* Teacher response ids: ``Sample.token_ids`` when the backend gives them (the tokenizers are
  checked equal at start), else the text encoded with the student's tokenizer.
* Both distributions at temperature 1 (the raw model distributions; the paper's sampling
  temperature is 1.0 too).
* Logit widths that differ (padded embedding tables) are cut to the shared width before the
  softmax; every token id of the shared tokenizer lies below it.
* A step whose batch has no sequence on any rank (Off-Distill: the teacher failed everywhere)
  takes no optimizer step (``train/updates`` = 0).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from zppo_core.config import Config
from zppo_core.engines.base import SamplingParams
from zppo_core.loss import jsd_loss, token_entropy
from zppo_core.prompts import build_plain
from zppo_core.trainer.batch import Batch, Rollout, collate
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.engine import LossFn, Micro, matched_micros, normalizer, optimizer_step
from zppo_core.trainer.metrics_baselines import BaselineCounts
from zppo_core.trainer.rollout import RolloutIO, make_request
from zppo_core.trainer.state import FILLER_UID, UpdateContext
from zppo_core.zpd import group_uid


class TokenizerMismatch(ValueError):
    """Student and teacher tokenizers differ: per-token distillation is undefined."""


def check_tokenizers(student_tok: Any, teacher_tok: Any, student: str, teacher: str) -> None:
    """Raise :class:`TokenizerMismatch` naming both models unless the vocabularies are identical."""
    sv, tv = student_tok.get_vocab(), teacher_tok.get_vocab()
    if sv == tv:
        return
    only_s = sorted(set(sv) - set(tv))[:3]
    only_t = sorted(set(tv) - set(sv))[:3]
    moved = sorted(k for k in set(sv) & set(tv) if sv[k] != tv[k])[:3]
    raise TokenizerMismatch(
        f"distillation needs the student's and the teacher's tokenizers to match: student {student!r} "
        f"({len(sv)} tokens) vs teacher {teacher!r} ({len(tv)} tokens); only in the student: {only_s}, "
        f"only in the teacher: {only_t}, different ids: {moved}"
    )


def load_teacher(cfg: Config, dist: Dist, student_processor: Any, student_dir: str) -> Any:
    """The in-process teacher of the distillation rows (``model.teacher``), checked, then loaded in
    the compute dtype (``model.dtype``) and placed by :func:`zppo_core.trainer.frozen.load_frozen`
    (fsdp2: meta init, sharded, shards broadcast from rank 0; never whole on a GPU, no fp32 copy)."""
    from zppo_core.models import resolve
    from zppo_core.models.processor import is_vlm_dir, load_processor, tokenizer_of
    from zppo_core.trainer.frozen import load_frozen

    teacher_dir = resolve(cfg.model.teacher)
    processor = load_processor(teacher_dir, trust_remote_code=cfg.model.trust_remote_code)
    check_tokenizers(tokenizer_of(student_processor), tokenizer_of(processor), cfg.model.student, cfg.model.teacher)
    if is_vlm_dir(student_dir) and not is_vlm_dir(teacher_dir):
        raise ValueError(f"distillation: the student {cfg.model.student!r} is a VLM but the teacher "
                         f"{cfg.model.teacher!r} has no vision tower; it cannot score image prompts")
    return load_frozen(teacher_dir, cfg, dist)


def off_policy_sequences(io: RolloutIO, cfg: Config, questions: list[dict[str, Any]], replay_ids: set[str],
                         tokenizer: Any, *, step: int, seed: int) -> tuple[list[Rollout], int, int, float]:
    """Off-Distill's batch: the correct ones of G_T fresh teacher rollouts per question.
    Returns ``(sequences, teacher rollouts drawn, of which correct, seconds)``."""
    t0 = time.perf_counter()
    params = SamplingParams.from_config(cfg.rollout.teacher, seed=seed + 2)
    reqs = [make_request(q, build_plain(q["question"]), q["id"], io.load_image) for q in questions]
    samples = io.teacher.generate(reqs, cfg.rollout.teacher_group_size, params) if reqs else []
    out: list[Rollout] = []
    drawn = correct = 0
    for q, req, ss in zip(questions, reqs, samples):
        ok = [s for s in ss if s.finish_reason != "missing"]
        rewards = io.grade([s.text for s in ok], q)
        drawn += len(ok)
        prompt_ids, mm = io.render(req)
        for s, r in zip(ok, rewards):
            if r != 1.0:
                continue
            correct += 1
            ids = list(s.token_ids) or tokenizer(s.text, add_special_tokens=False)["input_ids"]
            out.append(Rollout(uid=group_uid(q['id'], "teacher", step), kind="teacher", question_id=q["id"],
                               prompt_ids=list(prompt_ids), response_ids=[int(i) for i in ids], reward=1.0,
                               finish_reason=s.finish_reason, mm=mm, is_replay=q["id"] in replay_ids))
    return out, drawn, correct, time.perf_counter() - t0


def forward_logits(model: Any, batch: Batch) -> torch.Tensor:
    """Next-token logits [B, L-1, V] of ``batch`` under ``model`` (position p-1 predicts token p)."""
    device = batch_device(model)
    kwargs = {k: v.to(device) for k, v in batch.mm.items()}
    out = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                use_cache=False, **kwargs)
    return out.logits[:, :-1]


def batch_device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _jsd_loss(ctx: UpdateContext, teacher: Any, agg: str, norm_kw: dict[str, float]) -> LossFn:
    """The JSD loss of one engine micro-batch against the frozen teacher's logits."""

    def loss_fn(m: Micro) -> tuple[torch.Tensor, dict[str, float]]:
        batch = collate(m.rows, ctx.pad_id, ctx.vision_ids)
        logits = forward_logits(ctx.model, batch)
        with torch.no_grad():
            t_logits = forward_logits(teacher, batch)
        width = min(logits.shape[-1], t_logits.shape[-1])
        mask = batch.response_mask.to(logits.device)
        for i, r in enumerate(m.rows):  # filler rows (zero-weight passes) carry no weight
            if m.dummy or r.uid == FILLER_UID:
                mask[i] = False
        loss, met = jsd_loss(logits[..., :width], t_logits[..., :width].to(logits.device), mask, agg=agg, **norm_kw)
        entropy = float(token_entropy(logits.detach())[mask].sum())  # the student's, on the loss tokens
        return loss, {"jsd": met["jsd"] * met["n_tokens"], "entropy": entropy}

    return loss_fn


def _loss_tokens(r: Rollout, vision_ids: set[int]) -> int:
    """Response tokens of ``r`` that enter the loss (generated vision placeholders are masked)."""
    return sum(1 for t in r.response_ids if t not in vision_ids)


def distill_update(ctx: UpdateContext, teacher: Any, seqs: list[Rollout], agg: str | None = None) -> dict[str, float]:
    """One JSD update on the whole batch ``seqs`` (all ranks; ``ctx`` the run's update context),
    reduced by ``agg`` ("token" | "sequence", default ``algo.loss_agg``) over every rank's
    sequences; returns the ``train/*`` and ``distill/jsd`` / ``distill/tokens`` metrics.

    The update engine (:mod:`zppo_core.trainer.engine`) keeps the micro-batches matched across
    ranks (zero-weight fillers) and takes the optimizer step; this function hands it the plan
    (``micro_batch`` sequences each, in order) and the JSD of one micro-batch."""
    dist, mb = ctx.dist, ctx.micro_batch
    counted = [_loss_tokens(r, ctx.vision_ids) for r in seqs]
    g_tok, g_seq = dist.sum([sum(counted), sum(1 for c in counted if c)])
    if g_tok == 0:
        return _metrics(0.0, 0.0, 0.0, 0.0, 0)
    agg = agg or ctx.algo.loss_agg
    plan = [list(range(i, min(i + mb, len(seqs)))) for i in range(0, len(seqs), mb)]
    micros = list(matched_micros(ctx, plan, seqs))
    res = optimizer_step(ctx, micros, _jsd_loss(ctx, teacher, agg, normalizer(agg, g_tok, g_seq, dist.world)),
                         ("jsd", "entropy"))
    return _metrics(res.loss, res.grad_norm, res.totals["jsd"] / g_tok, g_tok, 1,
                    entropy=res.totals["entropy"] / g_tok)


def _metrics(loss: float, grad_norm: float, jsd: float, tokens: float, updates: int,
             entropy: float = 0.0) -> dict[str, float]:
    """The step's ``train/*`` keys for a distillation update: the RL-only ratios (clipping,
    advantages) are 0; ``train/entropy`` is the student's entropy on the distilled tokens."""
    return {
        "train/loss": loss,
        "train/clip_frac": 0.0,
        "train/approx_kl": 0.0,
        "train/grad_norm": grad_norm,
        "train/grad_norm_max": grad_norm,
        "train/updates": float(updates),
        "train/response_tokens": tokens,
        "train/adv_abs_mean": 0.0,
        "train/sampler_logprob_diff": 0.0,
        "train/dual_clip_frac": 0.0,
        "train/pos_adv_frac": 0.0,
        "train/entropy": entropy,
        "distill/jsd": jsd,
        "distill/tokens": tokens,
    }


__all__ = [
    "TokenizerMismatch",
    "check_tokenizers",
    "distill_step",
    "distill_update",
    "forward_logits",
    "load_teacher",
    "off_policy_sequences",
]


def distill_step(parts: Any, sr: Any, counts: BaselineCounts, questions: list[dict[str, Any]],
                 replay_ids: set[str], *, step: int, seed: int) -> dict[str, float]:
    """The distillation rows' update of one step (replaces the I RL updates): Off-Distill draws its
    teacher sequences (counted in ``counts`` and in ``sr.counts``' teacher counters), On-Distill
    uses the plain student rollouts."""
    cfg = parts.cfg
    if cfg.zppo.distill == "off":
        seqs, drawn, correct, secs = off_policy_sequences(parts.io, cfg, questions, replay_ids, parts.tokenizer,
                                                          step=step, seed=seed)
        counts.distill_teacher_rollouts += drawn
        counts.distill_teacher_correct += correct
        sr.counts.teacher_rollouts += drawn
        sr.counts.teacher_correct += correct
        sr.counts.teacher_time += secs
    else:
        seqs = [r for r in sr.rollouts if r.kind == "plain"]
    return distill_update(parts.update, parts.teacher, seqs,
                          cfg.zppo.off_distill_agg if cfg.zppo.distill == "off" else cfg.algo.loss_agg)
