"""The HF backend's own decoding loop for dense text models: shared prefill, shrinking batch.

``HFBackend`` samples dense decoder-only text models (every layer full attention: Qwen3, Llama,
SmolLM2...) here instead of through ``model.generate``; VLMs and models with sliding-window or
linear-attention layers (Qwen3.5) keep ``generate`` (:func:`supports_fast_decode`). The loop
calls the model's ``forward`` with a ``DynamicCache`` and does three things ``generate`` does not:

* **one prefill per distinct prompt**: the G rollouts of a question share its prompt, so the
  prompt is run once and its cache rows are repeated (``DynamicCache.batch_select_indices``);
* **finished rows leave the batch** (EOS or a stop string): later steps run only the rows still
  writing, so a batch costs what its rows write, not its longest row times its size;
* **one uniform number per row** to sample: inverse-CDF sampling from the processed distribution
  (the same categorical as ``torch.multinomial``, a fraction of its cost on CPU); and the steps'
  attention masks built once, not at every step.

Everything else is ``generate``'s semantics: the same logits-processor chain
(:func:`zppo_core.engines.hf_sampling.build_processors`), EOS kept in the sample, ``ignore_eos``
masks EOS for the whole budget, greedy = argmax, and the log-prob of every token read from the
processed distribution. Under a sharded (FSDP2) module every forward is a collective: the loop
then keeps one row and keeps stepping until every rank is done (``max_over_ranks``), as
``generate(synced_gpus=True)`` does.

Shapes: U distinct prompts, B rows (U <= B), P padded prompt length, T = ``max_new_tokens``, V
vocabulary.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from zppo_core.engines.base import SamplingParams
from zppo_core.engines.hf_sampling import build_processors, collate_prompts
from zppo_core.engines.render import RenderedPrompt


@dataclass
class DecodedRow:
    """One row's result: its tokens (EOS included), their log-probs, why it ended and the stop
    string that ended it (``None`` for EOS or length)."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" | "length"
    stop_hit: str | None = None


def supports_fast_decode(model: torch.nn.Module, takes_images: bool) -> bool:
    """Whether :func:`decode` can sample ``model``: a decoder-only text model whose layers are all
    full attention (plain key/value cache rows that can be repeated and dropped) and whose
    ``forward`` takes explicit ``position_ids`` and ``logits_to_keep``."""
    if takes_images:
        return False
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(cfg, "is_encoder_decoder", False):
        return False
    layer_types = getattr(cfg, "layer_types", None) or ["full_attention"]
    if any(t != "full_attention" for t in layer_types) or getattr(cfg, "use_sliding_window", False):
        return False
    params = inspect.signature(model.forward).parameters
    return "position_ids" in params and "logits_to_keep" in params


def _cache_kw(model: torch.nn.Module) -> str:
    """The forward's cache keyword (``cache`` in recent transformers, ``past_key_values`` before)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def sample_from(scores: torch.Tensor, greedy: bool) -> torch.Tensor:
    """Token ids [B] drawn from processed ``scores`` [B, V] (-inf = filtered out): argmax when
    ``greedy``, else inverse-CDF sampling with one uniform draw per row."""
    if greedy:
        return scores.argmax(-1)
    cdf = torch.softmax(scores, -1).cumsum_(-1)
    u = torch.rand(scores.shape[0], 1, device=scores.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True)[:, 0].clamp_(max=scores.shape[1] - 1)


@dataclass
class _Live:
    """The rows still being stepped, each tensor holding exactly those rows (b of them), so a
    step reads them by plain slicing; :meth:`keep` drops rows from all of them at once."""

    rows: list[int]  # [b] row numbers (into the B rows)
    seq: torch.Tensor  # [b, P + T] prompt ids, then the sampled tokens
    logprobs: torch.Tensor  # [b, T] log-prob of each sampled token
    masks: torch.Tensor  # [b, ..., P + T] the steps' attention masks (:func:`_step_masks`)
    positions: torch.Tensor  # [b] position of each row's last token
    ended: torch.Tensor  # [b] bool: finished (kept only to step with, see ``keep_one``)
    cache: Any

    def keep(self, keep: torch.Tensor) -> None:
        """Keep rows ``keep`` (indices into this batch) here and in the cache."""
        self.cache.batch_select_indices(keep)
        self.rows = [self.rows[i] for i in keep.tolist()]
        self.seq, self.logprobs, self.masks = self.seq[keep], self.logprobs[keep], self.masks[keep]
        self.positions, self.ended = self.positions[keep], self.ended[keep]


def _prefill(model: torch.nn.Module, prompts: list[RenderedPrompt], pad_id: int, budget: int,
             cache_kw: str) -> tuple[_Live, torch.Tensor]:
    """One forward over the distinct prompts, its cache rows repeated for the rows that share
    one; returns the live batch of every row and the next-token logits [B, V] (float32)."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    index: dict[int, int] = {}
    src = torch.tensor([index.setdefault(id(p), len(index)) for p in prompts], device=device)
    inputs = collate_prompts(list({id(p): p for p in prompts}.values()), pad_id, device)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp_(min=0)
    cache = DynamicCache(config=model.config)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                   **{cache_kw: cache}).logits[:, -1]
    if len(index) < len(prompts):  # the rows of one prompt share its prefill
        cache.batch_select_indices(src)
    n = len(prompts)
    seq = torch.cat([ids[src], torch.full((n, budget), pad_id, dtype=ids.dtype, device=device)], 1)
    full_mask = torch.cat([mask[src], torch.ones(n, budget, dtype=mask.dtype, device=device)], 1)
    live = _Live(list(range(n)), seq, torch.zeros(n, budget, device=device), _step_masks(model, full_mask, logits.dtype),
                 positions[src, -1], torch.zeros(n, dtype=torch.bool, device=device), cache)
    return live, logits[src].float()


