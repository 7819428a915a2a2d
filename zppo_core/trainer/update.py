"""Stage 6 of Algorithm 1: old log-probs, advantages and the I mini-batch updates.

* **Old log-probs** (behaviour policy): recomputed with the current, pre-update model in a
  no-grad forward over exactly the sampled tokens (standard verl practice). They are fixed for
  the whole rollout step, so with ``I`` updates the ratio of mini-batch ``k`` measures the drift
  of the ``k-1`` earlier updates (PPO epochs = 1; every rollout token enters the gradient
  exactly once per step). The backend's own sampling log-probs are only used for the
  ``train/sampler_logprob_diff`` health metric (stale weights show up there).
* **Mini-batches**: whole groups are shuffled (seeded by step) and dealt into ``I`` mini-batches
  of nearly equal group count, so a group never straddles two updates (needed by
  ``algo.adv_scope = "minibatch"``).
* **Token-level loss with gradient accumulation**: each micro-batch's loss is its token sum
  divided by ``token_normalizer = N_tokens(mini-batch, all ranks) / world_size``. Summed over
  micro-batches and averaged over ranks by DDP/FSDP this is exactly the token mean of the whole
  mini-batch (tested in tests/trainer/test_update.py).
* **Distributed**: ranks can hold different numbers of groups (BCQ/NCQ counts differ per
  shard, an odd ``|X_new|``, replay draws). Every rank runs the same number of forwards in the
  old-log-prob pass and of micro-batches per update (the maximum over ranks); a rank short of
  data runs a zero-weight pass on a one-token filler so collectives stay matched (FSDP2
  all-gathers parameters at every forward).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from zppo_core.advantages import compute_advantages
from zppo_core.loss import policy_loss
from zppo_core.trainer.batch import Rollout, collate, place_rows, split_rows, token_logprobs
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.state import UpdateContext


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@torch.no_grad()
def compute_old_logprobs(ctx: UpdateContext, rollouts: list[Rollout]) -> list[torch.Tensor]:
    """Per-rollout 1-D float32 log-probs of the sampled response tokens (no grad).

    Every rank runs the same number of forwards (the maximum over ranks): a rank with fewer
    rollouts runs zero-weight forwards of a filler, so FSDP's parameter all-gathers match.
    """
    out: list[torch.Tensor] = []
    micro = chunks(rollouts, ctx.micro_batch)
    n_forwards = ctx.dist.max_int(len(micro)) if ctx.dist.world > 1 else len(micro)
    for j in range(n_forwards):
        batch = collate(micro[j] if j < len(micro) else [ctx.filler()], ctx.pad_id, ctx.vision_ids)
        lp = token_logprobs(ctx.model, batch, ctx.temperature, ctx.logprob_chunk)
        if j < len(micro):
            out.extend(t.detach().cpu() for t in split_rows(lp, batch))
    return out


def sampler_logprob_diff(rollouts: list[Rollout], old_lp: list[torch.Tensor]) -> tuple[float, int]:
    """(sum of |sampler - trainer| log-prob over tokens, token count) where the backend gave them."""
    total, n = 0.0, 0
    for r, lp in zip(rollouts, old_lp):
        if r.sampler_logprobs is None or len(r.sampler_logprobs) != lp.numel() or lp.numel() == 0:
            continue
        total += float((torch.tensor(r.sampler_logprobs, dtype=torch.float32) - lp).abs().sum())
        n += lp.numel()
    return total, n


def minibatch_plan(rollouts: list[Rollout], iterations: int, seed: int) -> list[list[int]]:
    """Rollout indices of each of the ``iterations`` mini-batches (whole groups, seeded shuffle)."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rollouts):
        groups.setdefault(r.uid, []).append(i)
    order = list(groups)
    random.Random(seed).shuffle(order)
    plan: list[list[int]] = [[] for _ in range(iterations)]
    base, extra = divmod(len(order), iterations)
    pos = 0
    for k in range(iterations):
        take = base + (1 if k < extra else 0)
        for uid in order[pos : pos + take]:
            plan[k].extend(groups[uid])
        pos += take
    return plan


