"""Two-step group advantage (REINFORCE++ style) with trivial groups excluded from batch stats.

Paper §3.1 / App. C, Eqs. 2–6. Every group (plain, BCQ or NCQ) is keyed by an explicit uid
and gets its own baseline; groups are never inferred from prompt text.

Step 1 (per group ``g``):   ``A'_{g,i} = r_{g,i} - mean_g(r)``. A group whose rewards are all
equal ("trivial": all-correct, all-wrong, or a single rollout) gets ``A' = 0`` exactly.

Step 2 (batch normalisation), selected by ``norm``:

* ``"none"``          – ``A = A'`` (the "No norm" ablation).
* ``"without_zero"``  – paper default ("Norm w/o Zero"). ``mu, sigma`` are the mean / std of
  ``A'`` over the rollouts of *non-trivial* groups only; those rollouts get
  ``(A' - mu) / (sigma + eps)`` and trivial rollouts stay exactly 0.
* ``"with_zero"``     – "Norm w/ Zero": ``mu, sigma`` over *all* rollouts and the formula is
  applied literally to every rollout, trivial ones included: ``(0 - mu) / (sigma + eps)``.
  Because every group's ``A'`` sums to zero, ``mu`` is 0 up to float rounding, so trivial
  rollouts stay (numerically) 0 and non-trivial ones are inflated by ``1/sqrt(f_nt)``
  relative to ``without_zero`` (Eq. 6).

Std convention (documented choice; the paper does not say): the **population** std
(``sqrt(mean((x - mu)^2))``, ``unbiased=False``). It is the convention under which the paper's
identity ``sigma_all = sqrt(f_nt) * sigma_nontrivial`` (Eq. 6) holds exactly. verl's
``torch.std`` default would be the Bessel-corrected one.

All arithmetic runs in float64 and the result is cast back to the dtype of ``rewards``.
If no non-trivial rollout exists, every mode returns zeros.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

from zppo_core.config import AlgoConfig
from zppo_core.config.schema import NORM_MODES

_DEFAULTS = AlgoConfig()  # paper values; the trainer passes cfg.algo.adv_norm / adv_eps


@dataclass(frozen=True)
class _Grouping:
    """Dense group index per rollout and per-group summaries (all float64 / long tensors)."""

    index: torch.Tensor  # [N] long, group id of each rollout in 0..G-1 (order of first appearance)
    n_groups: int
    trivial: torch.Tensor  # [G] bool, all rewards in the group equal
    sizes: torch.Tensor  # [G] long
    means: torch.Tensor  # [G] float64


def _as_rewards(rewards: torch.Tensor) -> torch.Tensor:
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"rewards: expected a torch.Tensor, got {type(rewards).__name__}")
    if rewards.dim() != 1:
        raise ValueError(f"rewards: expected a 1-D tensor [N], got shape {tuple(rewards.shape)}")
    if not torch.is_floating_point(rewards):
        rewards = rewards.to(torch.float32)
    bad = (~torch.isfinite(rewards)).nonzero().flatten()
    if bad.numel():
        i = int(bad[0])
        raise ValueError(f"rewards[{i}] is not finite ({rewards[i].item()})")
    return rewards


def _group(rewards: torch.Tensor, group_ids: Sequence[Hashable]) -> _Grouping:
    """Map uids to dense indices (first-appearance order) and compute per-group stats."""
    ids = group_ids.tolist() if isinstance(group_ids, torch.Tensor) else list(group_ids)
    if len(ids) != rewards.numel():
        raise ValueError(f"group_ids has {len(ids)} entries but rewards has {rewards.numel()}")
    dense: dict[Hashable, int] = {}
    try:
        index = torch.tensor([dense.setdefault(g, len(dense)) for g in ids], dtype=torch.long)
    except TypeError as e:  # unhashable uid
        raise TypeError(f"group_ids must be hashable: {e}") from None
    n_groups = len(dense)
    r = rewards.to(torch.float64)
    sizes = torch.zeros(n_groups, dtype=torch.long).index_add_(0, index, torch.ones_like(index))
    sums = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, index, r)
    means = sums / sizes.clamp_min(1).to(torch.float64)
    gmax = torch.full((n_groups,), -math.inf, dtype=torch.float64).scatter_reduce_(0, index, r, "amax")
    gmin = torch.full((n_groups,), math.inf, dtype=torch.float64).scatter_reduce_(0, index, r, "amin")
    return _Grouping(index=index, n_groups=n_groups, trivial=gmax == gmin, sizes=sizes, means=means)


def _pop_mean_std(x: torch.Tensor) -> tuple[float, float]:
    """Population mean and std of a 1-D float64 tensor."""
    mu = x.mean()
    return float(mu), float(((x - mu) ** 2).mean().sqrt())


def group_centered(rewards: torch.Tensor, group_ids: Sequence[Hashable]) -> torch.Tensor:
    """Step 1 only: ``A' = r - group mean``, exactly 0 for trivial groups.

    Args: rewards [N] float; group_ids N hashables. Returns [N] float64.
    """
    rewards = _as_rewards(rewards)
    g = _group(rewards, group_ids)
    centered = rewards.to(torch.float64) - g.means[g.index]
    return torch.where(g.trivial[g.index], torch.zeros_like(centered), centered)


def compute_advantages(
    rewards: torch.Tensor,
    group_ids: Sequence[Hashable],
    norm: str = _DEFAULTS.adv_norm,
    eps: float = _DEFAULTS.adv_eps,
) -> torch.Tensor:
    """Sequence-level advantages, one per rollout (broadcast to tokens by the loss).

    Args:
        rewards: [N] float rewards, one per rollout.
        group_ids: N hashable group uids (explicit; rollouts sharing a uid share a baseline).
        norm: ``"none" | "without_zero" | "with_zero"`` (see module docstring).
        eps: added to the batch std in step 2 (``AlgoConfig.adv_eps``).

    Returns:
        [N] tensor in the dtype of ``rewards``.
    """
    if norm not in NORM_MODES:
        raise ValueError(f"norm: {norm!r} not in {'|'.join(NORM_MODES)}")
    rewards = _as_rewards(rewards)
    g = _group(rewards, group_ids)
    trivial = g.trivial[g.index]  # [N] bool
    centered = rewards.to(torch.float64) - g.means[g.index]
    centered = torch.where(trivial, torch.zeros_like(centered), centered)
    if bool(trivial.all()):
        return torch.zeros_like(rewards)
    if norm == "none":
        out = centered
    elif norm == "without_zero":
        mu, sigma = _pop_mean_std(centered[~trivial])
        out = torch.where(trivial, torch.zeros_like(centered), (centered - mu) / (sigma + eps))
    else:  # with_zero: literal formula on every rollout
        mu, sigma = _pop_mean_std(centered)
        out = (centered - mu) / (sigma + eps)
    return out.to(rewards.dtype)


def advantage_stats(rewards: torch.Tensor, group_ids: Sequence[Hashable]) -> dict[str, float]:
    """Logging summary of the group structure of one advantage batch (python numbers).

    Keys: ``n_rollouts``, ``n_groups``, ``n_trivial_groups``, ``trivial_group_fraction``
    (trivial groups / groups), ``all_correct_group_fraction`` / ``all_wrong_group_fraction``
    (trivial groups whose common reward is 1.0 / 0.0),
    ``nontrivial_rollout_fraction`` (``f_nt`` weighted by rollouts), ``reward_mean``,
    ``nontrivial_std`` (population std of step-1 advantages over non-trivial rollouts, the
    ``sigma`` of ``without_zero``; 0 when there are none).
    """
    rewards = _as_rewards(rewards)
    n = rewards.numel()
    if n == 0:
        raise ValueError("rewards is empty: cannot summarise an empty advantage batch")
    g = _group(rewards, group_ids)
    trivial_g = g.trivial
    n_trivial = int(trivial_g.sum())
    all_correct = int((trivial_g & (g.means == 1.0)).sum())
    all_wrong = int((trivial_g & (g.means == 0.0)).sum())
    trivial = trivial_g[g.index]
    centered = rewards.to(torch.float64) - g.means[g.index]
    nt = centered[~trivial]
    sigma = _pop_mean_std(nt)[1] if nt.numel() else 0.0
    return {
        "n_rollouts": n,
        "n_groups": g.n_groups,
        "n_trivial_groups": n_trivial,
        "trivial_group_fraction": n_trivial / g.n_groups,
        "all_correct_group_fraction": all_correct / g.n_groups,
        "all_wrong_group_fraction": all_wrong / g.n_groups,
        "nontrivial_rollout_fraction": nt.numel() / n,
        "reward_mean": float(rewards.to(torch.float64).mean()),
        "nontrivial_std": sigma,
    }


__all__ = ["NORM_MODES", "advantage_stats", "compute_advantages", "group_centered"]
