"""The reading gate of the miniature (run first by ``benchmarks/miniature.py``).

On hard items of the training family (the longest additions, drawn from the training split) it
measures the student's plain accuracy and its accuracy on the same items as BCQ prompts, built
exactly as the trainer builds them: G_S student and G_T teacher rollouts through the real
generation backends, graded by :mod:`zppo_core.grading`, BCQ admissibility / candidate choice /
shuffling by :mod:`zppo_core.zpd`, the prompt by :func:`zppo_core.prompts.build_bcq`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

#: aim of the issue: BCQ accuracy >= plain accuracy + this, on the same hard items
GATE_MARGIN = 0.2


@dataclass
class GateResult:
    """Plain vs BCQ accuracy of the student on hard in-family items."""

    n_items: int  # hard items drawn
    n_bcq: int  # items with a teacher-correct and a student-wrong rollout (BCQ admissible)
    plain_all: float  # student plain accuracy over all drawn items
    plain_on_bcq_items: float  # student plain accuracy on the admissible items
    bcq: float  # student accuracy on the same items as BCQ prompts
    teacher_plain: float  # teacher accuracy (G_T rollouts) over all drawn items
    copy_rate: float  # BCQ answers equal to one of the two candidates' answers
    margin: float = GATE_MARGIN

    @property
    def passed(self) -> bool:
        return self.n_bcq > 0 and self.bcq >= self.plain_on_bcq_items + self.margin

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def lines(self) -> list[str]:
        verdict = "PASSED" if self.passed else "NOT MET"
        return [
            f"reading gate ({self.n_items} hard in-family items, {self.n_bcq} BCQ-admissible):",
            f"  student plain accuracy, all items      {self.plain_all:.3f}",
            f"  student plain accuracy, BCQ items      {self.plain_on_bcq_items:.3f}",
            f"  student BCQ accuracy, same items       {self.bcq:.3f}   (copy rate {self.copy_rate:.2f})",
            f"  teacher plain accuracy                 {self.teacher_plain:.3f}",
            f"  gate: BCQ >= plain + {self.margin:.1f}  ->  {verdict}",
        ]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def reading_gate(cfg: Any, n_items: int, seed: int = 0) -> GateResult:
    """Run the gate for the config's student and teacher (see module docstring)."""
    from zppo_core import grading, zpd
    from zppo_core.engines.base import GenerationRequest, SamplingParams
    from zppo_core.engines.factory import build_backend
    from zppo_core.models import miniature as world
    from zppo_core.prompts import build_plain

    m, ro = cfg.model, cfg.rollout
    student = build_backend("transformers", m.student, dtype=m.dtype)
    teacher = build_backend("transformers", m.teacher, dtype=m.dtype)
    rng = random.Random(seed)
    hard_n = max(world.SPLIT_LENGTHS)
    items = [world.draw_split_item(world.TRAIN_FAMILY, hard_n, rng, test=False) for _ in range(n_items)]
    reqs = [GenerationRequest([{"role": "user", "content": build_plain(it.question)}], request_id=str(i))
            for i, it in enumerate(items)]
    s_out = student.generate(reqs, ro.group_size, SamplingParams.from_config(ro.student, seed=seed))
    t_out = teacher.generate(reqs, ro.teacher_group_size, SamplingParams.from_config(ro.teacher, seed=seed + 1))
    groups, teach, t_rewards = [], {}, []
    for i, (it, ss, ts) in enumerate(zip(items, s_out, t_out)):
        qid = f"gate-{i}"
        rewards = [float(grading.reward(s.text, it.answer)) for s in ss]
        groups.append(zpd.PlainGroup(qid, it.question, it.answer, [s.text for s in ss], rewards, payload=it))
        tr = [float(grading.reward(s.text, it.answer)) for s in ts]
        teach[qid] = zpd.TeacherRollouts(qid, [s.text for s in ts], tr)
        t_rewards += tr
    pre = zpd.precap(groups, cap=len(groups))
    plans = zpd.plan_reformulations(pre, teach, True, False, len(groups), rng)
    refs = zpd.build_reformulated_prompts(plans, None, rng)
    breqs = [GenerationRequest([{"role": "user", "content": r.prompt}], request_id=r.uid) for r in refs]
    b_out = student.generate(breqs, ro.group_size, SamplingParams.from_config(ro.student, seed=seed + 2))
    by_id = {g.question_id: g for g in groups}
    bcq_scores, copies = [], []
    for ref, ss in zip(refs, b_out):
        cand_answers = {grading.extract_boxed(c) for c in _candidates(ref.prompt)}
        for s in ss:
            bcq_scores.append(float(grading.reward(s.text, ref.gold)))
            copies.append(float(grading.extract_boxed(s.text) in cand_answers))
    return GateResult(
        n_items=len(items), n_bcq=len(refs),
        plain_all=_mean([r for g in groups for r in g.rewards]),
        plain_on_bcq_items=_mean([r for ref in refs for r in by_id[ref.question_id].rewards]),
        bcq=_mean(bcq_scores), teacher_plain=_mean(t_rewards), copy_rate=_mean(copies),
    )


def _candidates(prompt: str) -> list[str]:
    """The candidate texts of a BCQ prompt (the ``<candidate>\n...\n</candidate>`` blocks; the
    instruction sentence names the tags too, on one line)."""
    parts = prompt.split("<candidate>\n")[1:]
    return [p.split("\n</candidate>")[0] for p in parts]


__all__ = ["GATE_MARGIN", "GateResult", "reading_gate"]
