"""Load the tokenizer / multimodal processor of an HF folder, with or without torchvision.

The Qwen-VL processors (``Qwen3VLProcessor``, ``Qwen2_5_VLProcessor``, ``Qwen2VLProcessor``)
refuse to be built when torchvision is unusable (as with the CPU torch wheel here): their video
processor is torchvision-only, and the processor's argument check fails on ``None``. We subclass
the processor to accept ``video_processor=None`` and load the tokenizer and the PIL image
processor separately. Videos are then unsupported (no
``video_processor``: the renderer raises a clear error); images work. With torchvision present, the stock
``AutoProcessor`` path is used.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

#: model_type -> processor class name in transformers, for the Qwen-VL family
#: the Qwen-VL vision special tokens: never sampled in a rollout (HF backend) and masked out of
#: the loss (trainer) -- a sampled image pad breaks the next forward's feature matching
VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
QWEN_VL_PROCESSORS = {
    "qwen3_5": "Qwen3VLProcessor",
    "qwen3_5_moe": "Qwen3VLProcessor",
    "qwen3_vl": "Qwen3VLProcessor",
    "qwen3_vl_moe": "Qwen3VLProcessor",
    "qwen2_5_vl": "Qwen2_5_VLProcessor",
    "qwen2_vl": "Qwen2VLProcessor",
}


@lru_cache(maxsize=None)
def video_free_processor_class(name: str) -> type:
    """``name`` (a transformers processor class) subclassed to accept ``video_processor=None``."""
    import transformers

    base = getattr(transformers, name)

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor" and argument is None:
            return None
        return base.check_argument_for_proper_class(self, argument_name, argument)

    return type(f"VideoFree{name}", (base,), {"check_argument_for_proper_class": check_argument_for_proper_class})


@lru_cache(maxsize=64)
def _config_dict(path: str) -> dict:
    """``config.json`` of a local folder, or of a hub id through ``AutoConfig`` (HF cache)."""
    cfg = Path(path) / "config.json"
    if cfg.is_file():
        return json.loads(cfg.read_text())
    if Path(path).exists():
        raise FileNotFoundError(f"{path}: no config.json (not an HF model folder)")
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).to_dict()


def model_type(path: str | Path) -> str:
    return _config_dict(str(path)).get("model_type", "")


def is_vlm_dir(path: str | Path) -> bool:
    """True when the model's config has a vision tower."""
    return "vision_config" in _config_dict(str(path))


def torchvision_usable() -> bool:
    try:
        import torchvision  # noqa: F401
        import torchvision.ops  # noqa: F401  (the CUDA-linked wheels fail here)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return False
    return True


def load_processor(path: str | Path, *, trust_remote_code: bool = False) -> Any:
    """The processor of a VLM folder, else its tokenizer (both left-padding)."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

    path = str(path)
    if not is_vlm_dir(path):
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        tok.padding_side = "left"
        return tok
    if torchvision_usable():
        proc = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    else:
        name = QWEN_VL_PROCESSORS.get(model_type(path))
        if name is None:
            raise ImportError(
                f"{path}: model type {model_type(path)!r} needs torchvision for its processor, "
                "and torchvision is not usable here; only the Qwen-VL family has a fallback"
            )
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        image = AutoImageProcessor.from_pretrained(path, backend="pil")
        proc = video_free_processor_class(name)(
            image_processor=image, tokenizer=tok, video_processor=None,
            chat_template=getattr(tok, "chat_template", None),
        )
    proc.tokenizer.padding_side = "left"
    return proc


def tokenizer_of(processor_or_tokenizer: Any) -> Any:
    """The tokenizer inside a processor (or the argument itself when it is a tokenizer)."""
    return getattr(processor_or_tokenizer, "tokenizer", processor_or_tokenizer)


def save_processor(processor: Any, out: str | Path) -> None:
    """Save tokenizer and image processor separately (``processor.save_pretrained`` needs a
    video processor); both reload through :func:`load_processor`."""
    tokenizer_of(processor).save_pretrained(out)
    image = getattr(processor, "image_processor", None)
    if image is not None:
        image.save_pretrained(out)
