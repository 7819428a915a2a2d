"""Zone of proximal development: from one step's plain groups to BCQ / NCQ prompts (Algorithm 1).

Pure functions over plain dataclasses; the I/O between them (teacher rollouts, teacher
compression, student rollouts) belongs to the trainer. One step reads:

1. ``hard = hard_questions(groups, tau)``                     mean plain accuracy < tau
2. ``pre = precap(hard, cap)``                                  ascending accuracy, first ``cap``
   (over several ranks: ``precapped(hard, global_precap(every rank's hard, cap))``)
3. teacher rollouts on ``pre`` (or on all of ``hard``)          -- I/O, trainer
4. ``plans = plan_reformulations(pre, teacher, use_bcq, use_ncq, cap, rng)``
5. ``texts = compression_inputs(plans)``; compress each text   -- I/O, trainer (optional)
6. ``refs = build_reformulated_prompts(plans, compressed_or_None, rng, step=step)``

Documented choices where the paper is silent:

* Rewards are binary: a rollout is correct iff its reward is 1.0 and wrong iff 0.0; any other
  value is rejected with an error naming the question.
* Pre-cap tie-break: Python's stable sort, i.e. order of appearance in ``groups``. The trainer
  passes new questions (loader order) before replayed ones (buffer sample order).
* RNG draw order (one ``random.Random`` per step, seeded by the trainer): in plan order, BCQ
  draws the teacher-correct index, then the student-wrong index; the BCQ shuffle and optional
  NCQ shuffle happen in ``build_reformulated_prompts``, in plan order.
* NCQ answer list: last ``\\boxed{}`` of every wrong *raw* rollout (``grading.extract_boxed``),
  passed parallel to the traces to ``prompts.build_ncq``, which deduplicates in first-seen order
  and skips unparseable ones (their trace still appears). ``ncq_order="shuffle"`` shuffles the
  (trace, answer) pairs first.
* Each reformulated group gets uid :func:`group_uid` (its own baseline) and the
  ORIGINAL gold answer; duplicate question ids within one step are rejected.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from zppo_core.config.schema import NCQ_ORDERS
from zppo_core.grading import extract_boxed
from zppo_core.prompts import build_bcq, build_ncq

KINDS = ("bcq", "ncq")


def group_uid(question_id: str, kind: str, step: int) -> str:
    """The id of one group of rollouts, its own advantage baseline: ``"<question id>:<kind>:<step>"``
    with ``kind`` plain | bcq | ncq | hint | prefix | teacher (one group per question, kind and step)."""
    return f"{question_id}:{kind}:{step}"


def _check_binary(question_id: str, what: str, rewards: Sequence[float]) -> None:
    for i, r in enumerate(rewards):
        if r not in (0.0, 1.0):
            raise ValueError(f"question {question_id!r}: {what} reward[{i}] = {r!r}; ZPPO rewards are 0 or 1")


@dataclass
class PlainGroup:
    """One question's plain rollout group of this step (G_S responses)."""

    question_id: str
    question: str
    gold: str
    responses: list[str]
    rewards: list[float]
    payload: Any = None  # images / source row, carried unchanged to reformulated groups
    is_new: bool = True  # False for questions replayed from the buffer

    def __post_init__(self) -> None:
        if not self.responses:
            raise ValueError(f"question {self.question_id!r}: plain group has no responses")
        if len(self.responses) != len(self.rewards):
            raise ValueError(
                f"question {self.question_id!r}: {len(self.responses)} responses but {len(self.rewards)} rewards"
            )
        _check_binary(self.question_id, "student", self.rewards)

    @property
    def mean_accuracy(self) -> float:
        return sum(self.rewards) / len(self.rewards)

    @property
    def wrong_indices(self) -> list[int]:
        return [i for i, r in enumerate(self.rewards) if r == 0.0]


