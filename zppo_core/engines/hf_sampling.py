"""Pieces of the HF backend's sampling loop: batch collation, logits processors, finish tracking.

Shapes: B = rows in the batch (requests x n), P = padded prompt length, V = vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from zppo_core.engines.base import SamplingParams
from zppo_core.engines.render import RenderedPrompt

#: processor outputs laid out per token ([1, P]) that are left-padded with 0 like input_ids
PER_TOKEN_KEYS = ("mm_token_type_ids", "token_type_ids")


def collate_prompts(prompts: list[RenderedPrompt], pad_id: int, device: Any) -> dict[str, torch.Tensor]:
    """Left-padded ``input_ids``/``attention_mask`` [B, P]; per-token extras left-padded too;
    image tensors (``pixel_values`` [sum patches, D], ``image_grid_thw`` [sum images, 3])
    concatenated in row order, which is how Qwen-VL matches them to placeholder tokens."""
    width = max(p.n_prompt_tokens for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    batch: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    keys = {k for p in prompts for k in p.model_inputs}
    for k in keys & set(PER_TOKEN_KEYS):
        batch[k] = torch.zeros_like(ids)
    for b, p in enumerate(prompts):
        off = width - p.n_prompt_tokens
        ids[b, off:] = torch.tensor(p.input_ids, dtype=torch.long)
        mask[b, off:] = 1
        for k in keys & set(PER_TOKEN_KEYS):
            if k in p.model_inputs:
                batch[k][b, off:] = p.model_inputs[k][0]
    for k in sorted(keys - set(PER_TOKEN_KEYS)):
        parts = [p.model_inputs[k] for p in prompts if k in p.model_inputs]
        batch[k] = torch.cat(parts, dim=0)
    return {k: v.to(device) for k, v in batch.items()}


class PresencePenaltyLogitsProcessor(LogitsProcessor):
    """vLLM/OpenAI presence penalty: subtract ``penalty`` from every token already *generated*
    (prompt tokens excluded). scores [B, V] -> [B, V]."""

    def __init__(self, penalty: float, prompt_len: int) -> None:
        self.penalty = penalty
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        gen = input_ids[:, self.prompt_len:]
        if gen.shape[1] == 0:
            return scores
        seen = torch.zeros_like(scores).scatter_(1, gen, 1.0)
        return scores - self.penalty * seen


class CaptureLogProbs(LogitsProcessor):
    """Last in the chain: keeps ``log_softmax`` of the final (processed) scores [B, V] so the
    finish tracker can read the log-prob of the token sampled from them."""

    def __init__(self) -> None:
        self.last: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.last = torch.log_softmax(scores.float(), dim=-1)
        return scores


def build_processors(params: SamplingParams, prompt_len: int, suppress_ids: list[int]) -> LogitsProcessorList:
    """The processor chain in vLLM's order (penalties, then temperature, top-k, top-p, min-p);
    scores [B, V] -> the processed scores the token is sampled from (and its log-prob read)."""
    procs = LogitsProcessorList()
    if params.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
    if params.presence_penalty:
        procs.append(PresencePenaltyLogitsProcessor(params.presence_penalty, prompt_len))
    if suppress_ids:
        procs.append(SuppressTokensLogitsProcessor(suppress_ids, device="cpu"))
    if params.temperature > 0:
        if params.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k and params.top_k > 0:
            procs.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            procs.append(TopPLogitsWarper(params.top_p))
        if params.min_p > 0:
            procs.append(MinPLogitsWarper(params.min_p))
    return procs


class FinishTracker(StoppingCriteria):
    """Per-row EOS / stop-string detection and the log-prob of every sampled token.

    Called by ``generate`` after each new token (input_ids [B, P + t]); a row finishes at the
    first EOS id (kept in the sample, as vLLM does) or when its decoded tail contains a stop string.
    """

    def __init__(self, tokenizer: Any, prompt_len: int, eos_ids: list[int], stop: list[str],
                 max_new_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.eos = torch.tensor(eos_ids, dtype=torch.long)
        self.stop = [s for s in stop if s]
        self.tail = max((len(s) for s in self.stop), default=0) + 4  # tokens to decode
        self.max_new_tokens = max_new_tokens
        self.capture = CaptureLogProbs()
        self.step_logprobs: list[torch.Tensor] = []  # t -> [B]
        self.finished: dict[int, tuple[int, str, str | None]] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kw: Any) -> torch.BoolTensor:
        step = input_ids.shape[1] - self.prompt_len
        new = input_ids[:, -1]
        if self.capture.last is not None and len(self.step_logprobs) < step:
            self.step_logprobs.append(self.capture.last.gather(1, new[:, None].to(self.capture.last.device))[:, 0].cpu())
        is_eos = torch.isin(new.cpu(), self.eos)
        for b in range(input_ids.shape[0]):
            if b in self.finished:
                continue
            if is_eos[b]:
                self.finished[b] = (step, "stop", None)
            elif self.stop:
                tail = self.tokenizer.decode(input_ids[b, max(self.prompt_len, input_ids.shape[1] - self.tail):])
                hit = next((s for s in self.stop if s in tail), None)
                if hit is not None:
                    self.finished[b] = (step, "stop", hit)
        done = [b in self.finished for b in range(input_ids.shape[0])]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def result(self, b: int, generated: int) -> tuple[int, str, str | None]:
        """(number of tokens of row ``b``, finish reason, stop string hit or None)."""
        if b in self.finished:
            return self.finished[b]
        return min(generated, self.max_new_tokens), "length", None

    def logprobs(self, b: int, length: int) -> list[float]:
        return [float(self.step_logprobs[t][b]) for t in range(min(length, len(self.step_logprobs)))]
