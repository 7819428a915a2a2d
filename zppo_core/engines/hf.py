"""In-process transformers backend: batched sampling with KV cache, left padding, EOS/stop.

``HFBackend`` wraps either a folder/spec (loaded with ``from_pretrained``) or the trainer's
*live* ``torch.nn.Module`` plus its processor/tokenizer: then every update the trainer makes is
seen by the next ``generate`` call with no weight sync. ``update_weights(dir)`` loads saved
safetensors into the wrapped module for the out-of-process case.

Dense text models are sampled by our own loop (:mod:`zppo_core.engines.hf_decode`: one prefill
per distinct prompt, finished rows leave the batch), VLMs and hybrid-attention models by HF
``generate``; both with our own logits-processor chain, applied in vLLM's order:
repetition penalty -> presence penalty (on generated tokens) -> suppression of vision special
tokens (a rollout must never emit ``<|image_pad|>`` & co.) -> temperature -> top-k -> top-p ->
min-p. The log-prob of each sampled token is read from the *processed* distribution (the
sampling policy; with ``top_p=1, top_k=-1`` that is ``log_softmax(logits / T)``). Greedy
(``temperature == 0``) reports ``log_softmax(logits)`` of the argmax token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from zppo_core.engines.base import BackendError, GenerationRequest, Sample, SamplingParams
from zppo_core.engines.hf_decode import DecodedRow, decode, supports_fast_decode
from zppo_core.engines.hf_sampling import FinishTracker, build_processors, collate_prompts
from zppo_core.engines.render import RenderedPrompt, render_prompt
from zppo_core.models.processor import VISION_TOKENS, is_vlm_dir, load_processor, tokenizer_of

#: generate() flags that switch off HF's own warpers/penalties (ours are in ``procs``), so a
#: model's generation_config.json (e.g. Qwen's top_k=20) cannot add a second, hidden chain.
_NEUTRAL_FLAGS = {
    False: {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
            "repetition_penalty": 1.0},
    True: {"do_sample": False, "repetition_penalty": 1.0},
}
#: the prompt of a rank's padding call under set_collective_sync (output discarded)
_FILLER_REQUEST = GenerationRequest(messages=[{"role": "user", "content": "."}])


#: weight files that load by unpickling (never loaded: a pickle can run code)
_PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def from_pretrained_checked(cls: Any, path: str, **kw: Any) -> Any:
    """``cls.from_pretrained(path, use_safetensors=True, **kw)`` whose user-fixable refusals are
    one-line :class:`~zppo_core.errors.UserError` s: a local folder with only pickled weights, and
    a model that needs its own code while ``model.trust_remote_code`` is off."""
    from zppo_core.errors import UserError

    folder = Path(path)
    if folder.is_dir() and not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for pat in _PICKLED_WEIGHTS for p in folder.glob(pat))
        if pickled:
            raise UserError(f"{folder}: only pickled weights ({', '.join(pickled[:3])}), which are never loaded "
                            "(unpickling can run code); convert them to safetensors")
    try:
        return cls.from_pretrained(path, use_safetensors=True, **kw)
    except ValueError as e:
        if "trust_remote_code" in str(e) and not kw.get("trust_remote_code"):
            raise UserError(f"{path}: the model needs its own Python code to load; set model.trust_remote_code: "
                            "true only if you trust its source") from None
        raise


def load_hf_model(path: str, *, dtype: str = "float32", device: str = "cpu",
                  trust_remote_code: bool = False) -> torch.nn.Module:
    """``from_pretrained`` of a text (CausalLM) or Qwen-VL (ImageTextToText) folder, safetensors only."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    cls = AutoModelForImageTextToText if is_vlm_dir(path) else AutoModelForCausalLM
    model = from_pretrained_checked(cls, path, dtype=dtype if dtype == "auto" else getattr(torch, dtype),
                                    trust_remote_code=trust_remote_code)
    return model.to(device).eval()


