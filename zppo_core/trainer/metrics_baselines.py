"""Step metrics of the baseline rows (``distill/*``, ``hint/*``, ``prefix/*``; documented in
:mod:`zppo_core.metrics`). Every method logs every key: zeros where the row does not apply.

This rank's counters travel as a :class:`BaselineCounts` (filled by
:mod:`zppo_core.trainer.guidance` and :mod:`zppo_core.trainer.distill`), summed over ranks
field by field.
"""

from __future__ import annotations

from dataclasses import dataclass

from zppo_core.config import Config
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.metrics_step import sum_over_ranks


@dataclass
class BaselineCounts:
    """This rank's per-step counters of the baseline rows."""

    hint_groups: float = 0.0  # hint groups rolled out
    hint_reward_sum: float = 0.0  # summed reward of their rollouts
    hint_rollouts: float = 0.0
    hint_leaks: float = 0.0  # hints dropped because they state the final answer (all reasons)
    hint_leak_boxed: float = 0.0  # ... by reason (zppo_core.guidance.LEAK_REASONS but "empty")
    hint_leak_answer_stated: float = 0.0
    hint_leak_conclusion: float = 0.0
    hint_unavailable: float = 0.0  # hint requests that returned no text
    prefix_groups: float = 0.0
    prefix_reward_sum: float = 0.0
    prefix_rollouts: float = 0.0
    prefix_tokens: float = 0.0  # summed forced-prefix length over prefix groups
    distill_teacher_rollouts: float = 0.0  # Off-Distill: usable teacher rollouts
    distill_teacher_correct: float = 0.0  # of which correct (the loss's sequences)


#: the reasons a hint with text is dropped (``hint/dropped_frac/<reason>``)
HINT_LEAK_KINDS = ("boxed", "answer_stated", "conclusion")


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def baseline_metrics(cfg: Config, counts: BaselineCounts, dist: Dist) -> dict[str, float]:
    """``distill/teacher_correct_frac`` and the Hint / Prefix keys; ``distill/jsd`` and
    ``distill/tokens`` are 0 here and set by the distillation update when it runs."""
    (c,) = sum_over_ranks(dist, counts)
    return {
        "distill/jsd": 0.0,
        "distill/tokens": 0.0,
        "distill/teacher_correct_frac": _ratio(c.distill_teacher_correct, c.distill_teacher_rollouts),
        "hint/groups": c.hint_groups,
        "hint/reward_mean": _ratio(c.hint_reward_sum, c.hint_rollouts),
        "hint/leaks_dropped": c.hint_leaks,
        **{f"hint/dropped_frac/{r}": _ratio(getattr(c, f"hint_leak_{r}"), c.hint_groups + c.hint_leaks)
           for r in HINT_LEAK_KINDS},
        "hint/unavailable": c.hint_unavailable,
        "prefix/groups": c.prefix_groups,
        "prefix/reward_mean": _ratio(c.prefix_reward_sum, c.prefix_rollouts),
        "prefix/prefix_tokens_mean": _ratio(c.prefix_tokens, c.prefix_groups),
    }


__all__ = ["HINT_LEAK_KINDS", "BaselineCounts", "baseline_metrics"]
