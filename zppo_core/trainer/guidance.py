"""GRPO†+Hint (Alg. 5) and GRPO†+Prefix (Alg. 6): extra student groups on the capped hard set.

Runs after Stage 1 (plain rollouts) of the step, on this rank's share: the selection is
:mod:`zppo_core.guidance` (pure), this module does the I/O.

* **X_aug**: the ``rho_aug * |X_new|`` hardest plain questions of the step (mean plain reward
  < tau, ascending), decided once over all ranks -- exactly ZPPO's global pre-cap. G_T teacher rollouts per question (online, plain prompt p(x), graded by the
  same reward). A question whose teacher rollouts are all wrong gets no extra group.
* **Hint**: one correct teacher rollout (uniform) goes into the Fig. 19 prompt; the teacher's
  answer (its ``<think>`` part removed) is the hint. A hint that states the final answer
  (:func:`zppo_core.guidance.hint_leak`) is dropped and counted (``hint/leaks_dropped``, by reason
  ``hint/dropped_frac/<reason>``); an empty answer (a recorded
  teacher has no hint recorded: ``finish_reason == "missing"``) is dropped and counted
  (``hint/unavailable``). The student samples G_S rollouts on ``x ‖ <hint>h</hint>`` + closer
  with its own uid (own baseline); the hint lives in the prompt, never in the loss.
* **Prefix**: the chosen correct teacher rollout is re-tokenised from its text with the
  STUDENT's tokenizer (so a teacher with a different tokenizer still gives student tokens; with
  the same tokenizer the text is the same), and its first ``floor(alpha * L)`` tokens are
  appended to the rendered plain prompt. The student samples G_S continuations from those ids;
  the prefix is part of ``Rollout.prompt_ids``, so the loss mask covers only the sampled
  continuation. The reward grades prefix text + continuation (the whole trajectory).

Groups get uids ``f"{question_id}:hint:{step}"`` / ``f"{question_id}:prefix:{step}"`` and
kinds ``"hint"`` / ``"prefix"``. Counts land in a :class:`BaselineCounts`; teacher rollouts and
times also in ``sr.counts`` (the ``zppo/teacher_*`` and ``perf/*`` metrics).
"""

from __future__ import annotations

import random
import time
from typing import Any

from zppo_core import zpd
from zppo_core.config import Config
from zppo_core.engines.base import GenerationRequest, SamplingParams
from zppo_core.guidance import hard_entries, hint_leak, pick_correct, prefix_ids
from zppo_core.prompts import build_hint_prompt, build_hint_question, build_plain, strip_think
from zppo_core.trainer.metrics_baselines import BaselineCounts
from zppo_core.trainer.rollout import RolloutIO, StepRollouts, _student_generate, _to_rollouts, make_request
from zppo_core.trainer.state import Parts


def teacher_rollouts(io: RolloutIO, questions: list[dict[str, Any]], n: int, params: SamplingParams):
    """G_T teacher rollouts per question on the plain prompt: ``[(texts, rewards)]`` (missing dropped)."""
    reqs = [make_request(q, build_plain(q["question"]), q["id"], io.load_image) for q in questions]
    out = []
    for q, ss in zip(questions, io.teacher.generate(reqs, n, params) if reqs else []):
        texts = [s.text for s in ss if s.finish_reason != "missing"]
        out.append((texts, io.grade(texts, q)))
    return out


def _hints(io: RolloutIO, cfg: Config, chosen: list[tuple[dict, str]], seed: int,
           counts: BaselineCounts) -> list[tuple[dict, str]]:
    """Teacher hints for ``[(question, correct teacher text)]``; leaking / empty ones dropped."""
    z = cfg.zppo
    params = SamplingParams.from_config(cfg.rollout.teacher, seed=seed, max_new_tokens=z.hint_max_tokens,
                                        temperature=z.hint_temperature)
    reqs = [GenerationRequest(messages=[{"role": "user", "content": build_hint_prompt(t)}], request_id=f"hint:{q['id']}",
                              chat_template_kwargs={"enable_thinking": cfg.model.hint_thinking})
            for q, t in chosen]
    kept = []
    for (q, _), ss in zip(chosen, io.teacher.generate(reqs, 1, params) if reqs else []):
        hint = strip_think(ss[0].text) if ss and ss[0].finish_reason != "missing" else ""
        reason = hint_leak(hint, q["answer"])
        if reason == "empty":
            counts.hint_unavailable += 1
        elif reason is not None:
            counts.hint_leaks += 1
            setattr(counts, f"hint_leak_{reason}", getattr(counts, f"hint_leak_{reason}") + 1)
        else:
            kept.append((q, hint))
    return kept


