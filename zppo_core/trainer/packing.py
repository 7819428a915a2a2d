"""Padding-free (packed) micro-batches: every sequence of a micro-batch laid end to end in one row.

A packed micro-batch is ``input_ids [1, T]`` with ``T = sum(len(prompt_i) + len(response_i))``
and ``position_ids [1, T]`` restarting at 0 at every sequence, with no attention mask.
transformers (>= 4.53, 5.x) reads a restart of ``position_ids`` as a sequence boundary:

* ``sdpa`` / ``eager`` / ``flex_attention``: ``masking_utils.find_packed_sequence_indices``
  turns the restarts into a block-diagonal causal mask (no token attends across sequences);
* ``flash_attention_2/3``: ``prepare_fa_kwargs_from_position_ids`` derives ``cu_seqlens`` and
  calls the variable-length kernel (no padding computed at all, the GPU path).

Only the positions whose next token is a response token go through the LM head
(``logits_to_keep`` = those positions), so prompt tokens cost no vocabulary projection.

Packing is used only where it is exact (:func:`packable`): text-only micro-batches (no image
tensors; Qwen-VL's 3-D M-RoPE positions are computed from the padded layout) on a model whose
decoder is full/sliding attention throughout (Qwen3.5's linear-attention layers would carry
their recurrent state across packed sequences) and whose attention implementation honours
packed ``position_ids``. Anything else falls back to the padded path of
:func:`zppo_core.trainer.batch.collate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from zppo_core.trainer.batch import Rollout, collate, logprobs_of, selective_head, split_rows, token_logprobs

#: attention implementations that honour packed ``position_ids`` (see module docstring)
PACKED_ATTENTION = ("sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")
#: ... of which those with variable-length kernels (no work on the masked-out blocks): where
#: ``schedule.packing = "auto"`` packs. On sdpa/eager the block-diagonal mask is dense, an
#: O(T^2) attention over the packed row that can cost more than the padding it saves.
VARLEN_ATTENTION = ("flash_attention_2", "flash_attention_3")
PACKING_MODES = ("auto", "on", "off")
#: decoder layer types that keep no state across positions besides attention
_STATELESS_LAYERS = ("full_attention", "sliding_attention")


@dataclass
class PackedBatch:
    """input_ids / position_ids [1, T] long; score_pos [K] long: positions whose next token is a
    response token (K = sum of response lengths, in row order); keep [K] bool: False on
    vision-placeholder tokens (see :func:`zppo_core.trainer.batch.collate`); response_lens per row."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    score_pos: torch.Tensor
    keep: torch.Tensor
    response_lens: list[int]


def attention_impl(model: Any) -> str | None:
    cfg = getattr(getattr(model, "module", model), "config", None)
    return getattr(cfg, "_attn_implementation", None)


def use_packing(mode: str, model: Any, rollouts: list[Rollout]) -> bool:
    """``schedule.packing``: "on" packs wherever exact, "auto" only on varlen kernels, "off" never."""
    if mode == "off" or (mode == "auto" and attention_impl(model) not in VARLEN_ATTENTION):
        return False
    return packable(model, rollouts)


def packable(model: Any, rollouts: list[Rollout]) -> bool:
    """True when packing ``rollouts`` gives the padded forward's values (module docstring)."""
    if any(r.mm for r in rollouts):
        return False
    cfg = getattr(getattr(model, "module", model), "config", None)
    if cfg is None or getattr(cfg, "vision_config", None) is not None:
        return False
    if getattr(cfg, "_attn_implementation", None) not in PACKED_ATTENTION:
        return False
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    layer_types = getattr(text, "layer_types", None) or []
    return all(t in _STATELESS_LAYERS for t in layer_types)


def pack(rollouts: list[Rollout], pad_id: int, vision_ids: set[int] | frozenset[int] = frozenset()) -> PackedBatch:
    """Concatenate ``prompt + response`` of every rollout (vision placeholders -> ``pad_id``)."""
    if not rollouts:
        raise ValueError("pack: empty micro-batch")
    ids: list[int] = []
    pos: list[int] = []
    score: list[int] = []
    keep: list[bool] = []
    for r in rollouts:
        if not r.prompt_ids:
            raise ValueError(f"rollout {r.uid}/{r.question_id}: empty prompt_ids")
        start, p = len(ids), len(r.prompt_ids)
        bad = [t in vision_ids for t in r.response_ids]
        r.n_vision_tokens = sum(bad) if vision_ids else r.n_vision_tokens
        ids.extend(r.prompt_ids)
        ids.extend(pad_id if b else t for t, b in zip(r.response_ids, bad))
        pos.extend(range(p + len(r.response_ids)))
        score.extend(range(start + p - 1, start + p - 1 + len(r.response_ids)))
        keep.extend(not b for b in bad)
    return PackedBatch(
        input_ids=torch.tensor([ids], dtype=torch.long),
        position_ids=torch.tensor([pos], dtype=torch.long),
        score_pos=torch.tensor(score, dtype=torch.long),
        keep=torch.tensor(keep, dtype=torch.bool),
        response_lens=[len(r.response_ids) for r in rollouts],
    )


