"""Render a :class:`GenerationRequest` into prompt token ids + processor outputs, in ONE place.

The HF backend samples from exactly these tensors, and the trainer calls :func:`render_prompt`
again (or reuses ``Sample.prompt_ids``) to recompute log-probs of the sampled tokens with the same
tokenisation and the same image preprocessing (the on-policy invariant: the loss covers only
sampled response tokens, and prompt + images are identical to what was sampled from).

Images: PIL images, file paths or raw bytes; converted to RGB and resized by the processor to
``min_pixels <= h*w <= max_pixels`` (paper: 256*32*32 to 1280*32*32; ``None`` keeps the
processor's saved setting). They are placed, in order, before the text of the first user turn
(the Qwen-VL convention) unless the messages already carry ``{"type": "image"}`` parts.
Videos raise :class:`BackendError` when the processor has no video processor (no torchvision).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zppo_core.engines.base import BackendError, GenerationRequest
from zppo_core.models.processor import tokenizer_of


@dataclass
class RenderedPrompt:
    """One rendered prompt.

    ``input_ids``: [P] prompt token ids (vision placeholders already expanded);
    ``model_inputs``: extra processor outputs for this prompt alone, e.g. ``pixel_values``
    [N_patches, C*T*p*p], ``image_grid_thw`` [N_images, 3], ``mm_token_type_ids`` [1, P];
    empty for text-only prompts; ``n_prompt_tokens`` == len(input_ids).
    """

    input_ids: list[int]
    model_inputs: dict[str, Any] = field(default_factory=dict)
    n_prompt_tokens: int = 0


class ImageLoadError(BackendError):
    """An image file/bytes cannot be decoded (unreadable, truncated, over PIL's pixel limit)."""


def load_image(image: Any, where: str = "") -> Any:
    """A PIL RGB image from a PIL image, a path or bytes (clear error naming ``where``).

    Decoding failures, including PIL's ``DecompressionBombError`` (more pixels than
    ``PIL.Image.MAX_IMAGE_PIXELS`` x 2), raise :class:`ImageLoadError`."""
    from PIL import Image

    try:
        if isinstance(image, Image.Image):
            return image.convert("RGB")
        if isinstance(image, (str, Path)):
            with Image.open(image) as im:
                return im.convert("RGB")
        if isinstance(image, (bytes, bytearray)):
            with Image.open(io.BytesIO(image)) as im:
                return im.convert("RGB")
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, ValueError, SyntaxError, DecompressionBombError...
        raise ImageLoadError(f"{where}: cannot read image {str(image)[:80]!r}: {type(e).__name__}: {e}") from e
    raise BackendError(f"{where}: unsupported image type {type(image).__name__}")


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def chat_with_images(request: GenerationRequest) -> list[dict[str, Any]]:
    """Messages in the processor's chat format, with one ``{"type": "image"}`` part per image."""
    where = f"request {request.request_id!r}"
    msgs = [{"role": m["role"], "content": m.get("content", "")} for m in request.messages]
    parts = [p for m in msgs if not isinstance(m["content"], str) for p in m["content"]]
    if any(p.get("type") == "video" for p in parts):
        raise BackendError(
            f"{where}: video input is not supported here (the Qwen-VL video processor needs "
            "torchvision, which is not usable with this torch build)"
        )
    n_marked = sum(p.get("type") == "image" for p in parts)
    if n_marked:
        if n_marked != len(request.images):
            raise BackendError(f"{where}: {n_marked} image parts but {len(request.images)} images")
        return msgs
    if not request.images:
        return msgs
    for m in msgs:
        if m["role"] == "user":
            m["content"] = [{"type": "image"} for _ in request.images] + _content_parts(m["content"])
            return msgs
    raise BackendError(f"{where}: images given but no user message")


def _image_kwargs(min_pixels: int | None, max_pixels: int | None) -> dict[str, Any]:
    if min_pixels is None and max_pixels is None:
        return {}
    size = {}
    if min_pixels is not None:
        size["shortest_edge"] = int(min_pixels)
    if max_pixels is not None:
        size["longest_edge"] = int(max_pixels)
    return {"images_kwargs": {"size": size}}


def render_prompt(
    processor_or_tokenizer: Any,
    request: GenerationRequest,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    chat_template_kwargs: dict[str, Any] | None = None,
) -> RenderedPrompt:
    """Token ids (and image tensors) of ``request`` exactly as the model is prompted."""
    where = f"request {request.request_id!r}"
    tok = tokenizer_of(processor_or_tokenizer)
    has_images = bool(request.images)
    if has_images and getattr(processor_or_tokenizer, "image_processor", None) is None:
        raise BackendError(f"{where}: has images but the model has no image processor (text-only model)")
    images = [load_image(im, where) for im in request.images]
    if request.prompt_ids is not None:
        ids = [int(i) for i in request.prompt_ids]
        extra = _image_inputs(processor_or_tokenizer, images, min_pixels, max_pixels, ids) if images else {}
        _check_placeholders(processor_or_tokenizer, ids, extra, where)
        return RenderedPrompt(ids, extra, len(ids))
    text = tok.apply_chat_template(
        chat_with_images(request), tokenize=False, add_generation_prompt=True,
        **(chat_template_kwargs or {}),
    )
    if not images:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return RenderedPrompt(list(ids), {}, len(ids))
    out = processor_or_tokenizer(
        text=[text], images=images, return_tensors="pt", **_image_kwargs(min_pixels, max_pixels)
    )
    ids = out["input_ids"][0].tolist()
    extra = {k: v for k, v in out.items() if k not in ("input_ids", "attention_mask")}
    _check_placeholders(processor_or_tokenizer, ids, extra, where)
    return RenderedPrompt(ids, extra, len(ids))


def _image_inputs(processor: Any, images: list[Any], min_pixels, max_pixels, ids: list[int]) -> dict[str, Any]:
    """Image tensors for verbatim ``prompt_ids`` (plus ``mm_token_type_ids``: 1 on image pads)."""
    import torch

    kw = _image_kwargs(min_pixels, max_pixels).get("images_kwargs", {})
    out = dict(processor.image_processor(images=images, return_tensors="pt", **kw))
    image_token = getattr(processor, "image_token_id", None)
    if image_token is not None:
        out["mm_token_type_ids"] = torch.tensor([[int(i == image_token) for i in ids]])
    return out


def _check_placeholders(processor: Any, ids: list[int], extra: dict[str, Any], where: str) -> None:
    """Image pad tokens in ``ids`` must equal the features the vision tower will produce."""
    grid = extra.get("image_grid_thw")
    image_token = getattr(processor, "image_token_id", None)
    if grid is None or image_token is None:
        return
    merge = getattr(processor.image_processor, "merge_size", 1)
    expected = int(grid.prod(-1).sum()) // (merge * merge)
    found = sum(1 for i in ids if i == image_token)
    if found != expected:
        raise BackendError(
            f"{where}: {found} image placeholder tokens but the images give {expected} features "
            "(prompt_ids rendered with different pixel limits or processor?)"
        )
