"""Stages 1-5 of Algorithm 1 on one rank: plain rollouts, teacher rollouts, compression,
BCQ/NCQ groups. Returns every student rollout of the step plus the plain outcomes that drive
the replay buffer.

The selection logic (hard set, pre-cap, BCQ/NCQ admissibility, post-cap, prompts) is
:mod:`zppo_core.zpd`; this module only does the I/O between its pure functions: generation
through the backends and grading through :mod:`zppo_core.grading`.

Documented choices:

* Teacher prompt = the plain prompt p(x) (paper: INFERRED). Teacher requests carry the question
  id as ``request_id`` so the offline *recorded* teacher finds its stored response.
* Compression goes through the teacher backend (Fig. 16 prompt, ``zppo.compression_max_tokens``,
  ``zppo.compression_temperature``). When the backend returns nothing usable (a recorded teacher
  has no recording of a compression request: ``finish_reason == "missing"``, or an empty
  parse), the raw candidate text is used and counted in ``zppo/compression_fallbacks``.
* Selection is global (Algorithm 1 over the whole step, whatever the number of ranks): the
  hard questions' ``(order, id, mean accuracy)`` are gathered to every rank, the pre-cap is
  taken once over all of them (:func:`zppo_core.zpd.global_precap`), each rank runs the
  teacher on its own pre-capped questions, and the post-cap ranks the plans of all ranks
  (:func:`zppo_core.zpd.global_postcap`). Every rank makes the same gathers in the same order.
* A plain prompt longer than ``rollout.max_prompt_tokens`` is an error naming the question
  (curation drops such rows; a longer one means the data were not curated for this limit).
* A question whose image cannot be loaded (unreadable, truncated, over PIL's pixel limit) is
  dropped from the step with a warning naming its id and path, and counted in
  ``rollout/image_load_skipped``; the data cursor has moved past it, so a resume does not
  meet it again at the same step.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from zppo_core import zpd
from zppo_core.audit import AuditContext, AuditRecord, audit_rollout
from zppo_core.config import Config
from zppo_core.engines.base import GenerationBackend, GenerationRequest, Sample, SamplingParams
from zppo_core.engines.render import ImageLoadError
from zppo_core.prompts import RL_CLOSER, add_closer, build_compression_prompt, build_plain, parse_compression
from zppo_core.trainer.batch import Rollout

log = logging.getLogger(__name__)

#: (request) -> (prompt_ids, multimodal tensors or None), same tokenisation as generation
RenderFn = Callable[[GenerationRequest], tuple[list[int], dict[str, Any] | None]]
#: (response texts of one group, question dict) -> rewards in {0, 1}
GradeFn = Callable[[list[str], dict[str, Any]], list[float]]
#: every rank's list concatenated in rank order (a collective); identity on one process
GatherFn = Callable[[list[Any]], list[Any]]


@dataclass
class RolloutIO:
    """The I/O a step needs: backends, the renderer and the grader."""

    student: GenerationBackend
    teacher: GenerationBackend | None
    render: RenderFn
    grade: GradeFn
    load_image: Callable[[str], Any]


@dataclass
class StageCounts:
    """This rank's per-step counters of Stages 1-5 (summed over ranks for the step's metrics)."""

    questions: int = 0  # plain groups (new + replay) rolled out
    hard: int = 0  # questions with mean plain reward <= tau
    bcq: int = 0  # BCQ groups built
    ncq: int = 0  # NCQ groups built
    teacher_rollouts: int = 0  # usable teacher responses
    teacher_correct: int = 0  # of which correct
    compressions: int = 0  # compression requests
    compression_fallbacks: int = 0  # of which the raw candidate was kept
    judged: int = 0  # rollouts graded by the LLM judge
    judge_malformed: int = 0  # of which the verdict was unparseable (reward 0)
    image_skipped: int = 0  # questions dropped because their image could not be loaded
    rollout_time: float = 0.0  # seconds in student generation
    teacher_time: float = 0.0  # seconds in teacher generation + compression


@dataclass
class StepRollouts:
    """Output of :func:`collect`: gradient rollouts, plain outcomes and stage counters."""

    rollouts: list[Rollout]
    outcomes: list[tuple[str, float, dict[str, Any]]]  # (question id, mean plain reward, question)
    counts: StageCounts = field(default_factory=StageCounts)
    #: candidate-match audit of every BCQ/NCQ rollout, in rollout order (:mod:`zppo_core.audit`)
    audit: list[AuditRecord] = field(default_factory=list)


def make_request(q: dict[str, Any], text: str, request_id: str, load_image: Callable[[str], Any]) -> GenerationRequest:
    """Chat request for question ``q`` with user text ``text`` (its image, if any, attached)."""
    images = [load_image(q["image_path"])] if q.get("image_path") else []
    return GenerationRequest(messages=[{"role": "user", "content": text}], images=images, request_id=request_id)


def _to_rollouts(
    io: RolloutIO, req: GenerationRequest, samples: list[Sample], rewards: list[float], *, uid: str, kind: str,
    q: dict[str, Any], is_replay: bool, max_prompt_tokens: int = 0,
) -> list[Rollout]:
    prompt_ids, mm = io.render(req)
    if max_prompt_tokens and kind == "plain" and len(prompt_ids) > max_prompt_tokens:
        raise ValueError(f"question {q['id']!r}: plain prompt has {len(prompt_ids)} tokens > "
                         f"rollout.max_prompt_tokens={max_prompt_tokens}")
    out = []
    for s, r in zip(samples, rewards):
        if s.prompt_ids is not None and list(s.prompt_ids) != list(prompt_ids):
            raise RuntimeError(
                f"question {q['id']!r} ({kind}): the backend generated from prompt ids that differ from "
                "the trainer's rendering; the loss would not score the sampled sequence"
            )
        out.append(Rollout(uid=uid, kind=kind, question_id=q["id"], prompt_ids=list(prompt_ids),
                           response_ids=list(s.token_ids), reward=float(r), finish_reason=s.finish_reason,
                           sampler_logprobs=s.logprobs, mm=mm, is_replay=is_replay))
    return out


def _student_generate(io: RolloutIO, reqs: list[GenerationRequest], n: int, params: SamplingParams):
    """Student samples; a collective backend (sharded live module) is called even with no requests."""
    if reqs or getattr(io.student, "is_collective", False):
        return io.student.generate(reqs, n, params)
    return []


def loadable_requests(io, questions, replay_flags):
    """Plain requests of the questions whose image loads; returns (kept (q, is_replay, request)
    triples, number skipped). Each skip is logged with the question id and image path."""
    kept, skipped = [], 0
    for q, rep in zip(questions, replay_flags):
        try:
            kept.append((q, rep, make_request(q, build_plain(q["question"]), q["id"], io.load_image)))
        except ImageLoadError as e:
            skipped += 1
            log.warning("skipping question %r: its image %s cannot be loaded (%s)", q["id"], q.get("image_path"), e)
    return kept, skipped


def plain_stage(io, questions, replay_flags, n, params, step, max_prompt_tokens=0):
    """Stage 1: G_S student rollouts per question; returns (PlainGroups, rollouts, questions
    skipped because their image could not be loaded)."""
    kept, skipped = loadable_requests(io, questions, replay_flags)
    reqs = [req for _, _, req in kept]
    samples = _student_generate(io, reqs, n, params)
    groups, rollouts = [], []
    for (q, rep, req), ss in zip(kept, samples):
        rewards = io.grade([s.text for s in ss], q)
        groups.append(zpd.PlainGroup(q["id"], q["question"], q["answer"], [s.text for s in ss], rewards,
                                     payload=q, is_new=not rep))
        rollouts += _to_rollouts(io, req, ss, rewards, uid=zpd.group_uid(q['id'], "plain", step), kind="plain", q=q,
                                 is_replay=rep, max_prompt_tokens=max_prompt_tokens)
    return groups, rollouts, skipped


def teacher_stage(io, targets, n, params):
    """Stage 2: G_T teacher rollouts per target question, graded like the student's."""
    reqs = [make_request(g.payload, build_plain(g.question), g.question_id, io.load_image) for g in targets]
    samples = io.teacher.generate(reqs, n, params) if reqs else []
    out = {}
    for g, ss in zip(targets, samples):
        ok = [s for s in ss if s.finish_reason != "missing"]
        rewards = io.grade([s.text for s in ok], g.payload)
        out[g.question_id] = zpd.TeacherRollouts(g.question_id, [s.text for s in ok], rewards)
    return out