def packed_logprobs(model: Any, pb: PackedBatch, temperature: float = 1.0, chunk: int = 0,
                    with_entropy: bool = False):
    """Log-probs [K] (float32) of the response tokens of a packed micro-batch, in row order.

    ``chunk > 0``: the LM head is swapped for :class:`SelectiveLogprobHead` (fp32 logits of
    ``chunk`` positions at a time, recomputed in the backward), as in the padded path.
    ``with_entropy``: returns ``(logprobs [K], entropy [K])``, the entropy detached (as
    :func:`zppo_core.trainer.batch.token_logprobs`).
    """
    device = next(model.parameters()).device
    ids = pb.input_ids.to(device)
    pos = pb.score_pos.to(device)
    targets = ids[0, pos + 1][None]
    with selective_head(model, targets, temperature, chunk, with_entropy, shifted=True) as selective:
        out = model(input_ids=ids, position_ids=pb.position_ids.to(device), attention_mask=None,
                    use_cache=False, logits_to_keep=pos)
    if selective is not None:
        logp, ent = out.logits, selective.entropy
    else:
        logp, ent = logprobs_of(out.logits, targets, temperature, with_entropy)
    return (logp[0], ent[0]) if with_entropy else logp[0]


@dataclass
class RowLogprobs:
    """One micro-batch's per-rollout 1-D tensors (length = that rollout's response length):
    ``logprobs`` float32 (with grad when computed with grad), ``keep`` bool loss masks, and
    ``entropy`` float32 detached (None unless asked for)."""

    logprobs: list[torch.Tensor]
    keep: list[torch.Tensor]
    entropy: list[torch.Tensor] | None = None


def row_logprobs(model: Any, micro: list[Rollout], *, pad_id: int, vision_ids: set[int] | frozenset[int],
                 temperature: float, chunk: int, packing: str, with_entropy: bool = False) -> RowLogprobs:
    """Per-rollout log-probs of the response tokens, their loss masks and (``with_entropy``)
    the policy entropy, packed where :func:`use_packing` says so, padded otherwise."""
    if use_packing(packing, model, micro):
        pb = pack(micro, pad_id, vision_ids)
        got = packed_logprobs(model, pb, temperature, chunk, with_entropy)
        lp, ent = got if with_entropy else (got, None)
        keep = list(pb.keep.to(lp.device).split(pb.response_lens))
        return RowLogprobs(list(lp.split(pb.response_lens)), keep,
                           None if ent is None else list(ent.split(pb.response_lens)))
    batch = collate(micro, pad_id, vision_ids)
    got = token_logprobs(model, batch, temperature, chunk, with_entropy)
    lp, ent = got if with_entropy else (got, None)
    keep = [m.to(lp.device) for m in split_rows(batch.response_mask, batch)]
    return RowLogprobs(split_rows(lp, batch), keep, None if ent is None else split_rows(ent, batch))


def pad_rows(rows: list[torch.Tensor], fill: float | bool = 0.0) -> torch.Tensor:
    """Right-pad 1-D rows into [B, max(1, longest)] (gradients flow through the rows)."""
    width = max([1] + [int(r.numel()) for r in rows])
    out = []
    for r in rows:
        pad = torch.full((width - r.numel(),), fill, dtype=r.dtype, device=r.device)
        out.append(torch.cat([r, pad]))
    return torch.stack(out)


def micro_plan(rollouts: list[Rollout], rows: int, tokens: int) -> list[list[int]]:
    """Indices of each micro-batch: ``rows`` rollouts at a time, or -- ``tokens > 0`` -- filled
    up to ``tokens`` total tokens (a longer rollout gets a micro-batch of its own).

    Rollouts are taken in order of their length (prompt + response; stable, so equal lengths
    keep their order): a BCQ/NCQ prompt carries candidate text and is several times a plain
    one, and a padded micro-batch costs its longest row times its row count. The loss does not
    depend on the grouping (token-level normaliser over the whole mini-batch).
    """
    order = sorted(range(len(rollouts)), key=lambda i: rollouts[i].n_tokens)
    if tokens <= 0:
        return [order[s : s + rows] for s in range(0, len(order), rows)]
    plan: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i in order:
        r = rollouts[i]
        if cur and used + r.n_tokens > tokens:
            plan.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += r.n_tokens
    if cur:
        plan.append(cur)
    return plan


__all__ = ["PACKED_ATTENTION", "PACKING_MODES", "VARLEN_ATTENTION", "attention_impl", "use_packing", "PackedBatch", "micro_plan", "pack", "packable", "packed_logprobs", "pad_rows",
           "RowLogprobs", "row_logprobs"]
