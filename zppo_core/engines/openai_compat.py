"""OpenAI-compatible HTTP backend (a ``vllm serve`` endpoint: teacher, compressor, judge).

Requests go to ``/v1/chat/completions`` (chat messages; images as base64 data URLs) or, when a
request carries ``prompt_ids``, to ``/v1/completions`` with the token ids as the prompt. Each
request is one HTTP call asking for ``n`` choices with per-token log-probs; vLLM's
``return_tokens_as_token_ids`` extension makes every returned token read ``token_id:<id>`` so
the generated ids come back exactly (``return_token_ids`` also returns the prompt ids the
server rendered). vLLM-specific sampling fields (``top_k``, ``min_p``,
``repetition_penalty``) are sent as extra body fields, which vLLM accepts.

Robustness: a per-call timeout, retries with exponential backoff on transient failures
(connection errors, timeouts, HTTP 408/429/5xx), and at most ``max_concurrency`` calls in flight
(a thread pool). Other HTTP errors raise :class:`BackendError` with the server's message.
"""

from __future__ import annotations

import base64
import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from zppo_core.engines.base import (
    BackendError,
    GenerationRequest,
    Sample,
    SamplingParams,
    TransientBackendError,
    request_seeds,
)

if TYPE_CHECKING:
    from zppo_core.config.schema import ModelConfig

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TOKEN_ID_PREFIX = "token_id:"


def image_data_url(image: Any) -> str:
    """A PIL image, a path or raw bytes as a ``data:image/png;base64,...`` URL."""
    if isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
        return image
    if isinstance(image, (str, Path)):
        raw = Path(image).read_bytes()
    elif isinstance(image, (bytes, bytearray)):
        raw = bytes(image)
    else:  # PIL.Image
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG")
        raw = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def chat_messages(request: GenerationRequest) -> list[dict[str, Any]]:
    """OpenAI chat messages; request images go, in order, before the text of the first user turn."""
    out: list[dict[str, Any]] = []
    pending = list(request.images)
    for msg in request.messages:
        content = msg.get("content", "")
        if msg.get("role") == "user" and pending:
            parts = [{"type": "image_url", "image_url": {"url": image_data_url(im)}} for im in pending]
            text = content if isinstance(content, str) else "".join(
                p.get("text", "") for p in content if p.get("type") == "text"
            )
            out.append({"role": "user", "content": parts + [{"type": "text", "text": text}]})
            pending = []
        else:
            out.append({"role": msg["role"], "content": content})
    if pending:
        raise BackendError(f"request {request.request_id!r}: images given but no user message")
    return out