def compress_stage(io, inputs: dict[str, str], params, thinking: bool = False):
    """Candidate compression through the teacher backend (``thinking``: its chat template's
    thinking mode, ``model.compressor_thinking``); raw text where it gives nothing."""
    keys = list(inputs)
    reqs = [
        GenerationRequest(messages=[{"role": "user", "content": build_compression_prompt(inputs[k])}],
                          request_id=f"compress:{k}", chat_template_kwargs={"enable_thinking": thinking})
        for k in keys
    ]
    samples = io.teacher.generate(reqs, 1, params) if reqs else []
    out, fallbacks = {}, 0
    for k, ss in zip(keys, samples):
        text = parse_compression(ss[0].text) if ss and ss[0].finish_reason != "missing" else ""
        if not text.strip():
            text, fallbacks = inputs[k], fallbacks + 1
        out[k] = text
    return out, fallbacks


def _audit_context(ref: zpd.ReformulatedGroup, step: int) -> AuditContext:
    return AuditContext(step=step, question_id=ref.question_id, kind=ref.kind, gold=ref.gold,
                        candidate_answers=list(ref.candidate_answers), correct_candidate=ref.correct_candidate,
                        wrong_answers=list(ref.wrong_answers))


def reformulated_stage(io, refs: list[zpd.ReformulatedGroup], n, params, step: int):
    """Stage 5: G_S student rollouts on each BCQ/NCQ prompt, graded against the ORIGINAL gold.

    Returns ``(rollouts, audit records)``: one :class:`AuditRecord` per rollout (F.7)."""
    reqs = []
    for ref in refs:
        text = ref.prompt if ref.prompt.rstrip().endswith(RL_CLOSER) else add_closer(ref.prompt)
        reqs.append(make_request(ref.payload, text, ref.uid, io.load_image))
    samples = _student_generate(io, reqs, n, params)
    rollouts, audit = [], []
    for ref, req, ss in zip(refs, reqs, samples):
        rewards = io.grade([s.text for s in ss], ref.payload)
        rollouts += _to_rollouts(io, req, ss, rewards, uid=ref.uid, kind=ref.kind, q=ref.payload, is_replay=not ref.is_new)
        ctx = _audit_context(ref, step)
        audit += [audit_rollout(ctx, s.text, r) for s, r in zip(ss, rewards)]
    return rollouts, audit


