"""Padding-free micro-batches and the I = 1 reuse of the update forward's log-probs.

Tolerances (fp32 tiny Qwen3, sdpa): packed and padded forwards run the same maths with a
different attention mask and summation order, so log-probs agree to 1e-5 absolute and
gradients to 1e-4 relative / 1e-6 absolute.
"""

from __future__ import annotations

import copy

import pytest
import torch

import zppo_core.trainer.update as upd
from zppo_core.config import AlgoConfig
from zppo_core.trainer.batch import Rollout, collate, split_rows, token_logprobs
from zppo_core.trainer.packing import micro_plan, pack, packable, packed_logprobs, use_packing
from zppo_core.trainer.state import UpdateContext
from zppo_core.trainer.update import OldLogprobs, accumulate_gradients, compute_old_logprobs, run_updates

PAD = 0


def _r(prompt, resp, uid="q", reward=0.0) -> Rollout:
    return Rollout(uid=uid, kind="plain", question_id=uid, prompt_ids=list(prompt), response_ids=list(resp),
                   reward=reward)


def _rollouts() -> list[Rollout]:
    g = torch.Generator().manual_seed(2)
    out = []
    for q in range(3):
        for i in range(4):
            p = torch.randint(1, 64, (3 + 2 * q,), generator=g).tolist()
            r = torch.randint(1, 64, (1 + (3 * i + q) % 7,), generator=g).tolist()
            out.append(_r(p, r, uid=f"q{q}", reward=float((i + q) % 2)))
    return out


def _ctx(model, dist, *, packing, micro_batch=4, tokens=0, algo=None, optimizer=None, reuse=False, chunk=0):
    return UpdateContext(model=model, optimizer=optimizer, algo=algo or AlgoConfig(), micro_batch=micro_batch,
                         grad_clip=1.0, temperature=0.7, pad_id=PAD, vision_ids=set(), dist=dist,
                         logprob_chunk=chunk, packing=packing, micro_batch_tokens=tokens, reuse_old_logprobs=reuse)


def test_pack_layout_is_hand_computed():
    pb = pack([_r([5, 6], [7, 8, 9]), _r([3], [4])], PAD, vision_ids={8})
    assert pb.input_ids.tolist() == [[5, 6, 7, PAD, 9, 3, 4]]  # vision placeholder 8 -> pad
    assert pb.position_ids.tolist() == [[0, 1, 2, 3, 4, 0, 1]]
    assert pb.score_pos.tolist() == [1, 2, 3, 5]  # logit at p scores token p + 1
    assert pb.keep.tolist() == [True, False, True, True]
    assert pb.response_lens == [3, 1]


def test_micro_plan_rows_and_token_budget():
    rs = [_r([1] * 3, [2] * n) for n in (2, 3, 9, 1, 1)]  # 5, 6, 12, 4, 4 tokens
    # shortest first (stable): 3 (4), 4 (4), 0 (5), 1 (6), 2 (12)
    assert micro_plan(rs, 2, 0) == [[3, 4], [0, 1], [2]]
    assert micro_plan(rs, 2, 11) == [[3, 4], [0, 1], [2]]  # 4+4+5 > 11; 5+6 fits; 12 alone
    assert micro_plan(rs, 3, 0) == [[3, 4, 0], [1, 2]]


def test_packable_only_where_exact(tiny_lm):
    rs = _rollouts()
    assert packable(tiny_lm, rs)
    with_image = [_r([1, 2], [3])]
    with_image[0].mm = {"pixel_values": torch.zeros(4, 8)}
    assert not packable(tiny_lm, with_image)
    linear = copy.deepcopy(tiny_lm)
    linear.config.layer_types = ["linear_attention", "full_attention"]
    assert not packable(linear, rs)
    assert not use_packing("auto", tiny_lm, rs)  # sdpa: auto packs only on varlen kernels
    assert use_packing("on", tiny_lm, rs) and not use_packing("off", tiny_lm, rs)


