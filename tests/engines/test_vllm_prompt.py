"""The vLLM backend's prompt dict for verbatim prompt ids (no engine needed): with images the ids
go with ``multi_modal_data`` (a forced prefix after an image prompt), never re-rendered."""

from __future__ import annotations

from PIL import Image

from zppo_core.engines.base import GenerationRequest
from zppo_core.engines.vllm_engine import VLLMBackend


def _backend(**mm):
    b = VLLMBackend.__new__(VLLMBackend)  # only the prompt builder is exercised
    b.mm_kwargs = mm
    b.chat_template_kwargs = {}
    return b


def test_prompt_ids_are_sent_verbatim_with_or_without_images():
    req = GenerationRequest(messages=[{"role": "user", "content": "ignored"}], prompt_ids=[5, 6, 7])
    assert _backend()._prompt(req) == {"prompt_token_ids": [5, 6, 7]}
    img = Image.new("RGB", (8, 8))
    req = GenerationRequest(messages=[{"role": "user", "content": "ignored"}], images=[img], prompt_ids=[5, 9, 9, 7])
    p = _backend(max_pixels=64)._prompt(req)
    assert p["prompt_token_ids"] == [5, 9, 9, 7]
    assert len(p["multi_modal_data"]["image"]) == 1 and p["mm_processor_kwargs"] == {"max_pixels": 64}