def collect(io: RolloutIO, cfg: Config, new_qs, replay_qs, *, step: int, cap: int, seed: int,
            order: Sequence[int] | None = None, gather: GatherFn | None = None) -> StepRollouts:
    """Stages 1-5 for this rank's new + replayed questions (see module docstring).

    ``cap``: the step's global ``Config.aug_cap``; ``order``: each question's position in the
    step's global order (default: its position here); ``gather``: ``Dist.gather`` when several
    ranks share the step (default: one process).
    """
    z, ro = cfg.zppo, cfg.rollout
    gather = gather or list
    questions = new_qs + replay_qs
    order = list(order) if order is not None else list(range(len(questions)))
    student_p = SamplingParams.from_config(ro.student, seed=seed)
    judge_counts = getattr(io.grade, "counts", None)  # a Grader counts what its judge graded
    judged0 = replace(judge_counts) if judge_counts is not None else None
    t0 = time.perf_counter()
    groups, rollouts, skipped = plain_stage(io, questions, [False] * len(new_qs) + [True] * len(replay_qs),
                                            ro.group_size, student_p, step, ro.max_prompt_tokens)
    outcomes = [(g.question_id, g.mean_accuracy, g.payload) for g in groups]
    hard = zpd.hard_questions(groups, z.tau)
    counts = StageCounts(questions=len(groups), hard=len(hard), image_skipped=skipped,
                         rollout_time=time.perf_counter() - t0)
    sr = StepRollouts(rollouts, outcomes, counts)
    if z.use_bcq or z.use_ncq:
        pos = {q["id"]: k for q, k in zip(questions, order)}
        every_hard = gather([(pos[g.question_id], g.question_id, g.mean_accuracy) for g in hard])
        if every_hard:  # the same on every rank: all ranks go on, or none
            _reformulate(io, cfg, hard, sr, step=step, seed=seed, precap_ids=zpd.global_precap(every_hard, cap),
                         cap=cap, gather=gather)
    if judge_counts is not None and judged0 is not None:
        counts.judged = judge_counts.judged - judged0.judged
        counts.judge_malformed = judge_counts.judge_malformed - judged0.judge_malformed
    return sr