@pytest.mark.parametrize("chunk", [0, 3])
def test_packed_logprobs_equal_padded(tiny_lm, chunk):
    rs = _rollouts()
    with torch.no_grad():
        batch = collate(rs, PAD)
        padded = split_rows(token_logprobs(tiny_lm, batch, 0.7, chunk), batch)
        pb = pack(rs, PAD)
        packed = packed_logprobs(tiny_lm, pb, 0.7, chunk).split(pb.response_lens)
    # a sequence packed after others must not see them: compare with each one alone as well
    alone = token_logprobs(tiny_lm, collate(rs[5:6], PAD), 0.7).detach()[0, len(rs[5].prompt_ids) - 1:]
    for a, b in zip(padded, packed):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
    torch.testing.assert_close(packed[5], alone[: len(rs[5].response_ids)], rtol=0, atol=1e-5)
    # the entropy statistic too, packed vs padded, with grad on (the I = 1 update forward)
    _, ent_pad = token_logprobs(tiny_lm, batch, 0.7, chunk, with_entropy=True)
    lp_pk, ent_pk = packed_logprobs(tiny_lm, pb, 0.7, chunk, with_entropy=True)
    assert lp_pk.requires_grad and not ent_pk.requires_grad
    for a, b in zip(split_rows(ent_pad, batch), ent_pk.split(pb.response_lens)):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


@pytest.mark.parametrize("tokens", [0, 40])
def test_packed_gradients_equal_padded(tiny_lm, dist, tokens):
    rs = _rollouts()
    old = compute_old_logprobs(_ctx(tiny_lm, dist, packing="off"), rs)
    old = [t + 0.3 * torch.sin(torch.arange(t.numel(), dtype=torch.float32) + k) for k, t in enumerate(old)]
    adv = torch.linspace(-1.5, 1.5, len(rs))
    grads = []
    for packing in ("off", "on"):
        tiny_lm.zero_grad()
        t = accumulate_gradients(_ctx(tiny_lm, dist, packing=packing, tokens=tokens), rs, OldLogprobs(old), adv)
        grads.append(([p.grad.clone() for p in tiny_lm.parameters()], t))
    (g_pad, t_pad), (g_pack, t_pack) = grads
    assert t_pad.tokens == t_pack.tokens == sum(len(r.response_ids) for r in rs)
    assert abs(t_pad.loss - t_pack.loss) < 1e-5 and abs(t_pad.clip - t_pack.clip) < 1e-6
    for a, b in zip(g_pad, g_pack):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def _count_old_passes(monkeypatch) -> list[int]:
    calls = [0]
    real = upd.compute_old_logprobs

    def counted(ctx, rollouts, *entropy):
        calls[0] += 1
        return real(ctx, rollouts, *entropy)

    monkeypatch.setattr(upd, "compute_old_logprobs", counted)
    return calls


@pytest.mark.parametrize("packing", ["on", "off"])
def test_i1_reuse_skips_the_pass_and_gives_the_same_update(tiny_lm, dist, monkeypatch, packing):
    """Same parameters, loss and entropy (measured in the update forward instead of the pass)."""
    rs = _rollouts()
    calls = _count_old_passes(monkeypatch)
    results = []
    for reuse in (False, True):
        model = copy.deepcopy(tiny_lm)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        ctx = _ctx(model, dist, packing=packing, algo=AlgoConfig(iterations=1), optimizer=opt, reuse=reuse)
        results.append((run_updates(ctx, rs, seed=0), [p.detach().clone() for p in model.parameters()]))
    assert calls[0] == 1  # only the reuse=False run made the no-grad pass
    (m_pass, w_pass), (m_reuse, w_reuse) = results
    # The pass and the update forward batch rows differently, so their log-probs agree to the
    # last bits only (the ratio is 1 +- 1e-7, not exactly 1) and AdamW rescales every gradient:
    # measured up to 9e-7 apart under ATEN_CPU_CAPABILITY=default. atol 1e-5 is 0.1 % of one
    # lr = 1e-2 step; a wrong reuse (other log-probs, no clip) moves weights by a whole step.
    for a, b in zip(w_pass, w_reuse):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert m_reuse["train/clip_frac"] == 0.0 and m_reuse["train/approx_kl"] == 0.0
    assert m_reuse["train/response_tokens"] == m_pass["train/response_tokens"]
    assert abs(m_reuse["train/loss"] - m_pass["train/loss"]) < 1e-6
    assert m_pass["train/entropy"] > 0.1  # a random tiny model: far from deterministic
    assert abs(m_reuse["train/entropy"] - m_pass["train/entropy"]) < 1e-5


def test_i4_keeps_the_pass_even_with_reuse_on(tiny_lm, dist, monkeypatch):
    rs = _rollouts()
    calls = _count_old_passes(monkeypatch)
    opt = torch.optim.AdamW(tiny_lm.parameters(), lr=1e-2)
    ctx = _ctx(tiny_lm, dist, packing="on", algo=AlgoConfig(iterations=3), optimizer=opt, reuse=True)
    m = run_updates(ctx, rs, seed=0)
    assert calls[0] == 1 and m["train/updates"] == 3.0
    assert m["train/approx_kl"] > 0.0  # later mini-batches see the drift of the earlier updates
