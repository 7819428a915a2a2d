"""Assemble one step's metrics dict (keys documented in :mod:`zppo_core.metrics`).

Counts are summed over ranks; rewards are exact means over all ranks' rollouts. Per-rank
counters travel as dataclasses (:class:`RolloutTotals`, :class:`~zppo_core.trainer.rollout.StageCounts`)
summed field by field in one collective, and are read back by name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeVar

from zppo_core.audit import match_counts, match_metrics
from zppo_core.replay import PromptReplayBuffer
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.rollout import StageCounts, StepRollouts

T = TypeVar("T")


@dataclass
class RolloutTotals:
    """Reward sums / counts and token counts of one rank's gradient rollouts."""

    plain_sum: float = 0.0
    plain_n: float = 0.0
    new_sum: float = 0.0  # plain rollouts of new (not replayed) questions
    new_n: float = 0.0
    replay_sum: float = 0.0  # plain rollouts of replayed questions
    replay_n: float = 0.0
    bcq_sum: float = 0.0
    bcq_n: float = 0.0
    ncq_sum: float = 0.0
    ncq_n: float = 0.0
    all_sum: float = 0.0
    all_n: float = 0.0
    groups: float = 0.0
    trivial_groups: float = 0.0  # every reward of the group equal (zero advantage)
    sequences: float = 0.0
    response_tokens: float = 0.0
    truncated: float = 0.0  # finish_reason == "length"
    all_tokens: float = 0.0  # prompt + response tokens

    @classmethod
    def of(cls, rollouts) -> RolloutTotals:
        t = cls()
        for r in rollouts:
            # kinds without their own reward fields (hint / prefix groups: their means are the
            # baseline metrics) count in "all" only
            kinds = ["all", r.kind] if hasattr(t, f"{r.kind}_sum") else ["all"]
            if r.kind == "plain":
                kinds.append("replay" if r.is_replay else "new")
            for k in kinds:
                setattr(t, f"{k}_sum", getattr(t, f"{k}_sum") + float(r.reward))
                setattr(t, f"{k}_n", getattr(t, f"{k}_n") + 1.0)
        groups: dict[str, list[float]] = {}
        for r in rollouts:
            groups.setdefault(r.uid, []).append(r.reward)
        t.groups = float(len(groups))
        t.trivial_groups = float(sum(1 for rs in groups.values() if max(rs) == min(rs)))
        t.sequences = float(len(rollouts))
        t.response_tokens = float(sum(len(r.response_ids) for r in rollouts))
        t.truncated = float(sum(r.finish_reason == "length" for r in rollouts))
        t.all_tokens = float(sum(r.n_tokens for r in rollouts))
        return t


def sum_over_ranks(dist: Dist, *items: T) -> list[T]:
    """Field-wise sums over ranks of dataclass instances (one collective for all of them)."""
    flat = [float(getattr(x, f.name)) for x in items for f in fields(x)]
    tot = iter(dist.sum(flat))
    return [type(x)(**{f.name: next(tot) for f in fields(x)}) for x in items]


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def buffer_bin_metrics(buf_res: dict, bins: list[str]) -> dict[str, float]:
    """``buffer/<admissions|graduations|evictions>/<bin>`` of this refresh, 0 for bins without events."""
    by_bin = buf_res.get("by_bin", {})
    return {f"buffer/{name}/{b}": float(by_bin.get(event, {}).get(b, 0))
            for event, name in (("admitted", "admissions"), ("graduated", "graduations"), ("evicted", "evictions"))
            for b in bins}


def step_metrics(*, step: int, sr: StepRollouts, outcomes: list, n_new: int, n_replay: int, buf_res: dict,
                 buffer: PromptReplayBuffer, train_m: dict, lr: float, update_time: float, step_time: float,
                 dist: Dist, bins: list[str]) -> dict[str, float]:
    """The flat metrics dict of one step (every value a python number). ``bins``: the buffer's
    entry-accuracy bins (:func:`zppo_core.replay.entry_bins`)."""
    rt, c, mc = sum_over_ranks(dist, RolloutTotals.of(sr.rollouts), sr.counts, match_counts(sr.audit))
    assert isinstance(c, StageCounts)
    rollout_time, teacher_time = c.rollout_time / dist.world, c.teacher_time / dist.world
    n_q = len(outcomes)
    return {
        "step": step,
        "reward/plain_mean": _ratio(rt.plain_sum, rt.plain_n),
        "reward/new_mean": _ratio(rt.new_sum, rt.new_n),
        "reward/replay_mean": _ratio(rt.replay_sum, rt.replay_n),
        "reward/bcq_mean": _ratio(rt.bcq_sum, rt.bcq_n),
        "reward/ncq_mean": _ratio(rt.ncq_sum, rt.ncq_n),
        "reward/all_mean": _ratio(rt.all_sum, rt.all_n),
        "reward/judged": c.judged,
        "reward/judge_malformed": c.judge_malformed,
        "zppo/hard_frac": _ratio(c.hard, n_q),
        "zppo/hard_count": c.hard,
        "zppo/bcq_count": c.bcq,
        "zppo/ncq_count": c.ncq,
        "zppo/teacher_rollouts": c.teacher_rollouts,
        "zppo/teacher_pass_rate": _ratio(c.teacher_correct, c.teacher_rollouts),
        "zppo/compressions": c.compressions,
        "zppo/compression_fallbacks": c.compression_fallbacks,
        "rollout/new_questions": float(n_new),
        "rollout/replay_questions": float(n_replay),
        "rollout/image_load_skipped": c.image_skipped,
        "rollout/groups": rt.groups,
        "rollout/sequences": rt.sequences,
        "rollout/trivial_group_frac": _ratio(rt.trivial_groups, rt.groups),
        "rollout/response_len_mean": _ratio(rt.response_tokens, rt.sequences),
        "rollout/truncated_frac": _ratio(rt.truncated, rt.sequences),
        "buffer/size": float(len(buffer)),
        "buffer/admissions": float(buf_res["admitted"]),
        "buffer/graduations": float(buf_res["graduated"]),
        "buffer/evictions": float(len(buf_res["evicted"])),
        **buffer_bin_metrics(buf_res, bins),
        **match_metrics(mc),
        **train_m,
        "train/lr": lr,
        "perf/step_time_s": step_time,
        "perf/rollout_time_s": rollout_time,
        "perf/teacher_time_s": teacher_time,
        "perf/update_time_s": update_time,
        "perf/tokens_per_s": _ratio(rt.all_tokens, step_time),
        "perf/gen_tokens_per_s": _ratio(rt.response_tokens, rollout_time * dist.world),
    }


__all__ = ["RolloutTotals", "buffer_bin_metrics", "step_metrics", "sum_over_ranks"]
