"""Stage 6 of Algorithm 1: old log-probs, advantages and the I mini-batch updates.

* **Old log-probs** (behaviour policy): recomputed with the current, pre-update model in a
  no-grad forward over exactly the sampled tokens (standard verl practice). They are fixed for
  the whole rollout step, so with ``I`` updates the ratio of mini-batch ``k`` measures the drift
  of the ``k-1`` earlier updates (PPO epochs = 1; every rollout token enters the gradient
  exactly once per step). The backend's own sampling log-probs are only used for the
  ``train/sampler_logprob_diff`` health metric (stale weights show up there).
* **I = 1 reuse** (``algo.reuse_old_logprobs``): with a single update per step every
  micro-batch's forward runs on the same pre-update weights, in the same (eval) mode, over the
  same tokens as the no-grad pass would, so its detached output *is* the old log-prob: the
  ratio is exactly 1 and the gradient that of the no-grad-pass version. The pass is skipped
  (as TRL does on-policy); the ``train/entropy`` statistic is then measured, detached, in that
  same forward. With I > 1 the later mini-batches run on updated weights and the pass stays.
* **Packing** (``schedule.packing``, :mod:`zppo_core.trainer.packing`): padding-free
  micro-batches, optionally filled up to ``schedule.micro_batch_tokens``; the loss sees
  response-only ``[B, longest response]`` tensors either way.
* **Mini-batches**: whole groups are shuffled (seeded by step) and dealt into ``I`` mini-batches
  of nearly equal group count, so a group never straddles two updates (needed by
  ``algo.adv_scope = "minibatch"``).
* **Token-level loss with gradient accumulation**: each micro-batch's loss is its token sum
  divided by ``token_normalizer = N_tokens(mini-batch, all ranks) / world_size``. Summed over
  micro-batches and averaged over ranks by DDP/FSDP this is exactly the token mean of the whole
  mini-batch (tested in tests/trainer/test_update.py).
* **Distributed**: ranks can hold different numbers of groups (BCQ/NCQ counts differ per
  shard, an odd ``|X_new|``, replay draws). The update engine (:mod:`zppo_core.trainer.engine`)
  keeps the forwards of the old-log-prob pass and the micro-batches of each update matched
  across ranks; this module hands it the plan and the loss of one micro-batch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from zppo_core.advantages import compute_advantages
from zppo_core.loss import policy_loss
from zppo_core.trainer.batch import Rollout
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.engine import LossFn, Micro, apply_step, backward_all, matched_micros, normalizer
from zppo_core.trainer.packing import RowLogprobs, micro_plan, pad_rows, row_logprobs
from zppo_core.trainer.state import FILLER_UID, UpdateContext


def _plan(ctx: UpdateContext, rollouts: list[Rollout]) -> list[list[int]]:
    """Micro-batches (rollout indices): ``micro_batch`` rows, or a token budget when packing,
    filled in order of sequence length (see :func:`zppo_core.trainer.packing.micro_plan`)."""
    return micro_plan(rollouts, ctx.micro_batch, ctx.micro_batch_tokens if ctx.packing != "off" else 0)


def _rows(ctx: UpdateContext, micro: list[Rollout], with_entropy: bool = False) -> RowLogprobs:
    return row_logprobs(ctx.model, micro, pad_id=ctx.pad_id, vision_ids=ctx.vision_ids,
                        temperature=ctx.temperature, chunk=ctx.logprob_chunk, packing=ctx.packing,
                        with_entropy=with_entropy)


def reuses_old_logprobs(ctx: UpdateContext) -> bool:
    """True when the old log-probs are taken from the update's own forward (see module doc)."""
    return ctx.algo.iterations == 1 and ctx.reuse_old_logprobs


@dataclass
class EntropySum:
    """Policy entropy summed over the loss tokens of the pre-update forward (this rank): the
    no-grad old-log-prob pass, or with the I = 1 reuse the update's own forward."""

    total: float = 0.0  # nats
    tokens: float = 0.0

    def add(self, got: RowLogprobs, micro: list[Rollout]) -> None:
        """Adds a micro-batch's entropy over its loss tokens; filler rows add nothing."""
        for r, ent, keep in zip(micro, got.entropy or [], got.keep):
            if r.uid != FILLER_UID:
                self.total += float(ent[keep.to(ent.device)].sum())
                self.tokens += float(keep.sum())


