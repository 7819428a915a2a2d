"""The HF backend's own decoding loop (dense text models): equal to ``generate`` where both are
deterministic, the right sampling distribution, shared prefill and shrinking batches that change
no row, and collective stepping under a sharded module."""

from __future__ import annotations

import functools

import pytest
import torch

from zppo_core.engines.base import GenerationRequest, SamplingParams
from zppo_core.engines.factory import build_backend
from zppo_core.engines.hf_decode import decode, sample_from
from zppo_core.prompts import build_plain


def _req(q: str) -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": q}])


@pytest.fixture(scope="module")
def backend(model_cache):
    """The shipped warm-started tiny Qwen3 (the same weights on every machine): its rows end at
    different lengths, so batches shrink along the way."""
    from zppo_core.models import resolve

    return build_backend("transformers", resolve("builtin:tiny-qwen3", cache_dir=model_cache), batch_size=16)


QUESTIONS = ["What is 1 + 2?", "Hi", "What is 10 - 3? Think step by step.", "x", build_plain("What is 12 + 30?")]


def _run(backend, n: int, params: SamplingParams, fast: bool):
    backend.fast_decode = fast
    try:
        return backend.generate([_req(q) for q in QUESTIONS], n, params)
    finally:
        backend.fast_decode = True


def test_text_models_take_the_loop_and_vlms_generate(backend, tiny_vlm_dir):
    assert backend.fast_decode
    assert not build_backend("transformers", tiny_vlm_dir).fast_decode


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0.0, max_new_tokens=24),
    SamplingParams(temperature=0.0, max_new_tokens=24, repetition_penalty=1.3, presence_penalty=0.5),
    SamplingParams(temperature=0.0, max_new_tokens=10, ignore_eos=True),
])
def test_greedy_equals_generate_row_for_row(backend, params):
    """Greedy is deterministic: the loop (shared prefill, rows leaving as they finish) writes the
    tokens ``generate`` writes, with the same log-probs and finish reasons. The rows end at
    different lengths, so the batch shrinks along the way."""
    ours, ref = _run(backend, 3, params, True), _run(backend, 3, params, False)
    lengths = set()
    for mine, theirs in zip(ours, ref):
        for a, b in zip(mine, theirs):
            assert a.token_ids == b.token_ids and a.finish_reason == b.finish_reason and a.text == b.text
            assert a.prompt_ids == b.prompt_ids
            assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5)
            lengths.add(len(a.token_ids))
    if not params.ignore_eos:
        assert len(lengths) > 1, "rows of one length: the shrinking batch was not exercised"


def test_sharing_a_prefill_changes_no_row(backend):
    greedy = SamplingParams(temperature=0.0, max_new_tokens=16)
    alone = [backend.generate([_req(q)], 1, greedy)[0][0].token_ids for q in QUESTIONS]
    shared = backend.generate([_req(q) for q in QUESTIONS], 3, greedy)
    assert [[s.token_ids for s in group] for group in shared] == [[a] * 3 for a in alone]


def test_sampler_draws_the_processed_distribution():
    """Inverse-CDF sampling: each token's frequency over 40k draws is its probability (4 standard
    errors at most, a fixed seed) and a filtered-out token (-inf) is never drawn."""
    probs = torch.tensor([0.1, 0.2, 0.0, 0.3, 0.4])
    scores = probs.log().expand(40_000, -1).clone()  # log 0 = -inf
    torch.manual_seed(0)
    counts = torch.bincount(sample_from(scores, greedy=False), minlength=5).double()
    freq = counts / counts.sum()
    stderr = (probs.double() * (1 - probs.double()) / 40_000).sqrt()
    assert counts[2] == 0
    assert ((freq - probs.double()).abs() <= 4 * stderr + 1e-12).all(), freq.tolist()
    assert sample_from(scores[:2], greedy=True).tolist() == [4, 4]


def test_collective_stepping_keeps_one_row_until_every_rank_is_done(backend):
    """Under a sharded module each forward is a collective: a rank whose rows are all done
    keeps stepping (one row, output discarded) while ``max_over_ranks`` says another rank is
    still writing; its own rows are unchanged."""
    greedy = SamplingParams(temperature=0.0, max_new_tokens=22)
    prompts = [backend.render(_req(q)) for q in QUESTIONS[1:3] + QUESTIONS[4:]]  # rows that end early
    kw = dict(pad_id=backend.tokenizer.pad_token_id, eos_ids=backend.eos_ids, suppress_ids=[],
              tokenizer=backend.tokenizer)
    alone = decode(backend.model, prompts, greedy, **kw)
    assert max(len(r.token_ids) for r in alone) < 22, "need rows that end before the budget"
    batches: list[int] = []
    forward = backend.model.forward

    @functools.wraps(forward)
    def counted(*a, **k):
        batches.append(k["input_ids"].shape[0])
        return forward(*a, **k)

    backend.model.forward = counted
    try:
        synced = decode(backend.model, prompts, greedy, **kw, max_over_ranks=lambda x: 1)  # another rank never done
    finally:
        del backend.model.forward
    assert [(r.token_ids, r.finish_reason) for r in synced] == [(r.token_ids, r.finish_reason) for r in alone]
    assert len(batches) == 22 and min(batches) == 1  # prefill + 21 steps, the last ones with one kept row


def test_eager_attention_takes_the_same_step_masks(backend):
    """The steps' 4D additive masks serve eager attention too (it adds them to the scores)."""
    greedy = SamplingParams(temperature=0.0, max_new_tokens=16)
    sdpa = _run(backend, 2, greedy, True)
    backend.model.set_attn_implementation("eager")
    try:
        eager, ref = _run(backend, 2, greedy, True), _run(backend, 2, greedy, False)
    finally:
        backend.model.set_attn_implementation("sdpa")
    assert backend.model.config._attn_implementation == "sdpa"
    for a, b, c in zip(eager, ref, sdpa):
        assert [s.token_ids for s in a] == [s.token_ids for s in b] == [s.token_ids for s in c]
