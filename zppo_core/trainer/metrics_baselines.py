"""Step metrics of the baseline rows (``distill/*``, ``hint/*``, ``prefix/*``; documented in
:mod:`zppo_core.metrics`). Every method logs every key: zeros where the row does not apply.

Counts come from ``StepRollouts.counts`` (:mod:`zppo_core.trainer.guidance` keys and the
teacher counts) and are summed over ranks.
"""

from __future__ import annotations

from typing import Any

from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.guidance import COUNT_KEYS


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def baseline_metrics(cfg: Any, counts: dict[str, float], dist: Dist) -> dict[str, float]:
    """``distill/teacher_correct_frac`` and the Hint / Prefix keys; ``distill/jsd`` and
    ``distill/tokens`` are 0 here and set by the distillation update when it runs."""
    keys = list(COUNT_KEYS) + ["teacher_rollouts", "teacher_correct"]
    c = dict(zip(keys, dist.sum([float(counts.get(k, 0.0)) for k in keys])))
    off = cfg.zppo.distill == "off"
    return {
        "distill/jsd": 0.0,
        "distill/tokens": 0.0,
        "distill/teacher_correct_frac": _ratio(c["teacher_correct"], c["teacher_rollouts"]) if off else 0.0,
        "hint/groups": c["hint_groups"],
        "hint/reward_mean": _ratio(c["hint_reward_sum"], c["hint_rollouts"]),
        "hint/leaks_dropped": c["hint_leaks"],
        "hint/unavailable": c["hint_unavailable"],
        "prefix/groups": c["prefix_groups"],
        "prefix/reward_mean": _ratio(c["prefix_reward_sum"], c["prefix_rollouts"]),
        "prefix/prefix_tokens_mean": _ratio(c["prefix_tokens"], c["prefix_groups"]),
    }


__all__ = ["baseline_metrics"]