@dataclass
class OldLogprobs:
    """The behaviour policy's log-probs of one step's rollouts -- one 1-D float32 tensor per
    rollout, ``values[i]`` for ``rollouts[i]`` -- and the policy entropy measured with them.

    Either computed ahead by the no-grad pass (:meth:`computed`), or, with the I = 1 reuse
    (:meth:`from_update`), each rollout's are its update forward's own, detached, which that
    forward records here together with the entropy (see the module docstring)."""

    values: list[torch.Tensor | None]
    entropy: EntropySum = field(default_factory=EntropySum)
    recorded_by_update: bool = False

    @classmethod
    def computed(cls, ctx: UpdateContext, rollouts: list[Rollout]) -> OldLogprobs:
        ent = EntropySum()
        return cls(list(compute_old_logprobs(ctx, rollouts, ent)), ent)

    @classmethod
    def from_update(cls, n: int) -> OldLogprobs:
        return cls([None] * n, EntropySum(), recorded_by_update=True)

    def all(self) -> list[torch.Tensor]:
        """Every rollout's log-probs (empty where none were recorded)."""
        return [t if t is not None else torch.zeros(0) for t in self.values]


@torch.no_grad()
def compute_old_logprobs(ctx: UpdateContext, rollouts: list[Rollout],
                         entropy: EntropySum | None = None) -> list[torch.Tensor]:
    """Per-rollout 1-D float32 log-probs of the sampled response tokens (no grad).

    Every rank runs the same number of forwards (the maximum over ranks): a rank with fewer
    rollouts runs zero-weight forwards of a filler, so FSDP's parameter all-gathers match.
    ``entropy``: when given, the policy entropy of every loss token is added to it (the
    ``train/entropy`` metric, measured in this same forward; fillers add nothing).
    """
    out: list[torch.Tensor] = [torch.zeros(0)] * len(rollouts)
    for m in matched_micros(ctx, _plan(ctx, rollouts), rollouts, match_vision=False):
        got = _rows(ctx, m.rows, with_entropy=entropy is not None)
        if m.dummy:
            continue
        if entropy is not None:
            entropy.add(got, m.rows)
        for i, t in zip(m.index, got.logprobs):
            out[i] = t.detach().float().cpu()
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
    """This rank's sums over one mini-batch's micro-batches (:func:`accumulate_gradients`; field names
    are the ``_TOTALS`` keys plus ``loss``)."""

    loss: float = 0.0  # sum of micro-batch losses
    clip: float = 0.0  # token-weighted clip fraction
    kl: float = 0.0  # token-weighted approx KL
    dual: float = 0.0  # token-weighted dual-clip fraction
    tokens: float = 0.0  # masked (loss) tokens


@dataclass
class UpdateStats:
    """One optimizer step's statistics, global over ranks."""

    loss: float
    clip_frac: float
    approx_kl: float
    grad_norm: float
    tokens: float
    dual_clip_frac: float = 0.0


#: the totals one RL micro-batch adds up (token-weighted clip / KL / dual-clip fractions, tokens)
_TOTALS = ("clip", "kl", "dual", "tokens")


def _rl_loss(ctx: UpdateContext, old: OldLogprobs, index: list[int], adv: torch.Tensor,
             norm_kw: dict[str, float]) -> LossFn:
    """The clipped surrogate (:func:`zppo_core.loss.policy_loss`) of one engine micro-batch
    (:class:`zppo_core.trainer.engine.Micro`) on response-only ``[B, longest response]`` tensors:
    its rollouts' old log-probs and advantages, zero weight for filler rows. ``index[k]``: the
    step-wide rollout number (into ``old``) of the mini-batch's rollout ``k``; ``adv`` is per
    mini-batch rollout. With ``old.recorded_by_update`` the old log-probs are the forward's own,
    detached, and the forward records them and its entropy in ``old``."""
    a = ctx.algo

    def loss_fn(m: Micro) -> tuple[torch.Tensor, dict[str, float]]:
        own = old.recorded_by_update and not m.dummy
        got = _rows(ctx, m.rows, with_entropy=own)
        lp = pad_rows(got.logprobs)
        fill = m.rows[len(m.index):]
        if own:
            old.entropy.add(got, m.rows)
            for k, t in zip(m.index, got.logprobs):
                old.values[index[k]] = t.detach().float().cpu()
            old_lp = lp.detach()
        else:
            rows = [old.values[index[k]] for k in m.index] + [torch.zeros(len(r.response_ids)) for r in fill]
            old_lp = pad_rows([t.to(lp.device, lp.dtype) for t in rows])
        mask = pad_rows(got.keep, False)
        if m.dummy:
            mask = torch.zeros_like(mask)
        for i, r in enumerate(m.rows):  # filler rows (vision filler) carry no weight
            if r.uid == FILLER_UID:
                mask[i] = False
        adv_rows = torch.cat([adv[m.index], torch.zeros(len(fill))])
        loss, met = policy_loss(lp, old_lp, adv_rows.to(lp.device), mask, clip_low=a.clip_low,
                                clip_high=a.clip_high, dual_clip=a.dual_clip, agg=a.loss_agg, **norm_kw)
        n = met["n_tokens"]
        return loss, {"clip": met["clip_fraction"] * n, "kl": met["approx_kl"] * n,
                      "dual": met["dual_clip_fraction"] * n, "tokens": n}

    return loss_fn


def _index(rollouts: list[Rollout], index: list[int] | None) -> list[int]:
    return list(range(len(rollouts))) if index is None else index


