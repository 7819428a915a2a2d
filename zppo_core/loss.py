"""PPO clipped surrogate with clip-higher, dual clip and token-level aggregation (paper §1.6).

Per response token ``t`` with ratio ``rho = exp(logp - old_logp)`` and advantage ``A``:

* clipped objective ``J = min(rho*A, clip(rho, 1-clip_low, 1+clip_high)*A)`` (DAPO clip-higher);
* dual clip for negative advantages: ``J = max(J, dual_clip*A)`` when ``A < 0``, i.e. the
  per-token loss ``-J`` is bounded by ``-dual_clip*A`` once ``rho > dual_clip``.

The per-token loss is ``-J`` (+ ``kl_coef * k3(ref || policy)`` if a reference is given).

Aggregation:

* ``"token"`` (paper default, DAPO): ``sum over masked tokens / n_masked_tokens``. Pass
  ``token_normalizer`` = the number of masked tokens in the whole mini-batch when accumulating
  gradients over micro-batches: the sum over micro-batches of their losses then equals the loss
  of the whole mini-batch (and so do the gradients).
* ``"sequence"`` (original GRPO, for comparison): mean over each sequence's masked tokens, then
  mean over sequences that have at least one masked token. ``seq_normalizer`` plays the same
  micro-batch role (number of such sequences in the whole mini-batch).

Gradient flows only through ``logprobs``: ``old_logprobs``, ``advantages`` and ``ref_logprobs``
are detached. Masked-out positions may hold any finite or infinite filler; they are zeroed
before any arithmetic so they never produce NaNs or gradient.

Metrics (python floats, always token means over masked tokens, whatever ``agg``):
``loss``, ``pg_loss``, ``kl_loss``, ``clip_fraction`` (tokens where the clipped branch is the
active one: ``clip_fraction_low`` = ``A<0 and rho<1-clip_low``, ``clip_fraction_high`` =
``A>0 and rho>1+clip_high``), ``dual_clip_fraction`` (``A<0 and`` the dual bound binds),
``approx_kl`` (k3 estimator of KL(old || new) = ``mean(rho - 1 - log rho)``, >= 0, low variance),
``approx_kl_k1`` (``mean(old_logp - logp)``, the naive k1 estimate, may be negative),
``ratio_mean``, ``ratio_max``, ``ratio_min``, ``n_tokens``.

Distillation baselines (paper Algs. 2-3): :func:`jsd_loss` / :func:`token_jsd`, the per-token
Jensen-Shannon divergence between student and teacher next-token distributions over the full
vocabulary, with the same aggregation modes.
"""

from __future__ import annotations

import math

import torch

from zppo_core.config import AlgoConfig

_DEFAULTS = AlgoConfig()  # paper values (Tab. 8); the trainer passes cfg.algo explicitly
AGG_MODES = ("token", "sequence")
#: log-ratio clamp for numerical safety only (exp(20) ~ 5e8 is far past both clip bounds and
#: the dual clip, so clamped tokens carry no gradient either way).
LOG_RATIO_LIMIT = 20.0