@torch.no_grad()
def decode(model: torch.nn.Module, prompts: list[RenderedPrompt], params: SamplingParams, *, pad_id: int,
           eos_ids: list[int], suppress_ids: list[int], tokenizer: Any,
           max_over_ranks: Callable[[int], int] | None = None) -> list[DecodedRow]:
    """Sample one completion per entry of ``prompts`` (the same object repeated = one prefill).
    See the module docstring; ``max_over_ranks`` makes every forward a matched collective."""
    budget, cache_kw = params.max_new_tokens, _cache_kw(model)
    live, logits = _prefill(model, prompts, pad_id, budget, cache_kw)
    width = live.seq.shape[1] - budget
    eos = torch.tensor(eos_ids, device=logits.device)
    procs = build_processors(params, width, suppress_ids)
    stops = [s for s in params.stop if s]
    tail = max((len(s) for s in stops), default=0) + 4  # tokens decoded to look for a stop string
    out: dict[int, DecodedRow] = {}

    def finish(j: int, length: int, reason: str, hit: str | None = None) -> None:
        out[live.rows[j]] = DecodedRow(live.seq[j, width: width + length].tolist(),
                                       live.logprobs[j, :length].tolist(), reason, hit)
        live.ended[j] = True

    for t in range(budget):
        if params.ignore_eos:  # as generate's min_new_tokens: EOS is never sampled
            logits[:, eos] = float("-inf")
        scores = procs(live.seq[:, : width + t], logits) if procs else logits
        lp = torch.log_softmax(scores, -1)
        tok = sample_from(scores, params.temperature <= 0)
        live.seq[:, width + t] = tok
        live.logprobs[:, t] = lp.gather(1, tok[:, None])[:, 0]
        writing = ~live.ended  # a rank that is done keeps one ended row stepping (collective)
        hit_eos = writing & torch.isin(tok, eos) if not params.ignore_eos else torch.zeros_like(writing)
        for j in hit_eos.nonzero()[:, 0].tolist():
            finish(j, t + 1, "stop")
        if stops:
            for j in (writing & ~hit_eos).nonzero()[:, 0].tolist():
                text = tokenizer.decode(live.seq[j, max(width, width + t + 1 - tail): width + t + 1])
                hit = next((s for s in stops if s in text), None)
                if hit is not None:
                    finish(j, t + 1, "stop", hit)
        if t + 1 == budget or not _keep_stepping(bool(live.ended.all()), max_over_ranks):
            break
        _shrink(live, keep_one=max_over_ranks is not None)
        live.positions = live.positions + 1
        logits = model(input_ids=live.seq[:, width + t: width + t + 1], attention_mask=live.masks[..., : width + t + 1],
                       position_ids=live.positions[:, None], use_cache=True,
                       **{cache_kw: live.cache}).logits[:, -1].float()
    for j in (~live.ended).nonzero()[:, 0].tolist():
        finish(j, budget, "length")
    return [out[row] for row in range(len(prompts))]


def _step_masks(model: torch.nn.Module, full_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The attention masks of the one-token steps, sliced per step. Under sdpa or eager
    attention: the 4D additive mask [B, 1, 1, P + T] in the compute ``dtype`` (0 = attend, the
    dtype's minimum = padding) that the model would otherwise build from ``full_mask`` [B, P + T]
    at every step -- built once (transformers takes a 4D mask as it is). Under other kernels
    (flash attention takes the 2D mask): ``full_mask`` itself."""
    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return full_mask
    bias = torch.zeros(full_mask.shape, dtype=dtype, device=full_mask.device)
    return bias.masked_fill_(full_mask == 0, torch.finfo(dtype).min)[:, None, None, :]


def _keep_stepping(all_done: bool, max_over_ranks: Callable[[int], int] | None) -> bool:
    """Another step? Not when every row is done -- on every rank, when forwards are collectives."""
    if max_over_ranks is None:
        return not all_done
    return bool(max_over_ranks(int(not all_done)))


def _shrink(live: _Live, keep_one: bool) -> None:
    """Drop the finished rows of ``live`` (and their cache rows); with ``keep_one`` the batch
    never becomes empty (a rank that is done still steps with one row, its output discarded)."""
    if not bool(live.ended.any()):
        return
    keep = (~live.ended).nonzero()[:, 0]
    if keep.numel() == 0:
        if not keep_one:
            return
        keep = keep.new_zeros(1)
    live.keep(keep)


__all__ = ["DecodedRow", "decode", "sample_from", "supports_fast_decode"]