def accumulate_gradients(ctx: UpdateContext, rollouts: list[Rollout], old: OldLogprobs, adv: torch.Tensor,
                         index: list[int] | None = None) -> GradTotals:
    """Backward of one mini-batch's loss, micro-batch by micro-batch (grads accumulate), without
    the optimizer step. ``index``: the step-wide numbers of ``rollouts`` in ``old`` (default: the
    mini-batch is the whole step). Returns this rank's sums."""
    g_tok, g_seq = ctx.dist.sum([sum(len(r.response_ids) for r in rollouts), sum(1 for r in rollouts if r.response_ids)])
    norm_kw = normalizer(ctx.algo.loss_agg, g_tok, g_seq, ctx.dist.world)
    micros = list(matched_micros(ctx, _plan(ctx, rollouts), rollouts))
    loss, t = backward_all(ctx, micros, _rl_loss(ctx, old, _index(rollouts, index), adv, norm_kw), _TOTALS)
    return GradTotals(loss=loss, clip=t["clip"], kl=t["kl"], dual=t["dual"], tokens=t["tokens"])


def one_update(ctx: UpdateContext, rollouts: list[Rollout], old: OldLogprobs, adv: torch.Tensor,
               index: list[int] | None = None) -> UpdateStats:
    """One optimizer step on one mini-batch (micro-batched with gradient accumulation)."""
    ctx.optimizer.zero_grad(set_to_none=True)
    g = accumulate_gradients(ctx, rollouts, old, adv, index)
    res = apply_step(ctx, g.loss, {k: getattr(g, k) for k in _TOTALS})
    t = res.totals
    tok = t["tokens"]
    return UpdateStats(loss=res.loss, clip_frac=t["clip"] / tok if tok else 0.0, approx_kl=t["kl"] / tok if tok else 0.0,
                       grad_norm=res.grad_norm, tokens=tok, dual_clip_frac=t["dual"] / tok if tok else 0.0)


def run_updates(ctx: UpdateContext, rollouts: list[Rollout], *, seed: int,
                old: OldLogprobs | None = None) -> dict[str, float]:
    """Old log-probs, advantages and ``algo.iterations`` optimizer steps. Returns train metrics.
    ``old``: given old log-probs (tests); by default computed by the no-grad pass, or recorded
    by the update forward itself under the I = 1 reuse."""
    algo, dist = ctx.algo, ctx.dist
    if old is None:
        old = OldLogprobs.from_update(len(rollouts)) if reuses_old_logprobs(ctx) \
            else OldLogprobs.computed(ctx, rollouts)
    plan = minibatch_plan(rollouts, algo.iterations, seed)
    if algo.adv_scope == "step":
        adv_all = global_advantages(rollouts, dist, algo.adv_norm, algo.adv_eps)
    stats: list[UpdateStats] = []
    abs_adv: list[float] = []
    n_pos = 0
    for sel in plan:
        mb = [rollouts[i] for i in sel]
        if algo.adv_scope == "step":
            adv = adv_all[sel] if sel else torch.zeros(0)
        else:
            adv = global_advantages(mb, dist, algo.adv_norm, algo.adv_eps)
        abs_adv.extend(float(a) for a in adv.abs())
        n_pos += int((adv > 0).sum())
        stats.append(one_update(ctx, mb, old, adv, sel))
    ent = old.entropy
    diff_sum, diff_n = sampler_logprob_diff(rollouts, old.all())
    diff_sum, diff_n, adv_sum, adv_n, pos_n, ent_sum, ent_n = dist.sum(
        [diff_sum, diff_n, sum(abs_adv), len(abs_adv), n_pos, ent.total, ent.tokens])
    k = len(stats)
    return {
        "train/loss": sum(s.loss for s in stats) / k,
        "train/clip_frac": sum(s.clip_frac for s in stats) / k,
        "train/dual_clip_frac": sum(s.dual_clip_frac for s in stats) / k,
        "train/entropy": ent_sum / ent_n if ent_n else 0.0,
        "train/pos_adv_frac": pos_n / adv_n if adv_n else 0.0,
        "train/approx_kl": sum(s.approx_kl for s in stats) / k,
        "train/grad_norm": sum(s.grad_norm for s in stats) / k,
        "train/grad_norm_max": max(s.grad_norm for s in stats),
        "train/updates": float(k),
        "train/response_tokens": sum(s.tokens for s in stats),
        "train/adv_abs_mean": adv_sum / adv_n if adv_n else 0.0,
        "train/sampler_logprob_diff": diff_sum / diff_n if diff_n else 0.0,
    }


__all__ = [
    "EntropySum",
    "OldLogprobs",
    "GradTotals",
    "UpdateStats",
    "accumulate_gradients",
    "compute_old_logprobs",
    "global_advantages",
    "minibatch_plan",
    "one_update",
    "reuses_old_logprobs",
    "run_updates",
    "sampler_logprob_diff",
]
