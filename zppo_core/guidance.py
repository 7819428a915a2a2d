r"""Prompt-guidance baselines of the paper (App. D.2): GRPO†+Hint (Alg. 5) and GRPO†+Prefix (Alg. 6).

Pure functions over plain data; the trainer (:mod:`zppo_core.trainer.guidance`) does the I/O
(teacher rollouts, the teacher's hint, student rollouts). One step reads:

1. X_aug = ``zpd.global_precap(<hard_entries(...) of every rank>, cap)``: the capped hard set
   (ascending r̄, ties in step order), exactly ZPPO's pre-cap
2. G_T teacher rollouts on ``targets``, graded like the student's         -- I/O
3. ``i = pick_correct(rewards, rng)``: one correct teacher rollout uniformly; ``None`` when the
   teacher failed on every rollout (then no extra group for that question)
4. Hint: the teacher writes a hint from rollout ``i`` with the Fig. 19 prompt   -- I/O;
   ``hint_leak(hint, gold)`` names why a hint must be dropped (it reveals the gold answer or
   holds a ``\boxed{}``), ``None`` when it may be used; the student group's prompt is
   ``prompts.build_hint_question(question, hint)``.
   Prefix: ``prefix_ids(teacher_ids, alpha)`` = the first ``floor(alpha * L)`` tokens.

Documented choices where the paper is silent:

* Leak check (Hint): a hint is dropped when it contains ``\boxed`` / ``\fbox`` or the gold answer
  as a whole token run -- case-insensitive, not inside a longer word or number (gold ``4``
  leaks in "the answer is 4." but not in "step 14"); both the raw gold and its audit
  normalisation (``grading.normalize_answer``) are searched. An equivalent answer in another
  form (``1/2`` for gold ``0.5``) is not detected. An empty hint is dropped too (reason
  ``"empty"``).
* ``floor(alpha * L)`` is computed exactly on the decimal value of ``alpha`` (``0.29 * 100`` is
  29, not 28 as in binary floating point).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from zppo_core.grading import normalize_answer

#: why a hint is dropped (``hint_leak``'s non-None values)
LEAK_REASONS = ("empty", "boxed", "gold")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\b")


def hard_entries(outcomes: Sequence[tuple[str, float, Any]], order: Sequence[int], tau: float) -> list[tuple[int, str, float]]:
    """``(global position, question id, mean plain reward)`` of the hard questions (mean < ``tau``).

    Args:
        outcomes: ``(question_id, mean plain reward, question)`` of this rank's plain groups.
        order: each outcome's position in the step's global order (new before replayed).

    Gathered from every rank, these feed :func:`zppo_core.zpd.global_precap` (ascending mean,
    ties by position, first ``cap``): X_aug is exactly ZPPO's pre-capped set.
    """
    if len(order) != len(outcomes):
        raise ValueError(f"order has {len(order)} positions for {len(outcomes)} outcomes")
    return [(int(k), qid, float(m)) for (qid, m, _), k in zip(outcomes, order) if m < tau]


def pick_correct(rewards: Sequence[float], rng: random.Random) -> int | None:
    """Index of one correct (reward 1) rollout drawn uniformly, or ``None`` when none is correct."""
    correct = [i for i, r in enumerate(rewards) if r == 1.0]
    return rng.choice(correct) if correct else None


def _contains_token_run(text: str, needle: str) -> bool:
    if not needle:
        return False
    pattern = r"(?<![A-Za-z0-9.])" + re.escape(needle) + r"(?![A-Za-z0-9]|\.[0-9])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def hint_leak(hint: str, gold: str) -> str | None:
    r"""Why ``hint`` must be dropped: ``"empty"``, ``"boxed"`` (a ``\boxed{}``/``\fbox{}``) or
    ``"gold"`` (the gold answer appears in it); ``None`` when the hint may be used."""
    if not hint or not hint.strip():
        return "empty"
    if _BOXED_RE.search(hint):
        return "boxed"
    gold_raw = " ".join(str(gold).split()).strip().strip("$").strip()
    flat = " ".join(hint.split())
    for needle in {gold_raw, normalize_answer(gold_raw)}:
        if _contains_token_run(flat, needle):
            return "gold"
    return None


def prefix_length(n_tokens: int, alpha: float) -> int:
    """``floor(alpha * n_tokens)`` computed exactly (Prefix baseline, alpha = 0.4)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"prefix alpha must be in [0, 1], got {alpha}")
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
    return int(Fraction(str(alpha)) * n_tokens)  # int() of a non-negative Fraction is its floor


def prefix_ids(teacher_ids: Sequence[int], alpha: float) -> list[int]:
    """The forced prefix: the first ``floor(alpha * L)`` of the teacher's ``L`` response tokens."""
    return [int(t) for t in teacher_ids[: prefix_length(len(teacher_ids), alpha)]]


__all__ = ["LEAK_REASONS", "hard_entries", "hint_leak", "pick_correct", "prefix_ids", "prefix_length"]