@dataclass
class TeacherRollouts:
    """The teacher's G_T rollouts on a hard question (re-sampled on every visit)."""

    question_id: str
    responses: list[str]
    rewards: list[float]

    def __post_init__(self) -> None:
        if len(self.responses) != len(self.rewards):
            raise ValueError(
                f"question {self.question_id!r}: {len(self.responses)} teacher responses but "
                f"{len(self.rewards)} rewards"
            )
        _check_binary(self.question_id, "teacher", self.rewards)

    @property
    def correct_indices(self) -> list[int]:
        return [i for i, r in enumerate(self.rewards) if r == 1.0]


@dataclass(frozen=True)
class Candidate:
    """One rollout placed in a reformulated prompt; ``key`` names it for compression."""

    key: str  # f"{question_id}/student/{index}" or f"{question_id}/teacher/{index}"
    source: str  # "student" | "teacher"
    index: int  # rollout index within its group
    text: str  # raw rollout text


@dataclass
class ReformulationPlan:
    """A BCQ or NCQ instance chosen for this step (before compression and prompt building).

    BCQ candidates are ``[teacher_correct, student_wrong]`` (shuffled later); NCQ candidates are
    every wrong student rollout of the group in rollout order.
    """

    kind: str
    group: PlainGroup
    candidates: list[Candidate]


@dataclass
class ReformulatedGroup:
    """A reformulated prompt ready for G_S student rollouts, graded against ``gold``."""

    uid: str
    kind: str
    question_id: str
    prompt: str  # full user message: reformulated question + RL closer (``prompts.build_bcq/ncq``)
    gold: str  # ORIGINAL gold answer a*
    payload: Any
    candidate_keys: list[str]  # in prompt order
    correct_candidate: int | None = None  # BCQ: position of the teacher-correct candidate
    wrong_answers: list[str] = field(default_factory=list)  # NCQ: listed WRONG answers
    #: last ``\\boxed{}`` of each candidate's raw rollout, in prompt order (None: no box); for
    #: the candidate-match audit (:mod:`zppo_core.audit`), never shown to the student as such
    candidate_answers: list[str | None] = field(default_factory=list)
    source_accuracy: float = 0.0  # plain mean accuracy of the question this step
    is_new: bool = True


def hard_questions(groups: Sequence[PlainGroup], tau: float) -> list[PlainGroup]:
    """Questions whose plain mean accuracy is ``< tau`` (new and replayed alike), in input order."""
    return [g for g in groups if g.mean_accuracy < tau]


def precap(groups: Sequence[PlainGroup], cap: int) -> list[PlainGroup]:
    """The ``cap`` lowest-accuracy groups, ascending; ties keep their order in ``groups``."""
    if cap < 0:
        raise ValueError(f"cap must be >= 0, got {cap}")
    return sorted(groups, key=lambda g: g.mean_accuracy)[:cap]


def global_precap(entries: Sequence[tuple[int, str, float]], cap: int) -> list[str]:
    """Pre-cap over the hard questions of ALL ranks: ``entries`` are ``(order, question_id,
    mean_accuracy)`` gathered from every rank (``order``: the question's position in the step's
    global order, new questions before replayed ones). Returns the ``cap`` lowest-accuracy ids,
    ascending, ties by ``order`` -- the same list on every rank, and on one process exactly
    :func:`precap`."""
    if cap < 0:
        raise ValueError(f"cap must be >= 0, got {cap}")
    return [qid for _, qid, _ in sorted(entries, key=lambda e: (e[2], e[0]))[:cap]]


def global_postcap(entries: Sequence[tuple[int, int, str, str]], cap: int) -> set[tuple[str, str]]:
    """Post-cap over the plans of ALL ranks: ``entries`` are ``(precap_position, kind_position,
    question_id, kind)`` (kind_position 0 for BCQ, 1 for NCQ). Keeps the first ``cap`` in that
    order -- the truncation of :func:`plan_reformulations`, made once for all ranks."""
    return {(qid, kind) for _, _, qid, kind in sorted(entries)[: max(cap, 0)]}


