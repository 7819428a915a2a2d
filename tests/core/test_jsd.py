"""Per-token JSD of the distillation baselines against hand-computed values (3-token vocabulary)."""

from __future__ import annotations

import math

import pytest
import torch

from zppo_core.loss import jsd_loss, token_jsd

# P = (1/2, 1/4, 1/4), Q = (1/4, 1/2, 1/4)  =>  M = (3/8, 3/8, 1/4)
P = [0.5, 0.25, 0.25]
Q = [0.25, 0.5, 0.25]
# KL(P||M) = KL(Q||M) = 1/2 ln(4/3) + 1/4 ln(2/3)
JSD_PQ = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3)
# dJSD/dp_k = 1/2 ln(p_k/m_k) = (1/2 ln 4/3, 1/2 ln 2/3, 0); through the softmax:
# dJSD/ds_k = p_k (g_k - sum_j p_j g_j)
_G = [0.5 * math.log(4 / 3), 0.5 * math.log(2 / 3), 0.0]
_GBAR = sum(p * g for p, g in zip(P, _G))
GRAD_S = [p * (g - _GBAR) for p, g in zip(P, _G)]


def _logits(probs):
    return torch.tensor([math.log(p) for p in probs], dtype=torch.float64)


def test_token_jsd_hand_computed_value_and_gradient():
    s = _logits(P).requires_grad_(True)
    t = _logits(Q)
    j = token_jsd(s, t)
    assert j.shape == ()
    assert float(j.detach()) == pytest.approx(JSD_PQ, abs=1e-7)
    assert float(j.detach()) == pytest.approx(0.0424744, abs=1e-6)  # the number itself, for the reader
    j.backward()
    assert s.grad.tolist() == pytest.approx(GRAD_S, abs=1e-7)
    assert sum(GRAD_S) == pytest.approx(0.0, abs=1e-12)  # softmax-invariant to a shift


def test_token_jsd_is_symmetric_zero_on_equal_and_bounded():
    s, t = _logits(P), _logits(Q)
    assert float(token_jsd(s, t)) == pytest.approx(float(token_jsd(t, s)), abs=1e-9)
    assert float(token_jsd(s, s + 3.0)) == pytest.approx(0.0, abs=1e-9)  # same distribution
    far = token_jsd(torch.tensor([40.0, 0.0, 0.0]), torch.tensor([0.0, 40.0, 0.0]))
    assert float(far) == pytest.approx(math.log(2.0), abs=1e-6)


def test_jsd_loss_token_mean_over_masked_positions_only():
    # [B=2, T=2, V=3]: row 0 pos 0 = (P vs Q), row 0 pos 1 = (P vs P) -> 0, row 1 pos 0 masked out
    s = torch.stack([torch.stack([_logits(P), _logits(P)]), torch.stack([_logits(Q), _logits(P)])]).float()
    t = torch.stack([torch.stack([_logits(Q), _logits(P)]), torch.stack([_logits(P), _logits(Q)])]).float()
    s.requires_grad_(True)
    mask = torch.tensor([[True, True], [False, True]])
    loss, m = jsd_loss(s, t, mask)
    assert m["n_tokens"] == 3.0
    assert float(loss.detach()) == pytest.approx((JSD_PQ + 0.0 + JSD_PQ) / 3, abs=1e-6)
    assert m["jsd"] == pytest.approx(float(loss.detach()), abs=1e-7)
    loss.backward()
    assert torch.equal(s.grad[1, 0], torch.zeros(3))  # a masked position gets no gradient
    assert s.grad[0, 0].tolist() == pytest.approx([g / 3 for g in GRAD_S], abs=1e-6)
    # micro-batch accumulation: an explicit normalizer replaces the local token count
    loss6, _ = jsd_loss(s.detach(), t, mask, token_normalizer=6.0)
    assert float(loss6) == pytest.approx(2 * JSD_PQ / 6, abs=1e-6)
    # sequence aggregation: mean per row, then over rows
    lseq, _ = jsd_loss(s.detach(), t, mask, agg="sequence")
    assert float(lseq) == pytest.approx((JSD_PQ / 2 + JSD_PQ) / 2, abs=1e-6)


def test_jsd_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="teacher_logits"):
        jsd_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        jsd_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.ones(2, 2, dtype=torch.bool))