def sampling_body(params: SamplingParams, n: int) -> dict[str, Any]:
    """The OpenAI (+ vLLM extension) sampling fields for ``params``."""
    body: dict[str, Any] = {
        "n": n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
        "presence_penalty": params.presence_penalty,
        "top_k": params.top_k,
        "min_p": params.min_p,
        "repetition_penalty": params.repetition_penalty,
        "return_tokens_as_token_ids": True,
        "return_token_ids": True,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    if params.ignore_eos:
        body["ignore_eos"] = True  # vLLM extension
    return body


def _token_id(token: str) -> int:
    if not token.startswith(TOKEN_ID_PREFIX):
        raise BackendError(
            f"server returned token {token!r} without ids; it must support "
            "return_tokens_as_token_ids (vLLM's OpenAI server does)"
        )
    return int(token[len(TOKEN_ID_PREFIX):])


def parse_choice(choice: dict[str, Any], chat: bool) -> Sample:
    """One OpenAI choice (chat or completions shape) as a :class:`Sample`."""
    lp = choice.get("logprobs") or {}
    if chat:
        text = (choice.get("message") or {}).get("content") or ""
        entries = lp.get("content") or []
        ids = [_token_id(e["token"]) for e in entries]
        logprobs = [float(e["logprob"]) for e in entries]
    else:
        text = choice.get("text") or ""
        ids = [_token_id(t) for t in lp.get("tokens") or []]
        logprobs = [float(x) for x in lp.get("token_logprobs") or []]
    if choice.get("token_ids") is not None:  # vLLM's return_token_ids (also without logprobs)
        ids = [int(i) for i in choice["token_ids"]]
    return Sample(text, ids, logprobs if logprobs else None, choice.get("finish_reason") or "stop")


def server_kwargs(model_cfg: ModelConfig, base_url: str, role: str) -> dict[str, Any]:
    """:class:`OpenAIBackend` arguments of the ``role`` ("teacher" | "judge") server from the
    ``model`` section; its chat-template switches (``model.<role>_thinking``) go with every request."""
    return {"base_url": base_url, "timeout_s": model_cfg.server_timeout_s, "max_retries": model_cfg.server_retries,
            "chat_template_kwargs": thinking_kwargs(getattr(model_cfg, f"{role}_thinking"))}


def thinking_kwargs(enabled: bool) -> dict[str, Any]:
    """Chat-template switches of a thinking-mode flag (Qwen3 / Qwen3.5 templates read
    ``enable_thinking``; templates that do not ignore it)."""
    return {"enable_thinking": bool(enabled)}


def check_server(base_url: str, timeout_s: float, field: str,
                 transport: httpx.BaseTransport | None = None) -> None:
    """Raise :class:`BackendError` (one line naming ``field``) unless the OpenAI-compatible server
    at ``base_url`` answers ``GET /models`` with HTTP 200 within ``timeout_s`` seconds."""
    from zppo_core.redact import mask_url_credentials

    url = base_url.rstrip("/") + "/models"
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            status = client.get(url).status_code
        why = None if status == 200 else f"HTTP {status}"
    except (httpx.TimeoutException, httpx.TransportError) as e:
        why = f"{type(e).__name__}: no answer within {timeout_s:g} s" if isinstance(e, httpx.TimeoutException) \
            else f"{type(e).__name__}: {e}"
    if why is not None:
        raise BackendError(f"{field}: the server at {mask_url_credentials(url)} does not answer GET /models "
                           f"({why}); start it, or fix {field} (model.server_health_timeout_s sets the wait)")


class OpenAIBackend:
    """Generation against an OpenAI-compatible server (``base_url`` ends in ``/v1``)."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_concurrency: int = 8,
        logprobs: bool = True,
        transport: httpx.BaseTransport | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_concurrency = max_concurrency
        self.logprobs = logprobs
        self._model = model
        #: vLLM extensions of the chat endpoint: image resize limits, template switches
        self.chat_extra: dict[str, Any] = {}
        mm = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
        if mm:
            self.chat_extra["mm_processor_kwargs"] = mm
        if chat_template_kwargs:
            self.chat_extra["chat_template_kwargs"] = dict(chat_template_kwargs)

    @property
    def model(self) -> str:
        """Served model name; asked from ``/models`` when not given."""
        if self._model is None:
            data = self._call("GET", "/models")
            models = [m["id"] for m in data.get("data", [])]
            if not models:
                raise BackendError(f"{self.base_url}/models lists no model")
            self._model = models[0]
        return self._model

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.base_url + path
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                resp = self.client.request(method, url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = e
                continue
            if resp.status_code in RETRY_STATUS:
                last = TransientBackendError(f"{url}: HTTP {resp.status_code}: {resp.text[:300]}")
                continue
            if resp.status_code >= 400:
                raise BackendError(f"{url}: HTTP {resp.status_code}: {resp.text[:500]}")
            try:
                return resp.json()
            except ValueError:
                raise BackendError(f"{url}: HTTP {resp.status_code} with a body that is not JSON: "
                                   f"{' '.join(resp.text[:200].split())!r}") from None
        raise TransientBackendError(f"{url}: gave up after {self.max_retries + 1} attempts: {last}")

    def _one(self, request: GenerationRequest, n: int, params: SamplingParams) -> list[Sample]:
        body = {"model": self.model, **sampling_body(params, n)}
        chat = request.prompt_ids is None
        if chat:
            body["messages"] = chat_messages(request)
            body["logprobs"] = self.logprobs
            body.update(self.chat_extra)
            if request.chat_template_kwargs:
                body["chat_template_kwargs"] = request.template_kwargs(self.chat_extra.get("chat_template_kwargs", {}))
            path = "/chat/completions"
        else:
            if request.images:
                raise BackendError(
                    f"request {request.request_id!r}: prompt_ids with images needs the chat endpoint"
                )
            body["prompt"] = list(request.prompt_ids)
            if self.logprobs:
                body["logprobs"] = 0
            path = "/completions"
        data = self._call("POST", path, body)
        choices = sorted(data.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != n:
            raise BackendError(f"{path}: asked for {n} choices, got {len(choices)}")
        samples = [parse_choice(c, chat) for c in choices]
        for s, c in zip(samples, choices):
            served = c.get("prompt_token_ids") or data.get("prompt_token_ids")
            s.prompt_ids = request.prompt_ids if request.prompt_ids is not None else served
        return samples

    def generate(
        self, requests: list[GenerationRequest], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        if not requests:
            return []
        workers = max(1, min(self.max_concurrency, len(requests)))
        from dataclasses import replace

        # one seed per request (the call's seed on every request would give every prompt the
        # same noise: a server gives a request's n samples seeds seed .. seed + n - 1)
        per = [replace(params, seed=s) for s in request_seeds(params.seed, len(requests))]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda rp: self._one(rp[0], n, rp[1]), zip(requests, per)))

    def close(self) -> None:
        self.client.close()