def precapped(hard: Sequence[PlainGroup], precap_ids: Sequence[str]) -> list[PlainGroup]:
    """The groups of ``hard`` (one rank's) in the global pre-cap ``precap_ids``
    (:func:`global_precap`), in its order. The teacher draws on these, or on every hard group
    (``ZPPOConfig.teacher_on_precap_only``): the training data is the same either way, since NCQ
    is always admissible for a hard question and the pre-cap never depends on teacher outcomes."""
    rank_of = {qid: i for i, qid in enumerate(precap_ids)}
    return sorted((g for g in hard if g.question_id in rank_of), key=lambda g: rank_of[g.question_id])


def _bcq_plan(group: PlainGroup, teacher: TeacherRollouts, rng: random.Random) -> ReformulationPlan | None:
    pos, wrong = teacher.correct_indices, group.wrong_indices
    if not pos or not wrong:
        return None
    t, s = rng.choice(pos), rng.choice(wrong)
    qid = group.question_id
    return ReformulationPlan(
        kind="bcq",
        group=group,
        candidates=[
            Candidate(f"{qid}/teacher/{t}", "teacher", t, teacher.responses[t]),
            Candidate(f"{qid}/student/{s}", "student", s, group.responses[s]),
        ],
    )


def _ncq_plan(group: PlainGroup) -> ReformulationPlan | None:
    qid = group.question_id
    cands = [Candidate(f"{qid}/student/{i}", "student", i, group.responses[i]) for i in group.wrong_indices]
    return ReformulationPlan(kind="ncq", group=group, candidates=cands) if cands else None


def plan_reformulations(
    precapped: Sequence[PlainGroup],
    teacher: Mapping[str, TeacherRollouts] | None,
    use_bcq: bool,
    use_ncq: bool,
    cap: int,
    rng: random.Random,
) -> list[ReformulationPlan]:
    """Algorithm 1 Stage 4 + post-cap: BCQ (if admissible) then NCQ per question, truncated to ``cap``.

    Args:
        precapped: output of :func:`precap` (ascending accuracy).
        teacher: question_id -> :class:`TeacherRollouts`; required for every question when
            ``use_bcq`` (a question whose teacher rollouts are all wrong just gets no BCQ).
        use_bcq, use_ncq: method switches (``ZPPOConfig.use_bcq/use_ncq``).
        cap: ``Config.aug_cap``; the ordered list is truncated to it (BCQ before NCQ within a
            question, so a last single slot keeps BCQ).
        rng: the step's seeded ``random.Random``.
    """
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    seen: set[str] = set()
    plans: list[ReformulationPlan] = []
    for g in precapped:
        if g.question_id in seen:
            raise ValueError(f"question {g.question_id!r} appears twice in one step")
        seen.add(g.question_id)
        if use_bcq:
            if teacher is None or g.question_id not in teacher:
                raise KeyError(f"no teacher rollouts for hard question {g.question_id!r} (BCQ is on)")
            bcq = _bcq_plan(g, teacher[g.question_id], rng)
            if bcq is not None:
                plans.append(bcq)
        if use_ncq:
            ncq = _ncq_plan(g)
            if ncq is not None:
                plans.append(ncq)
    return plans[: max(cap, 0)]


def compression_inputs(plans: Sequence[ReformulationPlan]) -> dict[str, str]:
    """Every distinct candidate to compress, ``key -> raw text`` in first-use order.

    BCQ's student-wrong candidate is also one of the same question's NCQ candidates; it shares
    the key, so it is compressed once and reads identically in both prompts.
    """
    out: dict[str, str] = {}
    for p in plans:
        for c in p.candidates:
            out.setdefault(c.key, c.text)
    return out


def _texts(cands: Sequence[Candidate], compressed: Mapping[str, str] | None) -> list[str]:
    if compressed is None:
        return [c.text for c in cands]
    missing = [c.key for c in cands if c.key not in compressed]
    if missing:
        raise KeyError(f"no compressed text for candidate(s) {missing}")
    return [compressed[c.key] for c in cands]