def global_advantages(rollouts: list[Rollout], dist: Dist, norm: str, eps: float) -> torch.Tensor:
    """[len(rollouts)] advantages with batch statistics over the same rollouts on ALL ranks."""
    local = [(r.uid, float(r.reward)) for r in rollouts]
    everything = dist.gather([(dist.rank, i, uid, rew) for i, (uid, rew) in enumerate(local)])
    if not everything:
        return torch.zeros(0)
    rewards = torch.tensor([e[3] for e in everything], dtype=torch.float64)
    adv = compute_advantages(rewards, [e[2] for e in everything], norm=norm, eps=eps)
    mine = [j for j, e in enumerate(everything) if e[0] == dist.rank]
    return adv[mine].to(torch.float32)


@dataclass
class GradTotals:
    """This rank's sums over one mini-batch's micro-batches (see :func:`accumulate_gradients`)."""

    loss: float = 0.0  # sum of micro-batch losses
    clip: float = 0.0  # token-weighted clip fraction
    kl: float = 0.0  # token-weighted approx KL
    tokens: float = 0.0  # masked (loss) tokens


@dataclass
class UpdateStats:
    """One optimizer step's statistics, global over ranks."""

    loss: float
    clip_frac: float
    approx_kl: float
    grad_norm: float
    tokens: float


def _micro_loss(ctx: UpdateContext, micro, old_lp, adv, norm_kw, dummy):
    batch = collate(micro, ctx.pad_id, ctx.vision_ids)
    lp = token_logprobs(ctx.model, batch, ctx.temperature, ctx.logprob_chunk)
    old = place_rows(old_lp, batch).to(lp.device)
    mask = batch.response_mask.to(lp.device)
    if dummy:
        mask = torch.zeros_like(mask)
    a = ctx.algo
    return policy_loss(
        lp, old, adv.to(lp.device), mask, clip_low=a.clip_low, clip_high=a.clip_high,
        dual_clip=a.dual_clip, agg=a.loss_agg, **norm_kw,
    )


def accumulate_gradients(
    ctx: UpdateContext, rollouts: list[Rollout], old_lp: list[torch.Tensor], adv: torch.Tensor,
    filler: Rollout | None,
) -> GradTotals:
    """Backward of one mini-batch's loss, micro-batch by micro-batch (grads accumulate).

    ``filler``: a rollout to run as a zero-weight micro-batch when this rank has fewer
    micro-batches than another. Returns this rank's sums.
    """
    dist = ctx.dist
    n_tok = sum(int(t.numel()) for t in old_lp)
    n_seq = sum(1 for t in old_lp if t.numel())
    g_tok, g_seq = dist.sum([n_tok, n_seq])
    if ctx.algo.loss_agg == "token":
        norm_kw = {"token_normalizer": max(g_tok, 1.0) / dist.world}
    else:
        norm_kw = {"seq_normalizer": max(g_seq, 1.0) / dist.world}
    micro_idx = chunks(list(range(len(rollouts))), ctx.micro_batch)
    n_micro = dist.max_int(len(micro_idx))
    totals = GradTotals()
    for j in range(n_micro):
        dummy = j >= len(micro_idx)
        if dummy:  # this rank is out of data: a zero-weight pass keeps collectives matched
            micro, lp_rows, adv_rows = [filler], [torch.zeros(len(filler.response_ids))], torch.zeros(1)
        else:
            sel = micro_idx[j]
            micro, lp_rows, adv_rows = [rollouts[i] for i in sel], [old_lp[i] for i in sel], adv[sel]
        with dist.maybe_no_sync(ctx.model, skip_sync=j < n_micro - 1):
            loss, m = _micro_loss(ctx, micro, lp_rows, adv_rows, norm_kw, dummy)
            dist.backward(loss)
        totals.loss += float(loss.detach())
        totals.clip += m["clip_fraction"] * m["n_tokens"]
        totals.kl += m["approx_kl"] * m["n_tokens"]
        totals.tokens += m["n_tokens"]
    return totals


