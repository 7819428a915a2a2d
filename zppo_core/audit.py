"""Candidate-match audit of BCQ / NCQ rollouts (paper F.7, Tabs. 16-17).

Does the student copy the candidate it was shown? For each student rollout on a reformulated
prompt the audit compares the student's final ``\\boxed{}`` answer with the candidates' answers
under the paper's normalisation (:func:`zppo_core.grading.normalize_answer`: ``\\text{...}``-style
wrappers stripped, whitespace collapsed, lowercase). An empty or missing answer never matches.

* **BCQ match-pos**: on a *correct* BCQ rollout, the answer equals the teacher-correct
  candidate's answer. **BCQ match-neg**: on a *wrong* BCQ rollout, the answer equals the other
  (student-wrong) candidate's answer.
* **NCQ match-neg**: on any NCQ rollout, the answer repeats one of the listed wrong answers.

Candidate answers are the last ``\\boxed{}`` of each candidate's *raw* rollout text (the text the
teacher compressed, so the answer the compressed candidate ends with).

Per-rollout :class:`AuditRecord` objects go to the ``bcq_debug`` / ``ncq_debug`` JSONL files
(bounded by :func:`bounded`); :class:`MatchCounts` are summed over ranks and turned into the
``audit/*`` metrics by :func:`match_metrics` (documented in :mod:`zppo_core.metrics`).

Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from zppo_core.grading import extract_boxed, normalize_answer

KINDS = ("bcq", "ncq")


@dataclass(frozen=True)
class AuditContext:
    """What the student was shown in one reformulated group (from ``zpd.ReformulatedGroup``)."""

    step: int
    question_id: str
    kind: str  # "bcq" | "ncq"
    gold: str
    candidate_answers: list[str | None]  # in prompt order; None when a candidate had no box
    correct_candidate: int | None = None  # BCQ: position of the teacher-correct candidate
    wrong_answers: list[str] = field(default_factory=list)  # NCQ: the listed wrong answers


@dataclass(frozen=True)
class AuditRecord:
    """One student rollout on a BCQ / NCQ prompt (one JSONL line of ``<kind>_debug.jsonl``)."""

    step: int
    question_id: str
    kind: str
    gold: str
    candidate_answers: list[str | None]
    correct_candidate_answer: str | None  # BCQ only
    wrong_candidate_answers: list[str]  # BCQ: the student-wrong candidate's; NCQ: the listed ones
    student_answer: str | None
    reward: float
    match_pos: bool  # answer == the correct candidate's (BCQ; always False for NCQ)
    match_neg: bool  # answer == a wrong candidate's / a listed wrong answer

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def answers_equal(a: str | None, b: str | None) -> bool:
    """Equal under the F.7 normalisation; empty / missing answers never match."""
    na, nb = normalize_answer(a), normalize_answer(b)
    return bool(na) and na == nb


def audit_rollout(ctx: AuditContext, response_text: str, reward: float) -> AuditRecord:
    """The audit record of one student response to the prompt ``ctx`` describes."""
    if ctx.kind not in KINDS:
        raise ValueError(f"audit: kind must be one of {KINDS}, got {ctx.kind!r} (question {ctx.question_id!r})")
    answer = extract_boxed(response_text)
    if ctx.kind == "bcq":
        if ctx.correct_candidate is None or not 0 <= ctx.correct_candidate < len(ctx.candidate_answers):
            raise ValueError(f"audit: BCQ question {ctx.question_id!r} has no valid correct_candidate")
        correct = ctx.candidate_answers[ctx.correct_candidate]
        wrong = [a for i, a in enumerate(ctx.candidate_answers) if i != ctx.correct_candidate and a is not None]
    else:
        correct, wrong = None, list(ctx.wrong_answers)
    return AuditRecord(
        step=ctx.step, question_id=ctx.question_id, kind=ctx.kind, gold=ctx.gold,
        candidate_answers=list(ctx.candidate_answers), correct_candidate_answer=correct,
        wrong_candidate_answers=wrong, student_answer=answer, reward=float(reward),
        match_pos=ctx.kind == "bcq" and answers_equal(answer, correct),
        match_neg=any(answers_equal(answer, w) for w in wrong),
    )


@dataclass
class MatchCounts:
    """Counts behind the F.7 rates (summable over ranks and steps, field by field)."""

    bcq_rollouts: float = 0.0
    bcq_correct: float = 0.0
    bcq_correct_match_pos: float = 0.0  # correct BCQ rollouts that match the correct candidate
    bcq_wrong_match_neg: float = 0.0  # wrong BCQ rollouts that match the wrong candidate
    ncq_rollouts: float = 0.0
    ncq_correct: float = 0.0
    ncq_match_neg: float = 0.0  # NCQ rollouts repeating a listed wrong answer


def is_correct(reward: float) -> bool:
    """Rewards are binary (zpd): correct iff the reward is 1."""
    return reward >= 1.0


def match_counts(records: Iterable[AuditRecord]) -> MatchCounts:
    """Tally records into :class:`MatchCounts`."""
    c = MatchCounts()
    for r in records:
        ok = is_correct(r.reward)
        if r.kind == "bcq":
            c.bcq_rollouts += 1
            c.bcq_correct += ok
            c.bcq_correct_match_pos += ok and r.match_pos
            c.bcq_wrong_match_neg += (not ok) and r.match_neg
        else:
            c.ncq_rollouts += 1
            c.ncq_correct += ok
            c.ncq_match_neg += r.match_neg
    return c


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def match_metrics(c: MatchCounts) -> dict[str, float]:
    """The ``audit/*`` metrics of one step (rates are 0 when their denominator is 0)."""
    bcq_wrong = c.bcq_rollouts - c.bcq_correct
    return {
        "audit/bcq_rollouts": c.bcq_rollouts,
        "audit/bcq_correct": c.bcq_correct,
        "audit/bcq_accuracy": _ratio(c.bcq_correct, c.bcq_rollouts),
        "audit/bcq_match_pos_count": c.bcq_correct_match_pos,
        "audit/bcq_match_pos": _ratio(c.bcq_correct_match_pos, c.bcq_correct),
        "audit/bcq_match_neg_count": c.bcq_wrong_match_neg,
        "audit/bcq_match_neg": _ratio(c.bcq_wrong_match_neg, bcq_wrong),
        "audit/ncq_rollouts": c.ncq_rollouts,
        "audit/ncq_correct": c.ncq_correct,
        "audit/ncq_accuracy": _ratio(c.ncq_correct, c.ncq_rollouts),
        "audit/ncq_match_neg_count": c.ncq_match_neg,
        "audit/ncq_match_neg": _ratio(c.ncq_match_neg, c.ncq_rollouts),
    }


def bounded(records: Sequence[AuditRecord], per_step: int, already: dict[str, int], total: int) -> list[AuditRecord]:
    """The records to write this step: per kind, the first ``per_step`` in rollout order, and no
    more than ``total - already[kind]`` (``already`` counts lines written so far, updated in place)."""
    out: list[AuditRecord] = []
    taken: dict[str, int] = {}
    for r in records:
        n = taken.get(r.kind, 0)
        if n >= per_step or already.get(r.kind, 0) >= total:
            continue
        taken[r.kind] = n + 1
        already[r.kind] = already.get(r.kind, 0) + 1
        out.append(r)
    return out


__all__ = [
    "AuditContext", "AuditRecord", "KINDS", "MatchCounts", "answers_equal", "audit_rollout", "bounded",
    "is_correct", "match_counts", "match_metrics",
]