def _check_inputs(logprobs, old_logprobs, advantages, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate shapes; return ``(advantages [B, T] detached, mask [B, T] bool)``."""
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs: expected [B, T], got shape {tuple(logprobs.shape)}")
    for name, t in (("old_logprobs", old_logprobs), ("mask", mask)):
        if t.shape != logprobs.shape:
            raise ValueError(f"{name}: shape {tuple(t.shape)} != logprobs shape {tuple(logprobs.shape)}")
    adv = advantages.detach().to(logprobs.dtype)
    if adv.dim() == 1 and adv.shape[0] == logprobs.shape[0]:
        adv = adv[:, None].expand_as(logprobs)
    elif adv.shape != logprobs.shape:
        raise ValueError(
            f"advantages: expected [B]={logprobs.shape[0]} or [B, T]={tuple(logprobs.shape)}, "
            f"got shape {tuple(advantages.shape)}"
        )
    return adv, mask.to(torch.bool)


def _masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, x, torch.zeros_like(x))


def _aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    agg: str,
    token_normalizer: float | None,
    seq_normalizer: float | None,
) -> torch.Tensor:
    """Reduce a [B, T] per-token loss (already zero where ``mask`` is False) to a scalar."""
    if agg == "token":
        denom = max(float(mask.sum()), 1.0) if token_normalizer is None else float(token_normalizer)
        return per_token.sum() / denom
    counts = mask.sum(dim=1)  # [B]
    has_tokens = counts > 0
    seq_means = per_token.sum(dim=1) / counts.clamp_min(1).to(per_token.dtype)  # [B]
    denom = max(float(has_tokens.sum()), 1.0) if seq_normalizer is None else float(seq_normalizer)
    return _masked(seq_means, has_tokens).sum() / denom


def _check_options(agg, clip_low, clip_high, dual_clip, kl_coef, ref_logprobs, token_normalizer, seq_normalizer):
    """Reject inconsistent loss options with a message naming the argument."""
    if agg not in AGG_MODES:
        raise ValueError(f"agg: {agg!r} not in {'|'.join(AGG_MODES)}")
    if agg == "token" and seq_normalizer is not None:
        raise ValueError("seq_normalizer is only valid with agg='sequence'")
    if agg == "sequence" and token_normalizer is not None:
        raise ValueError("token_normalizer is only valid with agg='token'")
    for name, val in (("token_normalizer", token_normalizer), ("seq_normalizer", seq_normalizer)):
        if val is not None and not val > 0:
            raise ValueError(f"{name} must be > 0, got {val}")
    if not (0.0 <= clip_low < 1.0) or clip_high < 0.0:
        raise ValueError(f"clip bounds invalid: clip_low={clip_low} (need 0<=x<1), clip_high={clip_high}")
    if dual_clip is not None and not dual_clip > 1.0:
        raise ValueError(f"dual_clip must be > 1 (or None to disable), got {dual_clip}")
    if kl_coef and ref_logprobs is None:
        raise ValueError("kl_coef > 0 needs ref_logprobs")


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = _DEFAULTS.clip_low,
    clip_high: float = _DEFAULTS.clip_high,
    dual_clip: float | None = _DEFAULTS.dual_clip,
    agg: str = _DEFAULTS.loss_agg,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = _DEFAULTS.kl_coef,
    token_normalizer: float | None = None,
    seq_normalizer: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped policy-gradient loss of one (micro-)batch.

    Args:
        logprobs: [B, T] log-probs of the sampled response tokens under the current policy
            (carries the gradient).
        old_logprobs: [B, T] log-probs under the rollout (behaviour) policy.
        advantages: [B] (broadcast to every token) or [B, T].
        mask: [B, T] bool/0-1, True on response tokens that enter the loss.
        clip_low, clip_high: ratio clipped to ``[1 - clip_low, 1 + clip_high]``.
        dual_clip: ``c > 1`` bounding the loss of negative-advantage tokens; None disables.
        agg: ``"token"`` or ``"sequence"`` (module docstring).
        ref_logprobs: [B, T] reference-policy log-probs, needed iff ``kl_coef > 0``.
        kl_coef: weight of the per-token k3 KL(policy || ref) penalty (0 = DAPO, paper).
        token_normalizer: denominator of ``"token"`` aggregation (default: masked tokens here).
        seq_normalizer: denominator of ``"sequence"`` aggregation (default: sequences here).

    Returns:
        ``(loss, metrics)``: a scalar tensor and a dict of python floats.
    """
    _check_options(agg, clip_low, clip_high, dual_clip, kl_coef, ref_logprobs, token_normalizer, seq_normalizer)
    if logprobs.dtype in (torch.float16, torch.bfloat16):  # ratio math in fp32 (grad flows via the cast)
        logprobs = logprobs.float()
    adv, mask = _check_inputs(logprobs, old_logprobs, advantages, mask)
    old_logprobs = old_logprobs.detach().to(logprobs.dtype)
    if ref_logprobs is not None:
        ref_logprobs = ref_logprobs.detach().to(logprobs.dtype)

    log_ratio = _masked(logprobs - old_logprobs, mask).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    ratio = torch.exp(log_ratio)  # [B, T]
    loss_unclipped = -adv * ratio
    loss_clipped = -adv * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    pg = torch.maximum(loss_unclipped, loss_clipped)  # [B, T]
    neg = adv < 0
    if dual_clip is not None:
        dual_bound = -adv * dual_clip
        dual_active = neg & (pg > dual_bound)
        pg = torch.where(neg, torch.minimum(pg, dual_bound), pg)
    else:
        dual_active = torch.zeros_like(neg)
    per_token = _masked(pg, mask)
    kl_tok = torch.zeros_like(per_token)
    if ref_logprobs is not None:
        # k3 estimator of KL(policy || ref) on policy samples: exp(ref - logp) - (ref - logp) - 1
        d = _masked(ref_logprobs - logprobs, mask).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
        kl_tok = _masked(torch.exp(d) - d - 1.0, mask)
    total = per_token + kl_coef * kl_tok if kl_coef else per_token

    loss = _aggregate(total, mask, agg, token_normalizer, seq_normalizer)
    metrics = _metrics(ratio, log_ratio, adv, mask, clip_low, clip_high, dual_active, per_token, kl_tok)
    metrics["loss"] = float(loss.detach())
    return loss, metrics


@torch.no_grad()
def _metrics(ratio, log_ratio, adv, mask, clip_low, clip_high, dual_active, pg_tok, kl_tok) -> dict[str, float]:
    """Token means over masked tokens (zeros when the batch has no masked token)."""
    n = int(mask.sum())
    if n == 0:
        keys = ("pg_loss", "kl_loss", "clip_fraction", "clip_fraction_low", "clip_fraction_high",
                "dual_clip_fraction", "approx_kl", "approx_kl_k1", "ratio_mean", "ratio_max", "ratio_min")
        return {k: 0.0 for k in keys} | {"n_tokens": 0.0}
    low = mask & (adv < 0) & (ratio < 1.0 - clip_low)
    high = mask & (adv > 0) & (ratio > 1.0 + clip_high)
    r = ratio[mask]

    def frac(b: torch.Tensor) -> float:
        return float((b & mask).sum()) / n

    return {
        "pg_loss": float(pg_tok.sum()) / n,
        "kl_loss": float(kl_tok.sum()) / n,
        "clip_fraction": frac(low | high),
        "clip_fraction_low": frac(low),
        "clip_fraction_high": frac(high),
        "dual_clip_fraction": frac(dual_active),
        "approx_kl": float(_masked(ratio - 1.0 - log_ratio, mask).sum()) / n,
        "approx_kl_k1": float(-log_ratio.sum()) / n,  # mean(old - new), can be negative
        "ratio_mean": float(r.mean()),
        "ratio_max": float(r.max()),
        "ratio_min": float(r.min()),
        "n_tokens": float(n),
    }


def token_jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-position Jensen-Shannon divergence over the full vocabulary (natural log).

    ``JSD(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M)`` with ``P = softmax(student_logits)``,
    ``Q = softmax(teacher_logits)`` and ``M = (P + Q) / 2``; bounded by ``ln 2``.

    Args:
        student_logits: [..., V] (carries the gradient).
        teacher_logits: [..., V] (detached: the teacher is frozen).

    Returns:
        [...] float32 per-position divergence.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"teacher_logits: shape {tuple(teacher_logits.shape)} != student_logits shape "
            f"{tuple(student_logits.shape)} (slice both to the shared vocabulary first)"
        )
    log_p = torch.log_softmax(student_logits.float(), dim=-1)
    log_q = torch.log_softmax(teacher_logits.detach().float(), dim=-1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


def jsd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    agg: str = _DEFAULTS.loss_agg,
    token_normalizer: float | None = None,
    seq_normalizer: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Distillation loss (Off-/On-Distill baselines): per-token JSD between the student's and the
    teacher's next-token distributions at the same prefix, aggregated like :func:`policy_loss`.

    Args:
        student_logits: [B, T, V] next-token logits of the student at the scored positions.
        teacher_logits: [B, T, V] the teacher's logits at the same positions (no gradient).
        mask: [B, T] bool/0-1, True on the positions that enter the loss (response tokens).
        agg, token_normalizer, seq_normalizer: as in :func:`policy_loss`.

    Returns:
        ``(loss, metrics)``: metrics ``jsd`` (mean per-token JSD over masked positions, nats)
        and ``n_tokens``.
    """
    _check_options(agg, 0.0, 0.0, None, 0.0, None, token_normalizer, seq_normalizer)
    if student_logits.dim() != 3:
        raise ValueError(f"student_logits: expected [B, T, V], got shape {tuple(student_logits.shape)}")
    if mask.shape != student_logits.shape[:2]:
        raise ValueError(f"mask: shape {tuple(mask.shape)} != [B, T] = {tuple(student_logits.shape[:2])}")
    mask = mask.to(torch.bool)
    per_token = _masked(token_jsd(student_logits, teacher_logits), mask)
    loss = _aggregate(per_token, mask, agg, token_normalizer, seq_normalizer)
    n = int(mask.sum())
    return loss, {"jsd": float(per_token.detach().sum()) / n if n else 0.0, "n_tokens": float(n)}


#: positions per chunk in :func:`token_entropy` (bounds the extra [B, chunk, V] temporaries)
ENTROPY_CHUNK = 1024


@torch.no_grad()
def token_entropy(logits: torch.Tensor, chunk: int = ENTROPY_CHUNK) -> torch.Tensor:
    """Policy entropy ``-sum_v p log p`` per position: logits [B, T, V] -> [B, T] float32 (nats).

    Pass logits already divided by the sampling temperature to get the entropy of the behaviour
    policy. Computed ``chunk`` positions at a time, without gradient (a logged statistic).
    """
    if logits.dim() != 3:
        raise ValueError(f"logits: expected [B, T, V], got shape {tuple(logits.shape)}")
    out = torch.empty(logits.shape[:2], dtype=torch.float32, device=logits.device)
    for s in range(0, logits.shape[1], chunk):
        logp = torch.log_softmax(logits[:, s : s + chunk].float(), dim=-1)
        out[:, s : s + chunk] = -(logp.exp() * logp).sum(-1)
    return out


__all__ = ["AGG_MODES", "ENTROPY_CHUNK", "LOG_RATIO_LIMIT", "jsd_loss", "policy_loss", "token_entropy", "token_jsd"]
