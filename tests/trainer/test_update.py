"""Update mechanics: mini-batch plan, micro-batch gradient accumulation, old log-probs."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from zppo_core.config import AlgoConfig
from zppo_core.trainer.batch import Rollout, collate, token_logprobs
from zppo_core.trainer.state import UpdateContext
from zppo_core.trainer.update import (
    OldLogprobs,
    accumulate_gradients,
    compute_old_logprobs,
    minibatch_plan,
    run_updates,
)

PAD = 0


def _rollouts() -> list[Rollout]:
    """The same 3 groups x 4 rollouts the FSDP2 worker updates on (one definition for both)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fsdp2_worker import rollouts

    return rollouts()


def _ctx(model, dist, micro_batch, optimizer=None, algo=None) -> UpdateContext:
    return UpdateContext(model=model, optimizer=optimizer, algo=algo or AlgoConfig(), micro_batch=micro_batch,
                         grad_clip=1.0, temperature=1.0, pad_id=PAD, vision_ids=set(), dist=dist)


def _grads(model) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in model.parameters()]


def test_minibatch_plan_keeps_groups_whole_and_uses_each_rollout_once():
    rs = _rollouts()
    plan = minibatch_plan(rs, iterations=2, seed=3)
    assert sorted(i for mb in plan for i in mb) == list(range(12))
    assert [len(mb) for mb in plan] == [8, 4]  # 3 groups of 4 dealt into 2 mini-batches
    for mb in plan:
        uids = {rs[i].uid for i in mb}
        assert sum(1 for r in rs if r.uid in uids) == len(mb)


def test_token_level_loss_with_accumulation_equals_whole_minibatch(tiny_lm, dist):
    rs = _rollouts()
    old = compute_old_logprobs(_ctx(tiny_lm, dist, 12), rs)
    # perturb the old log-probs so the ratio is not 1 and clipping is exercised
    old = [t + 0.3 * torch.sin(torch.arange(t.numel(), dtype=torch.float32) + k) for k, t in enumerate(old)]
    adv = torch.linspace(-1.5, 1.5, len(rs))
    tiny_lm.zero_grad()
    whole = accumulate_gradients(_ctx(tiny_lm, dist, len(rs)), rs, OldLogprobs(old), adv)
    g_whole = _grads(tiny_lm)
    tiny_lm.zero_grad()
    acc = accumulate_gradients(_ctx(tiny_lm, dist, 5), rs, OldLogprobs(old), adv)
    g_acc = _grads(tiny_lm)
    assert whole.tokens == acc.tokens == sum(len(r.response_ids) for r in rs)
    assert abs(whole.loss - acc.loss) < 1e-6
    for a, b in zip(g_whole, g_acc):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_old_logprobs_are_those_of_the_current_model_so_first_ratio_is_one(tiny_lm, dist):
    rs = _rollouts()
    old = compute_old_logprobs(_ctx(tiny_lm, dist, 5), rs)
    batch = collate(rs[:1], PAD)
    lp = token_logprobs(tiny_lm, batch)[0, batch.prompt_lens[0] - 1 : batch.prompt_lens[0] - 1 + batch.response_lens[0]]
    torch.testing.assert_close(lp.detach(), old[0])
    # the sampler's log-probs are off by exactly 1 nat: an update that used them as "old" (instead of
    # recomputing with the pre-update model) would see ratio e and clip every positive-advantage token
    for r, lp in zip(rs, old):
        r.sampler_logprobs = (lp + 1.0).tolist()
    opt = torch.optim.AdamW(tiny_lm.parameters(), lr=1e-2)
    m = run_updates(_ctx(tiny_lm, dist, 4, optimizer=opt, algo=AlgoConfig(iterations=1)), rs, seed=0)
    assert m["train/approx_kl"] < 1e-10 and m["train/clip_frac"] == 0.0
    assert abs(m["train/sampler_logprob_diff"] - 1.0) < 1e-5
    assert m["train/updates"] == 1.0 and m["train/response_tokens"] == sum(len(r.response_ids) for r in rs)


def test_clip_frac_counts_exactly_the_tokens_on_the_clipped_branch(tiny_lm, dist):
    """Old log-probs 1 nat below the model's: ratio = e > 1 + clip_high on every token, so exactly the
    tokens with A > 0 (the reward-1 rollouts: two of four per group) are clipped, none with A < 0."""
    rs = _rollouts()
    old = [t - 1.0 for t in compute_old_logprobs(_ctx(tiny_lm, dist, 12), rs)]
    opt = torch.optim.AdamW(tiny_lm.parameters(), lr=0.0)
    m = run_updates(_ctx(tiny_lm, dist, 4, optimizer=opt, algo=AlgoConfig(iterations=1)), rs, seed=0, old=OldLogprobs(old))
    clipped = sum(len(r.response_ids) for r in rs if r.reward == 1.0)
    total = sum(len(r.response_ids) for r in rs)
    assert 0 < clipped < total
    assert abs(m["train/clip_frac"] - clipped / total) < 1e-9
    # k3 estimator at log-ratio 1 on every token: e - 1 - 1
    assert abs(m["train/approx_kl"] - (torch.e - 2.0)) < 1e-5


def test_off_distill_averages_per_trajectory_the_token_mode_per_token(tiny_lm, dist):
    """Off-Distill's JSD is the mean over trajectories of each one's mean per-token JSD (Alg. 2);
    ``agg="token"`` weighs every token alike. Hand-computed per rollout, then reduced."""
    import copy

    from zppo_core.loss import token_jsd
    from zppo_core.trainer.distill import distill_update, forward_logits

    rs = [r for r in _rollouts() if r.question_id == "q0"][:3]  # responses of 2, 3 and 4 tokens
    assert [len(r.response_ids) for r in rs] == [2, 3, 4]
    teacher = copy.deepcopy(tiny_lm)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.5 * torch.sin(torch.arange(p.numel(), dtype=torch.float32)).view_as(p))
    per_traj = []
    for r in rs:
        b = collate([r], PAD)
        start, n = b.prompt_lens[0] - 1, b.response_lens[0]
        s, t = forward_logits(tiny_lm, b)[0, start:start + n], forward_logits(teacher, b)[0, start:start + n]
        per_traj.append(token_jsd(s, t).detach())
    want_seq = sum(float(j.mean()) for j in per_traj) / 3
    want_tok = float(torch.cat(per_traj).sum()) / 9
    assert abs(want_seq - want_tok) > 1e-4  # the two reductions differ on these lengths
    for agg, want in (("sequence", want_seq), ("token", want_tok)):
        model = copy.deepcopy(tiny_lm)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        m = distill_update(_ctx(model, dist, 2, optimizer=opt), teacher, rs, agg)  # 2 micro-batches
        assert abs(m["train/loss"] - want) < 1e-6, (agg, m["train/loss"], want)