def _build_one(plan: ReformulationPlan, compressed, rng: random.Random, ncq_order: str, step: int) -> ReformulatedGroup:
    g = plan.group
    cands = list(plan.candidates)
    common = dict(
        uid=group_uid(g.question_id, plan.kind, step),
        kind=plan.kind,
        question_id=g.question_id,
        gold=g.gold,
        payload=g.payload,
        source_accuracy=g.mean_accuracy,
        is_new=g.is_new,
    )
    if plan.kind == "bcq":
        rng.shuffle(cands)
        correct = next(i for i, c in enumerate(cands) if c.source == "teacher")
        prompt = build_bcq(g.question, _texts(cands, compressed))
        return ReformulatedGroup(prompt=prompt, candidate_keys=[c.key for c in cands], correct_candidate=correct,
                                 candidate_answers=[extract_boxed(c.text) for c in cands], **common)
    if ncq_order == "shuffle":
        rng.shuffle(cands)
    parsed = [extract_boxed(c.text) for c in cands]  # parallel to cands; None when unparseable
    listed: list[str] = []  # what the prompt lists: stripped, non-empty, first-seen order
    for a in parsed:
        if a is not None and a.strip() and a.strip() not in listed:
            listed.append(a.strip())
    prompt = build_ncq(g.question, parsed, _texts(cands, compressed))
    return ReformulatedGroup(prompt=prompt, candidate_keys=[c.key for c in cands], wrong_answers=listed,
                             candidate_answers=parsed, **common)


def build_reformulated_prompts(
    plans: Sequence[ReformulationPlan],
    compressed: Mapping[str, str] | None,
    rng: random.Random,
    ncq_order: str = "rollout",
    step: int = 0,
) -> list[ReformulatedGroup]:
    """Turn plans into prompts (Fig. 17 / Fig. 18 templates via ``zppo_core.prompts``).

    Args:
        plans: output of :func:`plan_reformulations`.
        compressed: ``candidate key -> compressed text`` (the compressor output parsed with
            ``prompts.parse_compression``) for every key of :func:`compression_inputs`;
            ``None`` when compression is off (``ZPPOConfig.compression``), in
            which case the raw rollout texts are used as candidates.
        rng: the step's seeded ``random.Random`` (BCQ order shuffle, optional NCQ shuffle).
        ncq_order: ``"rollout"`` (as sampled) or ``"shuffle"`` (``ZPPOConfig.ncq_order``).
        step: the rollout step, part of every uid.
    """
    if ncq_order not in NCQ_ORDERS:
        raise ValueError(f"ncq_order: {ncq_order!r} not in {'|'.join(NCQ_ORDERS)}")
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    out = [_build_one(p, compressed, rng, ncq_order, step) for p in plans]
    uids = [r.uid for r in out]
    if len(set(uids)) != len(uids):
        dup = sorted({u for u in uids if uids.count(u) > 1})
        raise ValueError(f"duplicate reformulated uids {dup}: a question appears twice in one step")
    return out


def reformulation_stats(
    groups: Sequence[PlainGroup], tau: float, precapped: Sequence[PlainGroup],
    teacher: Mapping[str, TeacherRollouts] | None, plans: Sequence[ReformulationPlan],
) -> dict[str, float]:
    """Counts for logging one step's ZPD stage (python numbers)."""
    n_hard = len(hard_questions(groups, tau))
    no_teacher = sum(
        1 for g in precapped if teacher is not None and g.question_id in teacher
        and not teacher[g.question_id].correct_indices
    )
    n_bcq = sum(p.kind == "bcq" for p in plans)
    return {
        "n_questions": len(groups),
        "n_hard": n_hard,
        "hard_fraction": n_hard / len(groups) if groups else 0.0,
        "n_precap": len(precapped),
        "n_bcq": n_bcq,
        "n_ncq": len(plans) - n_bcq,
        "n_teacher_all_wrong": no_teacher,
    }


__all__ = [
    "KINDS",
    "NCQ_ORDERS",
    "Candidate",
    "PlainGroup",
    "ReformulatedGroup",
    "ReformulationPlan",
    "TeacherRollouts",
    "build_reformulated_prompts",
    "compression_inputs",
    "hard_questions",
    "plan_reformulations",
    "global_postcap",
    "global_precap",
    "group_uid",
    "precap",
    "precapped",
    "reformulation_stats",
]
