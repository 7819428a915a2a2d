"""PPO clipped loss: clip-higher, dual clip, token vs sequence aggregation, micro-batching."""

import math

import pytest
import torch

from zppo_core.loss import policy_loss

D = torch.float64

# One token per case (old_logprob = 0, logprob = log(ratio)); clip [0.8, 1.28], dual clip 10.
# (advantage, ratio, per-token loss, d loss / d logprob, which clip binds)
CASES = [
    (1.0, 1.1, -1.1, -1.1, None),  # inside the window: -rho*A
    (1.0, 1.5, -1.28, 0.0, "high"),  # A>0 above 1+0.28: -(1.28)*A, no gradient
    (1.0, 0.5, -0.5, -0.5, None),  # A>0 below 0.8: max(-0.5, -0.8) = -0.5, unclipped
    (-1.0, 0.5, 0.8, 0.0, "low"),  # A<0 below 0.8: max(0.5, 0.8) = 0.8, clipped
    (-1.0, 1.5, 1.5, 1.5, None),  # A<0 above 1.28: max(1.5, 1.28) = 1.5 < 10, unclipped
    (-1.0, 20.0, 10.0, 0.0, "dual"),  # A<0, rho=20 > c=10: min(20, 10) = 10
    (-2.0, 1.0, 2.0, 2.0, None),  # ratio 1: -rho*A = 2, d/dlogp = -A*rho = 2
]


def one_token(adv, ratio):
    logp = torch.tensor([[math.log(ratio)]], dtype=D, requires_grad=True)
    return logp, torch.zeros(1, 1, dtype=D), torch.tensor([adv], dtype=D), torch.ones(1, 1, dtype=torch.bool)


@pytest.mark.parametrize("adv,ratio,expected,grad,clip", CASES)
def test_per_token_loss_and_gradient(adv, ratio, expected, grad, clip):
    logp, old, a, mask = one_token(adv, ratio)
    loss, m = policy_loss(logp, old, a, mask)
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    loss.backward()
    assert logp.grad.item() == pytest.approx(grad, abs=1e-12)
    assert m["clip_fraction_high"] == (1.0 if clip == "high" else 0.0)
    assert m["clip_fraction_low"] == (1.0 if clip == "low" else 0.0)
    assert m["dual_clip_fraction"] == (1.0 if clip == "dual" else 0.0)
    assert m["clip_fraction"] == (1.0 if clip in ("high", "low") else 0.0)


def test_dual_clip_disabled_leaves_large_negative_ratio_unbounded():
    logp, old, a, mask = one_token(-1.0, 20.0)
    loss, m = policy_loss(logp, old, a, mask, dual_clip=None)
    assert loss.item() == pytest.approx(20.0) and m["dual_clip_fraction"] == 0.0


def test_batch_metrics_over_all_cases():
    # all 7 cases as one sequence of 7 tokens plus 1 padding token (-inf filler)
    adv = torch.tensor([[c[0] for c in CASES] + [5.0]], dtype=D)
    logp = torch.tensor([[math.log(c[1]) for c in CASES] + [-math.inf]], dtype=D, requires_grad=True)
    old = torch.tensor([[0.0] * 7 + [-math.inf]], dtype=D)
    mask = torch.tensor([[True] * 7 + [False]])
    loss, m = policy_loss(logp, old, adv, mask)
    # (-1.1 - 1.28 - 0.5 + 0.8 + 1.5 + 10 + 2) / 7 = 11.42 / 7
    assert loss.item() == pytest.approx(11.42 / 7, abs=1e-12)
    loss.backward()
    assert torch.isfinite(logp.grad).all() and logp.grad[0, 7].item() == 0.0
    assert logp.grad[0, 0].item() == pytest.approx(-1.1 / 7)
    assert m["clip_fraction_high"] == pytest.approx(1 / 7) and m["clip_fraction_low"] == pytest.approx(1 / 7)
    assert m["clip_fraction"] == pytest.approx(2 / 7) and m["dual_clip_fraction"] == pytest.approx(1 / 7)
    assert m["ratio_max"] == pytest.approx(20.0) and m["ratio_min"] == pytest.approx(0.5)
    assert m["ratio_mean"] == pytest.approx((1.1 + 1.5 + 0.5 + 0.5 + 1.5 + 20 + 1) / 7)
    assert m["n_tokens"] == 7.0 and m["loss"] == pytest.approx(11.42 / 7)


def test_approx_kl_is_k3_of_old_vs_new():
    logp, old, a, mask = one_token(1.0, 2.0)
    _, m = policy_loss(logp, old, a, mask)
    assert m["approx_kl"] == pytest.approx(2.0 - 1.0 - math.log(2.0))  # 0.3068528
    assert m["approx_kl_k1"] == pytest.approx(-math.log(2.0))  # old - new = -0.6931472


def test_bf16_logprobs_are_upcast_and_keep_their_gradient():
    logp = torch.zeros(1, 2, dtype=torch.bfloat16, requires_grad=True)
    loss, _ = policy_loss(logp, logp.detach(), torch.tensor([2.0]), torch.ones(1, 2, dtype=torch.bool))
    assert loss.dtype == torch.float32 and loss.item() == -2.0
    loss.backward()
    assert logp.grad.dtype == torch.bfloat16 and logp.grad.tolist() == [[-1.0, -1.0]]


