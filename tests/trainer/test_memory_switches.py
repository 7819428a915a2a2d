"""The memory switches change memory, not maths: chunked (selective) log-softmax and
activation checkpointing give the plain path's log-probs and gradients on a tiny model, and
each test proves its path ran (the head was swapped / the layers were recomputed)."""

from __future__ import annotations

import pytest
import torch

from zppo_core.trainer.batch import Rollout, SelectiveLogprobHead, collate, token_logprobs
from zppo_core.trainer.parallel import decoder_layers, enable_activation_checkpointing


def _batch():
    g = torch.Generator().manual_seed(3)
    rs = [Rollout(uid="u", kind="plain", question_id=f"q{i}", prompt_ids=torch.randint(1, 64, (3 + i,), generator=g).tolist(),
                  response_ids=torch.randint(1, 64, (5 + 2 * i,), generator=g).tolist()) for i in range(3)]
    return collate(rs, 0)


def _loss_and_grads(model, batch, **kw):
    model.zero_grad()
    lp = token_logprobs(model, batch, 0.7, **kw)
    (lp * batch.response_mask.float()).sum().backward()
    return lp.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_chunked_logprobs_equal_plain(tiny_lm, chunk):
    batch = _batch()
    lp0, g0 = _loss_and_grads(tiny_lm, batch)
    seen = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, a, o: seen.append(type(m).__name__) if isinstance(m, SelectiveLogprobHead) else None)
    try:
        lp1, g1 = _loss_and_grads(tiny_lm, batch, chunk=chunk)
    finally:
        handle.remove()
    assert seen == ["SelectiveLogprobHead"]  # the chunked head ran, once per forward
    assert isinstance(tiny_lm.lm_head, torch.nn.Linear)  # and the model got its own head back
    assert lp1.shape == lp0.shape == batch.response_mask.shape
    torch.testing.assert_close(lp1, lp0, rtol=1e-5, atol=1e-6)
    for n in g0:  # fp32; the head's gradient is summed chunk by chunk (another order): 1e-6 abs
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-4, atol=1e-6)


def test_activation_checkpointing_equal_gradients_and_recomputes(tiny_lm):
    batch = _batch()
    tiny_lm.eval()  # the trainer updates in eval mode; the switch must still act
    lp0, g0 = _loss_and_grads(tiny_lm, batch)
    names0 = list(tiny_lm.state_dict())
    assert enable_activation_checkpointing(tiny_lm) == 2
    calls = []
    for layer in decoder_layers(tiny_lm):  # count MLP runs (module hooks are skipped in recompute)
        def counted(*a, _f=layer.mlp.forward, **k):
            calls.append(1)
            return _f(*a, **k)
        layer.mlp.forward = counted
    lp1, g1 = _loss_and_grads(tiny_lm, batch)
    assert len(calls) == 4  # 2 layers, each run in the forward and again in the backward
    assert list(tiny_lm.state_dict()) == names0  # checkpoint/HF folders keep the parameter names
    torch.testing.assert_close(lp1, lp0, rtol=0, atol=0)
    for n, g in g0.items():
        n1 = n if n in g1 else n.replace("layers.0.", "layers.0._checkpoint_wrapped_module.").replace(
            "layers.1.", "layers.1._checkpoint_wrapped_module.")
        torch.testing.assert_close(g1[n1], g, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("chunk", [0, 3])
def test_entropy_on_plain_and_chunked_paths(tiny_lm, chunk):
    """The entropy returned with the log-probs is the full-softmax entropy of the same
    temperature-scaled logits, on the plain and the selective (chunked) path alike, with or
    without grad."""
    from zppo_core.loss import token_entropy

    batch = _batch()
    with torch.no_grad():
        logits = tiny_lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float() / 0.7
        want = token_entropy(logits)
        lp, ent = token_logprobs(tiny_lm, batch, 0.7, chunk, with_entropy=True)
    assert ent.shape == lp.shape == want.shape
    # the head runs from the shortest prompt's last token on (logits_to_keep); before it: 0
    start = min(batch.prompt_lens) - 1
    assert start == 2 and (ent[:, :start] == 0).all() and (lp[:, :start] == 0).all()
    assert torch.allclose(ent[:, start:], want[:, start:], atol=1e-5)
    assert torch.allclose(lp, token_logprobs(tiny_lm, batch, 0.7), atol=1e-5)
    # with grad (the I = 1 update forward): the same entropy, detached; the log-probs keep their graph
    lp_g, ent_g = token_logprobs(tiny_lm, batch, 0.7, chunk, with_entropy=True)
    assert lp_g.requires_grad and not ent_g.requires_grad
    assert torch.allclose(ent_g[:, start:], want[:, start:], atol=1e-5)


def test_head_only_on_scored_positions_equals_the_full_head(tiny_lm):
    """logits_to_keep (prompt positions skip the LM head) gives the full-head log-probs on every
    response position and the same gradients."""
    batch = _batch()
    mask = batch.response_mask
    tiny_lm.zero_grad()
    logits = tiny_lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float() / 0.7
    targets = batch.input_ids[:, 1:]
    full = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    (full * mask.float()).sum().backward()
    want_g = {n: p.grad.detach().clone() for n, p in tiny_lm.named_parameters()}
    lp, got_g = _loss_and_grads(tiny_lm, batch)
    torch.testing.assert_close(lp[mask], full.detach()[mask], rtol=0, atol=1e-5)
    for n, g in want_g.items():
        torch.testing.assert_close(got_g[n], g, rtol=1e-5, atol=1e-7)