def _reformulate(io: RolloutIO, cfg: Config, hard, sr: StepRollouts, *, step: int, seed: int,
                 precap_ids: list[str], cap: int, gather: GatherFn) -> None:
    """Stages 2-5 on this rank's part of the globally pre-capped questions; appends to ``sr``."""
    z, ro, counts = cfg.zppo, cfg.rollout, sr.counts
    rng = random.Random(seed)
    rank_of = {qid: i for i, qid in enumerate(precap_ids)}
    pre = zpd.precapped(hard, precap_ids)
    teacher = None
    t1 = time.perf_counter()
    if z.use_bcq:
        targets = pre if z.teacher_on_precap_only else hard
        teacher = teacher_stage(io, targets, ro.teacher_group_size, SamplingParams.from_config(ro.teacher, seed=seed + 2))
        counts.teacher_rollouts = sum(len(t.rewards) for t in teacher.values())
        counts.teacher_correct = sum(len(t.correct_indices) for t in teacher.values())
    local = zpd.plan_reformulations(pre, teacher, z.use_bcq, z.use_ncq, len(zpd.KINDS) * len(pre), rng)
    kept = zpd.global_postcap(gather([(rank_of[p.group.question_id], zpd.KINDS.index(p.kind), p.group.question_id,
                                       p.kind) for p in local]), cap)
    plans = [p for p in local if (p.group.question_id, p.kind) in kept]
    compressed = None
    if z.compression and plans:
        inputs = zpd.compression_inputs(plans)
        cparams = SamplingParams.from_config(ro.teacher, seed=seed + 3, max_new_tokens=z.compression_max_tokens,
                                             temperature=z.compression_temperature)
        compressed, fb = compress_stage(io, inputs, cparams, cfg.model.compressor_thinking)
        counts.compressions, counts.compression_fallbacks = len(inputs), fb
    counts.teacher_time = time.perf_counter() - t1
    refs = zpd.build_reformulated_prompts(plans, compressed, rng, ncq_order=z.ncq_order, step=step)
    t2 = time.perf_counter()
    ref_p = SamplingParams.from_config(ro.student, seed=seed + 1)
    rollouts, audit = reformulated_stage(io, refs, ro.group_size, ref_p, step)
    sr.rollouts += rollouts
    sr.audit += audit
    counts.rollout_time += time.perf_counter() - t2
    counts.bcq = sum(r.kind == "bcq" for r in refs)
    counts.ncq = sum(r.kind == "ncq" for r in refs)


__all__ = ["RolloutIO", "StageCounts", "StepRollouts", "collect", "loadable_requests", "make_request"]