def test_token_vs_sequence_aggregation():
    # seq 0: 2 tokens, A = 3; seq 1: 4 tokens, A = 1; ratio 1 everywhere -> per-token loss = -A
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    logp = torch.zeros(2, 4, dtype=D)
    adv = torch.tensor([3.0, 1.0], dtype=D)
    tok, _ = policy_loss(logp, logp.clone(), adv, mask, agg="token")
    seq, _ = policy_loss(logp, logp.clone(), adv, mask, agg="sequence")
    assert tok.item() == pytest.approx((-3 * 2 - 1 * 4) / 6)  # -10/6: every token weighs the same
    assert seq.item() == pytest.approx((-3 + -1) / 2)  # -2: every sequence weighs the same


def _batch():
    g = torch.Generator().manual_seed(0)
    logp = (-torch.rand(4, 5, generator=g, dtype=D)).requires_grad_(True)
    old = logp.detach() + 0.3 * torch.randn(4, 5, generator=g, dtype=D)
    adv = torch.tensor([1.5, -0.7, 0.2, -2.0], dtype=D)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    return logp, old, adv, mask


@pytest.mark.parametrize("agg", ["token", "sequence"])
def test_micro_batch_accumulation_equals_whole_batch(agg):
    logp, old, adv, mask = _batch()
    whole, _ = policy_loss(logp, old, adv, mask, agg=agg)
    (g_whole,) = torch.autograd.grad(whole, logp)
    key = "token_normalizer" if agg == "token" else "seq_normalizer"
    norm = float(mask.sum()) if agg == "token" else 4.0  # 13 tokens / 4 sequences in the mini-batch
    total = 0.0
    for sl in (slice(0, 1), slice(1, 3), slice(3, 4)):
        part, _ = policy_loss(logp[sl], old[sl], adv[sl], mask[sl], agg=agg, **{key: norm})
        total = total + part
    (g_acc,) = torch.autograd.grad(total, logp)
    assert total.item() == pytest.approx(whole.item(), abs=1e-12)
    torch.testing.assert_close(g_acc, g_whole, rtol=0, atol=1e-12)
    # without the global normaliser the micro-batch mean of means is NOT the token-level loss
    if agg == "token":
        parts = [policy_loss(logp[sl], old[sl], adv[sl], mask[sl])[0].item() for sl in (slice(0, 2), slice(2, 4))]
        assert sum(parts) / 2 != pytest.approx(whole.item(), abs=1e-6)


def test_gradient_flows_only_through_logprobs():
    logp, old, adv, mask = _batch()
    old = old.clone().requires_grad_(True)
    adv = adv.clone().requires_grad_(True)
    ref = (logp.detach() - 0.1).requires_grad_(True)
    loss, _ = policy_loss(logp, old, adv, mask, ref_logprobs=ref, kl_coef=0.1)
    loss.backward()
    assert logp.grad is not None and logp.grad.abs().sum() > 0
    assert old.grad is None and adv.grad is None and ref.grad is None


def test_k3_kl_penalty_to_reference():
    # logp = 0 (ratio 1 vs old), ref = log 0.5: k3 = exp(d) - d - 1 with d = log 0.5 = 0.1931472
    logp, old, a, mask = one_token(1.0, 1.0)
    ref = torch.full((1, 1), math.log(0.5), dtype=D)
    loss, m = policy_loss(logp, old, a, mask, ref_logprobs=ref, kl_coef=0.5)
    k3 = 0.5 - math.log(0.5) - 1.0
    assert loss.item() == pytest.approx(-1.0 + 0.5 * k3, abs=1e-12)
    assert m["kl_loss"] == pytest.approx(k3) and m["pg_loss"] == pytest.approx(-1.0)
    loss.backward()  # d/dlogp [-(e^logp) + 0.5 (e^(ref-logp) - (ref-logp) - 1)] = -1 + 0.5(-0.5 + 1)
    assert logp.grad.item() == pytest.approx(-1.0 + 0.5 * 0.5)


def test_advantages_per_token_and_errors():
    mask = torch.ones(1, 2, dtype=torch.bool)
    logp = torch.zeros(1, 2, dtype=D)
    loss, _ = policy_loss(logp, logp, torch.tensor([[1.0, 3.0]], dtype=D), mask)
    assert loss.item() == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(logp, logp, torch.ones(3, dtype=D), mask)
    with pytest.raises(ValueError, match="old_logprobs"):
        policy_loss(logp, torch.zeros(1, 3, dtype=D), torch.ones(1, dtype=D), mask)
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(logp, logp, torch.ones(1, dtype=D), mask, kl_coef=0.1)
    with pytest.raises(ValueError, match="agg"):
        policy_loss(logp, logp, torch.ones(1, dtype=D), mask, agg="seq-mean")
    with pytest.raises(ValueError, match="token_normalizer"):
        policy_loss(logp, logp, torch.ones(1, dtype=D), mask, agg="sequence", token_normalizer=4.0)


def test_empty_mask_gives_zero_loss_and_zero_metrics():
    logp = torch.zeros(1, 2, dtype=D, requires_grad=True)
    loss, m = policy_loss(logp, logp.detach(), torch.ones(1, dtype=D), torch.zeros(1, 2, dtype=torch.bool))
    assert loss.item() == 0.0 and m["n_tokens"] == 0.0 and m["clip_fraction"] == 0.0


def test_token_entropy_by_hand_and_chunking():
    from zppo_core.loss import token_entropy

    # p = [1/4, 3/4]: H = -(1/4 ln 1/4 + 3/4 ln 3/4); uniform over 4: ln 4
    logits = torch.tensor([[[0.0, math.log(3.0), -1e9, -1e9], [0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]]])
    want = torch.tensor([[-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), math.log(4), math.log(4)]])
    assert torch.allclose(token_entropy(logits), want, atol=1e-6)
    assert torch.allclose(token_entropy(logits, chunk=1), want, atol=1e-6)
    with pytest.raises(ValueError, match="B, T, V"):
        token_entropy(torch.zeros(2, 3))
