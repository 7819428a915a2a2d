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

* Leak check (Hint): the paper has none beyond its prompt, which forbids revealing the final
  answer (Fig. 19). A hint is dropped only when it *states* the final answer: a ``\boxed{}`` /
  ``\fbox{}`` (reason ``"boxed"``); a statement of the gold -- "the (final/correct) answer is
  X", "answer: X", "the correct option is X", "choose X" -- (``"answer_stated"``); or the gold as
  the hint's conclusion -- its last sentence is X, or ends in "= X", "is X", "are X", "be X",
  "gives X", ": X" or "-> X" (``"conclusion"``); "the answer is 1 or 2" states nothing. X matches the gold (raw or normalised by
  ``grading.normalize_answer``) as a whole token run, case-insensitive, optionally in
  parentheses. The gold appearing anywhere else ("Step 1", "the 2 parallel lines", "Find a
  relation", gold ``no``: "no need to expand") keeps the hint: short golds (letters, small
  integers, yes/no) are most of the VLM set, and a whole-word filter dropped most honest hints.
  An equivalent answer in another form (``1/2`` for gold ``0.5``) is not detected. An empty hint
  is dropped too (``"empty"``).
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
LEAK_REASONS = ("empty", "boxed", "answer_stated", "conclusion")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\b")
#: phrases that state an answer, followed by the gold: "the final answer is", "answer:", "choose"
_STATEMENT = (r"(?:\b(?:final\s+|correct\s+)?(?:answer|option|choice|result)\s*(?:is|=|:|would\s+be|should\s+be|"
              r"will\s+be|equals)\s*(?:option\s+|choice\s+)?|\b(?:choose|select|pick)\s+(?:option\s+|choice\s+)?)")
#: a conclusion's last link before the gold: "= X", "is X", "be X", ": X", "-> X"
_CONCLUSION = r"(?:=|\bis|\bare|\bbe|\bgives|:|->|→|⇒)\s*"
#: the gold as a whole token run, maybe in parentheses or $...$
_GOLD = r"[\(\$]?{gold}[\)\$]?(?![A-Za-z0-9]|\.[0-9])"


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


def _gold_forms(gold: str) -> list[str]:
    raw = " ".join(str(gold).split()).strip().strip("$").strip()
    return [g for g in dict.fromkeys([raw, normalize_answer(raw)]) if g]


def _last_sentence(text: str) -> str:
    """The hint's last sentence, without its closing punctuation."""
    body = text.strip().rstrip(".!?;, ").strip()
    parts = re.split(r"(?<=[.!?])\s+|\n+", body)
    return parts[-1].strip() if parts else ""


def hint_leak(hint: str, gold: str) -> str | None:
    r"""Why ``hint`` must be dropped, one of :data:`LEAK_REASONS` (``"empty"``, ``"boxed"``,
    ``"answer_stated"``, ``"conclusion"``), or ``None`` when it may be used: see the module
    docstring. ``hint_leak("Step 1: find a relation between the angles.", "1")`` is ``None``;
    ``hint_leak("... so the answer is (A).", "A")`` is ``"answer_stated"``."""
    if not hint or not hint.strip():
        return "empty"
    if _BOXED_RE.search(hint):
        return "boxed"
    flat = " ".join(hint.split())
    last = _last_sentence(flat)
    for g in _gold_forms(gold):
        gold_re = _GOLD.format(gold=re.escape(g))
        if re.search(_STATEMENT + gold_re + r"(?!\s+or\b)", flat, flags=re.IGNORECASE):  # not "is 1 or 2"
            return "answer_stated"
        if re.fullmatch(gold_re, last, flags=re.IGNORECASE) or \
                re.search(_CONCLUSION + gold_re + r"$", last, flags=re.IGNORECASE):
            return "conclusion"
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