class HFBackend:
    """Generation with a transformers model (a path, or a live module + processor)."""

    def __init__(
        self,
        model: str | torch.nn.Module,
        processor: Any = None,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        batch_size: int = 64,
        chat_template_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        suppress_vision_tokens: bool | None = None,
    ) -> None:
        if isinstance(model, str):
            processor = processor or load_processor(model, trust_remote_code=trust_remote_code)
            model = load_hf_model(model, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        elif processor is None:
            raise BackendError("HFBackend: a live model needs its processor/tokenizer")
        self.model = model
        self.processor = processor
        self.tokenizer = tokenizer_of(processor)
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self.batch_size = batch_size
        self.chat_template_kwargs = chat_template_kwargs or {}
        self.eos_ids = self._eos_ids()
        #: token ids never sampled (VLMs only: a generated image pad breaks M-RoPE/feature
        #: matching in the next forward). The trainer must mask the same ids (logits = -inf)
        #: when it recomputes log-probs if it wants them to match ``Sample.logprobs`` exactly.
        self.suppress_ids = self._vision_ids() if suppress_vision_tokens is None else (
            self._vision_ids() if suppress_vision_tokens else [])
        #: set by a sharded trainer: max over ranks of an int (a collective); see set_collective_sync
        self._max_over_ranks: Callable[[int], int] | None = None
        #: dense text models are sampled by our own loop (:mod:`zppo_core.engines.hf_decode`:
        #: shared prefill, finished rows leave the batch); the others by ``model.generate``
        self.fast_decode = supports_fast_decode(
            model, takes_images=getattr(self.processor, "image_processor", None) is not None)

    def _vision_ids(self) -> list[int]:
        """Vision special token ids, when the model takes images (None -> VLM only)."""
        if getattr(self.processor, "image_processor", None) is None:
            return []
        ids = (self.tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS)
        return [i for i in ids if isinstance(i, int) and i >= 0 and i != self.tokenizer.unk_token_id]

    def _eos_ids(self) -> list[int]:
        gen = getattr(self.model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None) or self.tokenizer.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        if not ids:
            raise BackendError("HFBackend: model has no EOS token id")
        return ids

    # -- the on-policy helpers the trainer uses ---------------------------------------------
    def render(self, request: GenerationRequest) -> RenderedPrompt:
        """Prompt ids + image tensors of ``request`` (same settings as sampling)."""
        return render_prompt(self.processor, request, min_pixels=self.min_pixels, max_pixels=self.max_pixels,
                             chat_template_kwargs=request.template_kwargs(self.chat_template_kwargs))

    def set_collective_sync(self, max_over_ranks: Callable[[int], int] | None) -> None:
        """Generate from a module whose forward is a collective (FSDP2): every rank then makes
        the same number of ``model.generate`` calls (padding with a discarded one-prompt call)
        and each call decodes until every rank is done (``synced_gpus``)."""
        self._max_over_ranks = max_over_ranks

    @property
    def is_collective(self) -> bool:
        """True when every rank must call :meth:`generate` (even with no requests)."""
        return self._max_over_ranks is not None

    def update_weights(self, model_dir: str) -> None:
        """Load the safetensors in ``model_dir`` into the wrapped module (strict on names)."""
        from zppo_core.engines.weights import load_safetensors_dir

        load_safetensors_dir(self.model, model_dir)

    # -- generation ---------------------------------------------------------------------------
    def generate(
        self, requests: list[GenerationRequest], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        if n < 1:
            raise BackendError(f"HFBackend.generate: n must be >= 1, got {n}")
        rendered = [self.render(r) for r in requests]
        rows = [(i, rp) for i, rp in enumerate(rendered) for _ in range(n)]
        out: list[list[Sample]] = [[] for _ in requests]
        device = next(self.model.parameters()).device
        # a seeded call must not reset the caller's (trainer's) global RNG stream
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [],
                                   enabled=params.seed is not None):
            if params.seed is not None:
                torch.manual_seed(params.seed)
            batches = [rows[s: s + self.batch_size] for s in range(0, len(rows), self.batch_size)]
            n_calls = self._max_over_ranks(len(batches)) if self._max_over_ranks else len(batches)
            for j in range(n_calls):
                if j >= len(batches):  # this rank is out of prompts: a discarded call keeps ranks in step
                    self._generate_batch([self.render(_FILLER_REQUEST)], params)
                    continue
                for (i, rp), sample in zip(batches[j], self._generate_batch([rp for _, rp in batches[j]], params)):
                    out[i].append(sample)
        return out

    @torch.no_grad()
    def _generate_batch(self, prompts: list[RenderedPrompt], params: SamplingParams) -> list[Sample]:
        was_training = self.model.training
        self.model.eval()
        # a sharded (FSDP2) module: generate() runs parts of the model outside its forward
        # (VLM image features), so the root unit's parameters are gathered for the whole call
        sharded_root = self._max_over_ranks is not None and hasattr(self.model, "unshard")
        if sharded_root:
            self.model.unshard()
        try:
            if self.fast_decode:
                rows = decode(self.model, prompts, params, pad_id=self.tokenizer.pad_token_id, eos_ids=self.eos_ids,
                              suppress_ids=self.suppress_ids, tokenizer=self.tokenizer,
                              max_over_ranks=self._max_over_ranks)
            else:
                rows = self._hf_generate(prompts, params)
        finally:
            if sharded_root:
                self.model.reshard()
            self.model.train(was_training)
        return [self._sample(r, p.input_ids) for r, p in zip(rows, prompts)]

    def _hf_generate(self, prompts: list[RenderedPrompt], params: SamplingParams) -> list[DecodedRow]:
        """``model.generate`` with our processor chain and finish tracking (VLMs, hybrid models)."""
        device = next(self.model.parameters()).device
        inputs = collate_prompts(prompts, self.tokenizer.pad_token_id, device)
        prompt_len = inputs["input_ids"].shape[1]
        eos_ids = [] if params.ignore_eos else self.eos_ids
        tracker = FinishTracker(self.tokenizer, prompt_len, eos_ids, params.stop, params.max_new_tokens)
        greedy = params.temperature <= 0
        procs = build_processors(params, prompt_len, self.suppress_ids)
        procs.append(tracker.capture)
        seqs = self.model.generate(
            **inputs, **_NEUTRAL_FLAGS[greedy], max_new_tokens=params.max_new_tokens,
            eos_token_id=self.eos_ids, pad_token_id=self.tokenizer.pad_token_id,
            # ignore_eos: HF masks EOS for the whole budget (vLLM samples past it instead)
            min_new_tokens=params.max_new_tokens if params.ignore_eos else None,
            logits_processor=procs, stopping_criteria=[tracker], use_cache=True,
            synced_gpus=self._max_over_ranks is not None,
        )
        rows = []
        for b in range(len(prompts)):
            gen = seqs[b, prompt_len:].tolist()
            length, reason, stop_at = tracker.result(b, len(gen))
            rows.append(DecodedRow(gen[:length], tracker.logprobs(b, length), reason, stop_at))
        return rows

    def _sample(self, row: DecodedRow, prompt_ids: list[int]) -> Sample:
        text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
        if row.stop_hit is not None:  # vLLM semantics: the stop string is not part of the text
            text = text[: text.find(row.stop_hit)] if row.stop_hit in text else text
        return Sample(text, row.token_ids, row.logprobs, row.finish_reason, list(prompt_ids))
