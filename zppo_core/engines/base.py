"""The generation-backend protocol shared by the trainer and the evaluation runner.

A backend takes a batch of :class:`GenerationRequest` (chat messages, optional images),
``n`` samples per request and :class:`SamplingParams`, and returns per request a list of
``n`` :class:`Sample` (text, generated token ids, their log-probs under the sampling policy).

Implementations (each in its own module beside this one):
- ``transformers`` — in-process HF ``generate`` (CPU here, GPU elsewhere), text and Qwen-VL.
- ``vllm`` — in-process vLLM engine (GPU colocation; sleep/wake, weight sync).
- ``openai`` — an OpenAI-compatible HTTP server (``vllm serve``) for teacher/compressor/judge.
- ``recorded`` — replays stored responses (offline teacher; a documented departure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # the config's decoding sections; config imports nothing of the engines
    from zppo_core.config.schema import SamplingConfig


def request_seeds(base: int | None, count: int) -> list[int | None]:
    """One seed per request of a ``generate`` call, from the call's ``base`` seed.

    vLLM gives the ``n`` samples of a seeded request seeds ``seed .. seed + n - 1``; one seed on
    every request would give every prompt the same noise. Seeds are 62-bit hashes of
    ``(base, index)``, so the ranges of a call, of other steps and of other ranks do not meet
    (for any practical ``n``). ``base is None``: no seeds (the engine's own stream).
    Shape: ``count`` -> list of ``count``."""
    if base is None:
        return [None] * count
    import hashlib

    return [int.from_bytes(hashlib.blake2b(f"{base}:{i}".encode(), digest_size=8).digest(), "big") >> 2
            for i in range(count)]


@dataclass
class SamplingParams:
    """Decoding parameters; mirrors :class:`zppo_core.config.SamplingConfig`."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    #: keep sampling past EOS up to max_new_tokens (benchmarks; vLLM's ``ignore_eos``)
    ignore_eos: bool = False

    @classmethod
    def from_config(cls, cfg: SamplingConfig, **over: Any) -> "SamplingParams":
        kw = {k: getattr(cfg, k) for k in cls.__dataclass_fields__ if hasattr(cfg, k)}
        kw.update(over)
        return cls(**kw)


@dataclass
class GenerationRequest:
    """One prompt: chat ``messages`` ([{"role": ..., "content": str}]) and optional images.

    ``images`` are PIL images (or paths/bytes) referenced, in order, by the user turn; the
    backend inserts the model's vision placeholders. ``request_id`` is free for the caller.
    ``prompt_ids``, when set, is used verbatim instead of rendering ``messages``.
    ``chat_template_kwargs``: this request's chat-template switches (e.g. ``{"enable_thinking":
    False}`` for a compression request), merged over the backend's own.
    """

    messages: list[dict[str, Any]]
    images: list[Any] = field(default_factory=list)
    request_id: str = ""
    prompt_ids: list[int] | None = None
    chat_template_kwargs: dict[str, Any] | None = None

    def template_kwargs(self, backend_default: dict[str, Any]) -> dict[str, Any]:
        """The chat-template switches this request is rendered with: the backend's, then its own."""
        return {**backend_default, **(self.chat_template_kwargs or {})}


@dataclass
class Sample:
    """One sampled continuation.

    ``token_ids``: [T] generated ids (no prompt, EOS included when it was sampled);
    ``logprobs``: [T] log-probs of those ids under the sampling policy (after temperature/
    top-p processing as the backend applies them; ``None`` where the backend cannot give them);
    ``finish_reason``: "stop" | "length" (| "missing": the recorded backend had no response
    for this request; text and token_ids are empty).
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    finish_reason: str = "stop"
    prompt_ids: list[int] | None = None


@runtime_checkable
class GenerationBackend(Protocol):
    """Anything that can sample continuations for a batch of chat requests."""

    def generate(
        self, requests: list[GenerationRequest], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        """Return ``len(requests)`` lists of ``n`` samples each, in request order."""
        ...


class BackendError(RuntimeError):
    """A backend failed in a way the caller should report (bad config, server down...)."""


class TransientBackendError(BackendError):
    """A failure worth retrying (timeout, connection refused, 5xx)."""
