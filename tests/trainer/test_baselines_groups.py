"""GRPO†+Prefix and GRPO†+Hint groups through the real tokenisation path of the tiny model (as
tests/trainer/test_on_policy_invariant.py): the forced teacher prefix and the hint live in the
prompt ids, the loss mask covers exactly the student's sampled tokens, and the trainer scores
those tokens under the same policy as the sampler did. Plus the distillation tokenizer check."""

from __future__ import annotations

import shutil

import pytest
import torch

from zppo_core.guidance import prefix_length
from zppo_core.trainer.batch import collate, split_rows, token_logprobs
from zppo_core.trainer.guidance import add_guidance_groups
from zppo_core.trainer.metrics_baselines import BaselineCounts
from zppo_core.trainer.rollout import collect
from zppo_core.trainer.setup import build_parts

CLEAN_HINT = "<think>ok</think>Work out the sum digit by digit."


def _parts(tmp_path, micro_config, method, **over):
    from zppo_core.models import resolve

    cfg = micro_config(tmp_path, **{"zppo.method": method, "zppo.rho_aug": 1.0, "rollout.student.max_new_tokens": 12,
                                    **over})
    return cfg, build_parts(cfg, tmp_path / "run", resolve(cfg.model.student))


def _check_mask_and_logprobs(parts, rollouts):
    batch = collate(rollouts, parts.pad_id, parts.vision_ids)
    with torch.no_grad():
        lp = token_logprobs(parts.model, batch)
    targets = batch.input_ids[:, 1:]
    for i, r in enumerate(rollouts):
        p, n = len(r.prompt_ids), len(r.response_ids)
        mask = batch.response_mask[i]
        assert int(mask.sum()) == n and targets[i][mask].tolist() == r.response_ids
        assert not mask[: p - 1].any() and not mask[p - 1 + n :].any()
        assert r.sampler_logprobs is not None and len(r.sampler_logprobs) == n
    for r, row in zip(rollouts, split_rows(lp, batch)):
        torch.testing.assert_close(row, torch.tensor(r.sampler_logprobs), atol=2e-4, rtol=1e-4)
    return batch


def test_prefix_tokens_are_prompt_context_never_in_the_loss(tmp_path, micro_config):
    cfg, parts = _parts(tmp_path, micro_config, "grpo_replay_prefix")
    tok = parts.tokenizer
    qs = parts.questions[:4]
    sr = collect(parts.io, cfg, qs, [], step=1, cap=cfg.aug_cap, seed=5)
    counts = BaselineCounts()
    add_guidance_groups(parts, sr, counts, replay_ids=set(), step=1, order=list(range(len(qs))), seed=5)
    prefix = [r for r in sr.rollouts if r.kind == "prefix"]
    assert prefix and counts.prefix_groups == len({r.uid for r in prefix}) > 0
    assert len(prefix) == cfg.rollout.group_size * counts.prefix_groups
    plain = {r.question_id: r.prompt_ids for r in sr.rollouts if r.kind == "plain"}
    by_id = {q["id"]: q for q in qs}
    total_prefix = 0
    for r in prefix:
        assert r.uid == f"{r.question_id}:prefix:1"
        # the teacher rollout, re-tokenised with the student's tokenizer, cut at floor(0.4 L)
        teacher_ids = tok(by_id[r.question_id]["teacher_response"], add_special_tokens=False)["input_ids"]
        k = prefix_length(len(teacher_ids), 0.4)
        assert k > 0 and r.prompt_ids == plain[r.question_id] + teacher_ids[:k]
        total_prefix += k
    assert counts.prefix_tokens * cfg.rollout.group_size == total_prefix
    batch = _check_mask_and_logprobs(parts, prefix)
    for i, r in enumerate(prefix):
        k = len(r.prompt_ids) - len(plain[r.question_id])
        p = len(r.prompt_ids)
        assert not batch.response_mask[i, p - 1 - k : p - 1].any()  # positions scoring the prefix tokens


def test_hint_lives_in_the_prompt_and_leaking_hints_are_dropped(tmp_path, micro_config):
    cfg, parts = _parts(tmp_path, micro_config, "grpo_replay_hint")
    tok = parts.tokenizer
    qs = parts.questions[:4]
    leak_q = qs[0]
    for q in qs:  # the recorded teacher answers the Fig. 19 request by its id
        parts.io.teacher.by_id[f"hint:{q['id']}"] = [CLEAN_HINT]
    parts.io.teacher.by_id[f"hint:{leak_q['id']}"] = [f"The answer is {leak_q['answer']}."]
    sr = collect(parts.io, cfg, qs, [], step=1, cap=cfg.aug_cap, seed=5)
    counts = BaselineCounts()
    add_guidance_groups(parts, sr, counts, replay_ids=set(), step=1, order=list(range(len(qs))), seed=5)
    hint = [r for r in sr.rollouts if r.kind == "hint"]
    hard_teacher_ok = counts.hint_groups + counts.hint_leaks
    assert hint and counts.hint_groups == len({r.uid for r in hint}) > 0
    assert leak_q["id"] not in {r.question_id for r in hint}
    assert counts.hint_leaks == (1 if any(o[0] == leak_q["id"] and o[1] < 0.5 for o in sr.outcomes) else 0)
    assert counts.hint_leak_answer_stated == counts.hint_leaks  # "The answer is <gold>."
    assert hard_teacher_ok <= 4
    batch = _check_mask_and_logprobs(parts, hint)
    targets = batch.input_ids[:, 1:]
    for i, r in enumerate(hint):
        assert r.uid == f"{r.question_id}:hint:1"
        prompt = tok.decode(r.prompt_ids)
        assert "<hint>\nWork out the sum digit by digit.\n</hint>" in prompt  # <think> part stripped
        scored = tok.decode([t for t, m in zip(targets[i].tolist(), batch.response_mask[i].tolist()) if m])
        assert "<hint>" not in scored


def test_distillation_refuses_a_teacher_with_another_tokenizer(tmp_path, micro_config):
    from transformers import AutoTokenizer

    from zppo_core.models import resolve
    from zppo_core.trainer.distill import TokenizerMismatch

    teacher = tmp_path / "other-teacher"
    shutil.copytree(resolve("builtin:tiny-qwen3?warmstart=0"), teacher)
    tok = AutoTokenizer.from_pretrained(teacher)
    tok.add_tokens(["<extra_teacher_token>"])
    tok.save_pretrained(teacher)
    with pytest.raises(TokenizerMismatch, match=r"student 'builtin:tiny-qwen3'.*teacher '.*other-teacher'"):
        _parts(tmp_path, micro_config, "on_distill", **{"model.teacher": str(teacher)})


def test_step_totals_count_guidance_rollouts_in_all_only():
    from zppo_core.trainer.batch import Rollout
    from zppo_core.trainer.metrics_step import RolloutTotals

    def ro(kind, reward, uid):
        return Rollout(uid=uid, kind=kind, question_id="q", prompt_ids=[1], response_ids=[2, 3], reward=reward)

    t = RolloutTotals.of([ro("plain", 1.0, "a"), ro("hint", 1.0, "b"), ro("prefix", 0.0, "c"), ro("prefix", 1.0, "c")])
    assert (t.all_sum, t.all_n, t.plain_sum, t.plain_n, t.new_n) == (3.0, 4.0, 1.0, 1.0, 1.0)
    assert (t.groups, t.trivial_groups, t.sequences, t.response_tokens) == (3.0, 2.0, 4.0, 8.0)
