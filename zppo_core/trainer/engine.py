"""The update engine: the matched micro-batch loop under every update of the student.

The RL update (:mod:`zppo_core.trainer.update`: advantages and the clipped surrogate) and the
distillation update (:mod:`zppo_core.trainer.distill`: the teacher and the JSD) hand this module
a micro-batch plan and a loss function; it owns everything between them and the optimizer:

* **matched forwards** (:func:`matched_micros`): every rank runs the same number of forwards
  (the maximum over ranks; FSDP2 all-gathers parameters at each one). A rank out of data runs a
  zero-weight pass on a one-token filler (``Micro.dummy``); under FSDP2 + VLM a micro-batch
  without an image gets the zero-weight image filler row whenever another rank's has one, so
  every rank's backward produces vision-tower gradients and the reduce-scatters match in size;
* **the global normaliser** (:func:`normalizer`): token or sequence counts of the whole batch on
  all ranks, divided by the world size, so that summing micro-batch losses and averaging over
  ranks gives exactly the batch mean;
* **one optimizer step** (:func:`optimizer_step` = :func:`backward_all` + :func:`apply_step`):
  zero grad, backward of each micro-batch (DDP ``no_sync`` on all but the last), global
  grad-norm clipping, the micro-batch totals summed over ranks, the finite checks, the step,
  and the finite check of the new weights.

The matched no-grad pass (old log-probs) uses :func:`matched_micros` too, without the image
filler (no backward, so no reduce-scatter to match).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from zppo_core.errors import UserError
from zppo_core.trainer.batch import Rollout
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.state import UpdateContext


@dataclass
class Micro:
    """One micro-batch as a loss function sees it.

    ``rows``: the rollouts of the forward, the real ones first (``rows[:len(index)]``), then any
    zero-weight filler; ``index``: the real rows' positions in the data the plan indexes;
    ``dummy``: this rank is out of data and ``rows`` is only the filler."""

    rows: list[Rollout]
    index: list[int] = field(default_factory=list)
    dummy: bool = False


#: ``loss_fn(micro) -> (loss, totals)``: the micro-batch's loss (already divided by the global
#: normaliser) and the values to add up over micro-batches and ranks (``{"tokens": 12.0, ...}``)
LossFn = Callable[[Micro], tuple[torch.Tensor, dict[str, float]]]


def normalizer(agg: str, global_tokens: float, global_seqs: float, world: int) -> dict[str, float]:
    """Keyword of :func:`zppo_core.loss.policy_loss` / ``jsd_loss`` for aggregation ``agg``:
    ``{"token_normalizer": tokens / world}`` (token mean) or ``{"seq_normalizer": seqs / world}``
    (sequence mean), counts over the whole batch on all ranks (at least 1)."""
    if agg == "token":
        return {"token_normalizer": max(global_tokens, 1.0) / world}
    return {"seq_normalizer": max(global_seqs, 1.0) / world}


def matched_micros(ctx: UpdateContext, plan: Sequence[Sequence[int]], data: Sequence[Rollout], *,
                   match_vision: bool = True) -> Iterator[Micro]:
    """The micro-batches of ``plan`` (indices into ``data``), then zero-weight dummies up to the
    largest plan of any rank; with ``match_vision`` and an image filler (FSDP2 + VLM) a
    micro-batch without an image gets it appended when another rank's has one. Collective per
    micro-batch: one ``max_int`` (only with ``match_vision`` and a filler)."""
    dist = ctx.dist
    n = dist.max_int(len(plan)) if dist.world > 1 else len(plan)
    for j in range(n):
        if j < len(plan):
            m = Micro([data[i] for i in plan[j]], list(plan[j]))
        else:
            m = Micro([ctx.filler()], [], dummy=True)
        if match_vision and ctx.vision_filler is not None:
            has = any(r.mm for r in m.rows)
            if dist.max_int(int(has)) and not has:
                m.rows = m.rows + [ctx.vision_filler]
        yield m


@dataclass
class StepResult:
    """One optimizer step: the gradient norm before clipping, the loss (mean over ranks of each
    rank's micro-batch loss sum, i.e. the batch loss) and the loss function's totals summed over
    micro-batches and ranks."""

    grad_norm: float
    loss: float
    totals: dict[str, float]


def backward_all(ctx: UpdateContext, micros: Sequence[Micro], loss_fn: LossFn,
                 keys: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Backward of every micro-batch's ``loss_fn`` (gradients accumulate; DDP syncs only on the
    last). Returns this rank's loss sum and its sums of the ``keys`` totals."""
    dist = ctx.dist
    loss_sum, local = 0.0, dict.fromkeys(keys, 0.0)
    for j, m in enumerate(micros):
        with dist.maybe_no_sync(ctx.model, skip_sync=j < len(micros) - 1):
            loss, totals = loss_fn(m)
            dist.backward(loss)
        loss_sum += float(loss.detach())
        for k in keys:
            local[k] += totals[k]
    return loss_sum, local


def optimizer_step(ctx: UpdateContext, micros: Sequence[Micro], loss_fn: LossFn,
                   keys: Sequence[str]) -> StepResult:
    """:func:`backward_all`, then global grad-norm clipping, the totals summed over ranks (one
    collective with the loss) and one optimizer step. Stops with :class:`NonFiniteError` (every
    rank alike) before a non-finite loss or gradient is applied, or after a step that made a
    weight non-finite."""
    ctx.optimizer.zero_grad(set_to_none=True)
    loss_sum, local = backward_all(ctx, micros, loss_fn, keys)
    return apply_step(ctx, loss_sum, local)


def apply_step(ctx: UpdateContext, loss_sum: float, local: dict[str, float]) -> StepResult:
    """The step after the accumulated backward: global grad-norm clipping, this rank's loss sum
    and ``local`` totals summed over ranks (one collective), the finite checks, the optimizer
    step and the finite check of the new weights."""
    dist = ctx.dist
    grad_norm = float(dist.clip_grad_norm(ctx.model, ctx.grad_clip))
    summed = dist.sum([loss_sum, *local.values()])
    loss = summed[0] / dist.world
    check_finite(loss, grad_norm)
    ctx.optimizer.step()
    ctx.optimizer.zero_grad(set_to_none=True)
    check_finite_weights(ctx.model, dist)
    return StepResult(grad_norm, loss, dict(zip(local, summed[1:])))


class NonFiniteError(UserError):
    """A non-finite loss or gradient norm: the run stops before the optimizer step applies it."""


def check_finite(loss: float, grad_norm: float) -> None:
    """Raise :class:`NonFiniteError` unless the (global) loss and gradient norm are finite. Both
    are reduced over ranks already, so every rank decides alike."""
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        raise NonFiniteError(
            f"non-finite training signal (loss {loss}, gradient norm {grad_norm}): the run stops before "
            f"applying it; lower optim.lr or check the data")


def check_finite_weights(model: Any, dist: Dist) -> None:
    """Raise :class:`NonFiniteError` on every rank when any rank's (shard of the) weights holds a
    non-finite value after an optimizer step (a step size that made them overflow): the run stops
    before such weights are generated from or checkpointed. One device sync."""
    flags = [torch.isfinite(p.detach()).all() for p in model.parameters() if p.numel()]
    bad = int(not bool(torch.stack(flags).all())) if flags else 0
    if dist.max_int(bad):
        raise NonFiniteError("non-finite weights after an optimizer step: the run stops before using or "
                             "saving them; lower optim.lr or check the data")


__all__ = ["LossFn", "Micro", "NonFiniteError", "StepResult", "apply_step", "backward_all", "check_finite", "check_finite_weights",
           "matched_micros", "normalizer", "optimizer_step"]