def _prefix_request(io: RolloutIO, tokenizer: Any, q: dict, text: str, alpha: float, uid: str):
    """(request from the plain prompt ids + the forced prefix, prefix text, prefix length)."""
    plain = make_request(q, build_plain(q["question"]), q["id"], io.load_image)
    prefix = prefix_ids(tokenizer(text, add_special_tokens=False)["input_ids"], alpha)
    req = GenerationRequest(messages=plain.messages, images=plain.images, request_id=uid,
                            prompt_ids=list(io.render(plain)[0]) + prefix)
    return req, tokenizer.decode(prefix), len(prefix)


def _student_groups(io: RolloutIO, items: list[tuple[dict, GenerationRequest, str]], kind: str, n: int,
                    params: SamplingParams, replay_ids: set[str], step: int):
    """G_S student rollouts per ``(question, request, graded text prefix)``; rollouts of ``kind``."""
    rollouts = []
    samples = _student_generate(io, [r for _, r, _ in items], n, params)
    for (q, req, head), ss in zip(items, samples):
        rewards = io.grade([head + s.text for s in ss], q)
        rollouts += _to_rollouts(io, req, ss, rewards, uid=zpd.group_uid(q['id'], kind, step), kind=kind, q=q,
                                 is_replay=q["id"] in replay_ids)
    return rollouts


def _x_aug(parts: Parts, sr: StepRollouts, order: list[int]) -> list[dict[str, Any]]:
    """This rank's questions of the step's X_aug (global pre-cap over every rank's hard ones)."""
    cfg = parts.cfg
    ids = zpd.global_precap(parts.dist.gather(hard_entries(sr.outcomes, order, cfg.zppo.tau)), cfg.aug_cap)
    rank_of = {qid: i for i, qid in enumerate(ids)}
    mine = [q for qid, _, q in sr.outcomes if qid in rank_of]
    return sorted(mine, key=lambda q: rank_of[q["id"]])


def add_guidance_groups(parts: Parts, sr: StepRollouts, counts: BaselineCounts, *, replay_ids: set[str],
                        step: int, order: list[int], seed: int) -> None:
    """Hint or Prefix groups (``zppo.guidance``) for this rank's part of X_aug, appended to ``sr``.

    ``order``: the global position of each of this rank's questions (new, then replayed).
    Every rank calls it (the X_aug gather and a collective student backend need all ranks).
    """
    io, cfg = parts.io, parts.cfg
    z, ro = cfg.zppo, cfg.rollout
    targets = _x_aug(parts, sr, order)
    t0 = time.perf_counter()
    teach = teacher_rollouts(io, targets, ro.teacher_group_size, SamplingParams.from_config(ro.teacher, seed=seed + 2))
    sr.counts.teacher_rollouts += sum(len(r) for _, r in teach)
    sr.counts.teacher_correct += int(sum(sum(r) for _, r in teach))
    rng = random.Random(seed)
    chosen = [(q, texts[i]) for q, (texts, rewards) in zip(targets, teach)
              if (i := pick_correct(rewards, rng)) is not None]
    items: list[tuple[dict, GenerationRequest, str]] = []
    if z.guidance == "hint":
        for q, hint in _hints(io, cfg, chosen, seed + 3, counts):
            text = build_hint_question(q["question"], hint)
            items.append((q, make_request(q, text, f"{q['id']}:hint:{step}", io.load_image), ""))
    else:
        for q, text in chosen:
            req, head, k = _prefix_request(io, parts.tokenizer, q, text, z.prefix_alpha, f"{q['id']}:prefix:{step}")
            items.append((q, req, head))
            counts.prefix_tokens += k
    sr.counts.teacher_time += time.perf_counter() - t0
    t1 = time.perf_counter()
    new = _student_groups(io, items, z.guidance, ro.group_size, SamplingParams.from_config(ro.student, seed=seed + 4),
                          replay_ids, step)
    sr.counts.rollout_time += time.perf_counter() - t1
    sr.rollouts += new
    setattr(counts, f"{z.guidance}_groups", getattr(counts, f"{z.guidance}_groups") + len(items))
    setattr(counts, f"{z.guidance}_rollouts", getattr(counts, f"{z.guidance}_rollouts") + len(new))
    setattr(counts, f"{z.guidance}_reward_sum", getattr(counts, f"{z.guidance}_reward_sum") + sum(r.reward for r in new))


__all__ = ["add_guidance_groups", "teacher_rollouts"]