def one_update(
    ctx: UpdateContext, rollouts: list[Rollout], old_lp: list[torch.Tensor], adv: torch.Tensor,
    filler: Rollout | None,
) -> UpdateStats:
    """One optimizer step on one mini-batch (micro-batched with gradient accumulation)."""
    ctx.optimizer.zero_grad(set_to_none=True)
    t = accumulate_gradients(ctx, rollouts, old_lp, adv, filler)
    grad_norm = ctx.dist.clip_grad_norm(ctx.model, ctx.grad_clip)
    ctx.optimizer.step()
    ctx.optimizer.zero_grad(set_to_none=True)
    loss_sum, clip_sum, kl_sum, tok_sum = ctx.dist.sum([t.loss, t.clip, t.kl, t.tokens])
    return UpdateStats(
        # each rank's micro losses sum to (its tokens' loss sum) * world / N: the mean over
        # ranks is the mini-batch loss
        loss=loss_sum / ctx.dist.world,
        clip_frac=clip_sum / tok_sum if tok_sum else 0.0,
        approx_kl=kl_sum / tok_sum if tok_sum else 0.0,
        grad_norm=grad_norm,
        tokens=tok_sum,
    )


def run_updates(
    ctx: UpdateContext, rollouts: list[Rollout], *, seed: int, old_lp: list[torch.Tensor] | None = None,
) -> dict[str, float]:
    """Old log-probs, advantages and ``algo.iterations`` optimizer steps. Returns train metrics."""
    algo, dist = ctx.algo, ctx.dist
    if old_lp is None:
        old_lp = compute_old_logprobs(ctx, rollouts)
    plan = minibatch_plan(rollouts, algo.iterations, seed)
    if algo.adv_scope == "step":
        adv_all = global_advantages(rollouts, dist, algo.adv_norm, algo.adv_eps)
    filler = ctx.filler()
    stats: list[UpdateStats] = []
    abs_adv: list[float] = []
    for sel in plan:
        mb = [rollouts[i] for i in sel]
        if algo.adv_scope == "step":
            adv = adv_all[sel] if sel else torch.zeros(0)
        else:
            adv = global_advantages(mb, dist, algo.adv_norm, algo.adv_eps)
        abs_adv.extend(float(a) for a in adv.abs())
        stats.append(one_update(ctx, mb, [old_lp[i] for i in sel], adv, filler))
    diff_sum, diff_n = sampler_logprob_diff(rollouts, old_lp)
    diff_sum, diff_n, adv_sum, adv_n = dist.sum([diff_sum, diff_n, sum(abs_adv), len(abs_adv)])
    k = len(stats)
    return {
        "train/loss": sum(s.loss for s in stats) / k,
        "train/clip_frac": sum(s.clip_frac for s in stats) / k,
        "train/approx_kl": sum(s.approx_kl for s in stats) / k,
        "train/grad_norm": sum(s.grad_norm for s in stats) / k,
        "train/grad_norm_max": max(s.grad_norm for s in stats),
        "train/updates": float(k),
        "train/response_tokens": sum(s.tokens for s in stats),
        "train/adv_abs_mean": adv_sum / adv_n if adv_n else 0.0,
        "train/sampler_logprob_diff": diff_sum / diff_n if diff_n else 0.0,
    }


__all__ = [
    "GradTotals",
    "UpdateStats",
    "accumulate_gradients",
    "compute_old_logprobs",
    "global_advantages",
    "minibatch_plan",
    "one_update",
    "run_updates",
    "sampler_logprob_diff",
]
