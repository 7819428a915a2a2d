"""In-memory weight sync (model.weight_sync: memory) and the colocated student engine's
arguments: pure parts exactly, the FSDP2 stream on two CPU ranks (every rank receives every
full tensor under its HF name: the collectives are matched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zppo_core.config import Config, replace
from zppo_core.engines.base import BackendError
from zppo_core.engines.vllm_engine import colocate_kwargs
from zppo_core.trainer.build import student_engine_kwargs
from zppo_core.trainer.weight_sync import hf_name, iter_full_params, resolve_weight_sync

ROOT = Path(__file__).resolve().parents[2]


def test_hf_name_strips_wrapper_prefixes():
    assert hf_name("module.model.layers.0._checkpoint_wrapped_module.mlp.up_proj.weight") == \
        "model.layers.0.mlp.up_proj.weight"
    assert hf_name("_orig_mod.lm_head.weight") == "lm_head.weight"
    assert hf_name("model.embed_tokens.weight") == "model.embed_tokens.weight"


def test_iter_full_params_plain_module_names_values_dtype():
    lin = torch.nn.Linear(2, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 1.0 / 3.0]]))
        lin.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    got = dict(iter_full_params(lin, torch.bfloat16))
    assert list(got) == ["weight", "bias"]
    assert all(t.dtype == torch.bfloat16 for t in got.values())
    assert got["weight"][2, 1].item() == torch.tensor(1.0 / 3.0).to(torch.bfloat16).item()
    assert got["bias"].tolist() == [0.5, -1.0, 2.0]


def test_resolve_weight_sync():
    assert resolve_weight_sync("memory", engine_in_process=True) == "memory"
    assert resolve_weight_sync("memory", engine_in_process=False) == "disk"  # CPU build / multiprocess engine
    assert resolve_weight_sync("disk", engine_in_process=True) == "disk"
    with pytest.raises(ValueError, match="model.weight_sync"):
        resolve_weight_sync("nccl", engine_in_process=True)


def test_colocate_kwargs_per_rank_engine():
    kw = colocate_kwargs(rank=3, world=8, seed=10, max_model_len=4096, max_num_batched_tokens=2048,
                         min_pixels=100, max_pixels=200)
    assert kw == {"seed": 13, "max_model_len": 4096, "max_num_batched_tokens": 4096, "tensor_parallel_size": 1,
                  "distributed_executor_backend": "external_launcher", "min_pixels": 100, "max_pixels": 200}
    one = colocate_kwargs(rank=0, world=1, seed=10, max_model_len=512, max_num_batched_tokens=1024)
    assert "distributed_executor_backend" not in one and one["seed"] == 10
    assert colocate_kwargs(rank=0, world=1, seed=0, max_model_len=512, max_num_batched_tokens=512,
                           in_process=True)["distributed_executor_backend"] == "external_launcher"
    # TP groups of 2: ranks 4 and 5 form group 2 and share its seed
    seeds = [colocate_kwargs(rank=r, world=8, seed=0, max_model_len=8, max_num_batched_tokens=8,
                             tensor_parallel_size=2)["seed"] for r in range(8)]
    assert seeds == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(BackendError, match="student_tp=3"):
        colocate_kwargs(rank=0, world=8, seed=0, max_model_len=8, max_num_batched_tokens=8, tensor_parallel_size=3)


def test_student_engine_kwargs_from_config_on_this_machine():
    cfg = replace(Config(), **{"rollout.student_max_model_len": 1024, "rollout.max_num_batched_tokens": 512,
                               "model.vllm_sleep_level": 1})
    kw = student_engine_kwargs(cfg, rank=1, world=2)
    assert kw["seed"] == cfg.schedule.seed + 1 and kw["distributed_executor_backend"] == "external_launcher"
    assert (kw["max_model_len"], kw["max_num_batched_tokens"]) == (1024, 1024)
    assert (kw["min_pixels"], kw["max_pixels"]) == (cfg.model.min_pixels, cfg.model.max_pixels)
    assert kw["sleep_level"] == 1
    # sleep mode needs CUDA (vLLM's CuMem allocator): off on a CPU-only machine, on with a GPU
    assert kw["enable_sleep_mode"] is torch.cuda.is_available()
    off = student_engine_kwargs(replace(cfg, **{"model.vllm_sleep_level": 0}), rank=0, world=1)
    assert off["enable_sleep_mode"] is False


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fsdp2_stream_gives_every_rank_every_full_tensor(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from fsdp2_worker import _tiny_lm

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
               PYTHONFAULTHANDLER="1")  # a crashing rank prints every thread's Python stack
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29671", str(Path(__file__).with_name("weight_sync_worker.py")),
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert not list(tmp_path.glob("teardown_rank*"))  # finish_rank left before the atexit teardown
    want = _tiny_lm().state_dict()
    for r in (0, 1):
        got = load_file(str(tmp_path / f"rank{r}.safetensors"))
        assert sorted(got) == sorted(want)  # HF names: no checkpoint-wrapper / FSDP prefixes
        for k, v in want.items():
            assert torch.equal(got[k], v.to(torch.bfloat16)), k
        info = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert info["dtypes"] == ["torch.bfloat16"]
    # the parameters really were sharded (each rank held a part only)
    l0 = json.loads((tmp_path / "rank0.json").read_text())["local"]
    l1 = json.loads((tmp_path / "rank1.json").read_text())["local"]
    name = "model.embed_tokens.weight"
    key = next(k for k in l0 if hf_name(k) == name)
    assert l0[key] + l1[key] == want[name].numel() and l0[key] < want[name].numel()
