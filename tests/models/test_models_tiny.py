"""Tiny tokenizer / model builders, the atomic cache and resolve()."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import torch

from zppo_core.models import ModelSpecError, parse_spec, resolve
from zppo_core.models.cache import build_cached, cache_root
from zppo_core.models.processor import is_vlm_dir, load_processor
from zppo_core.models.tokenizer import CHAT_TEMPLATE, build_tokenizer, special_ids


def test_tokenizer_specials_and_template():
    tok = build_tokenizer()
    sp = special_ids(tok)
    assert len(set(sp.values())) == 9 and len(tok) < 1100
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}],
        tokenize=False, add_generation_prompt=True,
    )
    assert text == "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n"
    ids = tok("<think>12</think>", add_special_tokens=False)["input_ids"]
    # <think> is one token; digits are split one by one (Qwen pre-tokenizer)
    assert ids[0] == sp["<think>"] and ids[-1] == sp["</think>"] and len(ids) == 4
    assert tok.decode(ids) == "<think>12</think>"
    assert CHAT_TEMPLATE == tok.chat_template


def test_tokenizer_is_deterministic():
    a, b = build_tokenizer(), build_tokenizer()
    assert a.get_vocab() == b.get_vocab()


def test_tiny_text_folder_loads_like_a_checkpoint(tiny_text_dir):
    from transformers import AutoModelForCausalLM

    cfg = json.loads((Path(tiny_text_dir) / "config.json").read_text())
    assert cfg["model_type"] == "qwen3" and cfg["head_dim"] == 32
    assert (Path(tiny_text_dir) / "model.safetensors").is_file()
    tok = load_processor(tiny_text_dir)
    assert tok.padding_side == "left" and not is_vlm_dir(tiny_text_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_text_dir)
    assert model.config.vocab_size == len(tok)
    out = model(torch.tensor([[1, 2, 3]]))
    assert out.logits.shape == (1, 3, len(tok))


def test_tiny_vlm_processor_and_forward(tiny_vlm_dir):
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    assert is_vlm_dir(tiny_vlm_dir)
    proc = load_processor(tiny_vlm_dir)
    assert proc.video_processor is None  # no torchvision here
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir)
    assert type(model).__name__ == "Qwen3_5ForConditionalGeneration"
    assert model.config.text_config.layer_types == ["linear_attention", "full_attention"]
    text = proc.tokenizer.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}],
        tokenize=False, add_generation_prompt=True)
    inputs = proc(text=[text], images=[Image.new("RGB", (64, 64), (255, 0, 0))], return_tensors="pt")
    # 64x64 image, 16 px patches, merge 2: 4x4 patches -> 4 placeholder tokens
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert int((inputs["input_ids"] == proc.image_token_id).sum()) == 4
    out = model(**inputs)
    assert out.logits.shape[:2] == inputs["input_ids"].shape


def test_parse_spec_and_passthrough(tmp_path):
    assert parse_spec("builtin:tiny-qwen3?warmstart=0") == ("tiny-qwen3", {"warmstart": "0"})
    assert resolve("Qwen/Qwen3.5-2B") == "Qwen/Qwen3.5-2B"
    assert resolve(str(tmp_path)) == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="local path /some/local/dir does not exist"):
        resolve("/some/local/dir")
    for bad in ("builtin:nope", "builtin:tiny-qwen3?x=1", "builtin:tiny-qwen3?warmstart=2",
                "builtin:smollm2-135m-instruct?warmstart=0", "builtin:tiny-qwen3?warmstart"):
        with pytest.raises(ModelSpecError):
            parse_spec(bad)


def test_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ZPPO_CACHE", str(tmp_path / "c"))
    assert cache_root() == (tmp_path / "c").resolve()
    assert cache_root(str(tmp_path / "d")) == (tmp_path / "d").resolve()
    monkeypatch.delenv("ZPPO_CACHE")
    assert cache_root() == Path("~/.cache/zppo").expanduser().resolve()


def test_build_cached_is_atomic_and_runs_once(tmp_path):
    calls = []

    def build(out: Path) -> None:
        calls.append(out)
        (out / "config.json").write_text("{}")

    target = tmp_path / "m"
    threads = [threading.Thread(target=build_cached, args=(target, build)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(calls) == 1 and (target / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.tmp")] == []


def test_build_cached_failure_leaves_nothing(tmp_path):
    def build(out: Path) -> None:
        (out / "partial").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        build_cached(tmp_path / "m", build)
    assert not (tmp_path / "m").exists()
    assert not any(p.name.startswith(".m.tmp") for p in tmp_path.iterdir())


def test_resolve_reuses_the_cached_folder(model_cache, tiny_text_dir):
    before = os.stat(Path(tiny_text_dir) / "model.safetensors").st_mtime_ns
    again = resolve("builtin:tiny-qwen3?warmstart=0", cache_dir=model_cache)
    assert again == tiny_text_dir
    assert os.stat(Path(again) / "model.safetensors").st_mtime_ns == before
