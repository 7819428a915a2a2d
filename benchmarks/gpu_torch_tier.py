"""Torch tier of ``benchmarks/gpu_check.py``: the trainer's own update path on one GPU with only
torch, transformers and accelerate (no vLLM, Prefect, MLflow or DuckDB; the package need not be
installed: run from the repository root).

Items (each returns ``{"ok": bool, ...figures}``):

- ``env``: versions, device, its bf16 peak, the Gated-DeltaNet kernels importable, and that the
  trainer's update modules imported nothing of vLLM / Prefect / MLflow / DuckDB.
- ``update``: :func:`zppo_core.trainer.update.run_updates` (FSDP2 over a one-rank NCCL world, bf16
  compute, fp32 master weights, AdamW) on a randomly initialised Qwen3.5 text model of each
  shape in :data:`SHAPES`, one micro-batch of ``schedule.micro_batch`` sequences of
  ``rollout.max_prompt_tokens + rollout.student.max_new_tokens`` tokens (paper.yaml), with and
  without activation checkpointing + log-prob chunking: peak memory, update tokens/s, MFU
  (``6 * params * tokens`` per second over the device's bf16 peak; attention and recompute not
  counted). PASS: the memory-saving setting fits and needs less memory than the other.
- ``gdn``: which Gated-DeltaNet implementation transformers takes (fla / causal-conv1d kernels
  when importable, else its torch fallback) and the forward+backward seconds of one such layer.
- ``sharded_equals_single``: one update sharded (FSDP2, fp32 compute) and one in a plain process
  from the same weights and batch give the same parameters.
- ``hf_generate``: the transformers generation backend (:mod:`zppo_core.engines.hf`) on the device.

``tiny=True`` swaps every shape for a two-layer model and short sequences (the CPU smoke run).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

#: the modules the torch tier must not import (absent on the lent machine)
FORBIDDEN = ("vllm", "prefect", "mlflow", "duckdb")
#: dense bf16 tensor-core peak (TFLOP/s) by device-name fragment; unknown devices report no MFU
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}
#: Qwen3.5 text shapes: 0.8B from its published config; 2B assumed (hidden 2048, FFN 6144) -- the
#: figures are for memory/speed planning, not the real checkpoints
SHAPES: dict[str, dict[str, int]] = {
    "qwen3.5-0.8b": dict(hidden_size=1024, intermediate_size=3584, num_hidden_layers=24, num_attention_heads=8,
                         num_key_value_heads=2, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=16,
                         linear_key_head_dim=128, linear_value_head_dim=128, vocab_size=248_320),
    "qwen3.5-2b": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=24, num_attention_heads=8,
                       num_key_value_heads=2, head_dim=256, linear_num_key_heads=16, linear_num_value_heads=16,
                       linear_key_head_dim=128, linear_value_head_dim=128, vocab_size=248_320),
}
TINY_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=32, linear_num_key_heads=2, linear_num_value_heads=2,
                  linear_key_head_dim=16, linear_value_head_dim=16, vocab_size=512)
#: tokens per sequence of the tiny run (prompt, response)
TINY_LENGTHS = (24, 40)


class LocalAccelerator:
    """The few members of ``accelerate.Accelerator`` that :class:`~zppo_core.trainer.distributed.Dist`
    uses, for one process (the update path without accelerate's launcher state)."""

    process_index, num_processes, is_main_process = 0, 1, True

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, params: Any, max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(list(params), max_norm)

    def wait_for_everyone(self) -> None:
        return None


def qwen35_text_model(shape: dict[str, int], seed: int = 0) -> torch.nn.Module:
    """A randomly initialised ``Qwen3_5ForCausalLM`` of ``shape`` (fp32, CPU), Qwen3.5's layer
    pattern (three Gated-DeltaNet layers, then full attention)."""
    from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig

    n = shape["num_hidden_layers"]
    types = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(n)]
    cfg = Qwen3_5TextConfig(**shape, layer_types=types, tie_word_embeddings=True, max_position_embeddings=32_768)
    torch.manual_seed(seed)
    model = Qwen3_5ForCausalLM(cfg).float()
    model.config.use_cache = False
    return model


def rollouts(n: int, prompt_len: int, response_len: int, vocab: int, seed: int = 0) -> list[Any]:
    """``n`` rollouts of one group, rewards alternating 1 / 0 (non-zero advantages)."""
    from zppo_core.trainer.batch import Rollout

    g = torch.Generator().manual_seed(seed)
    ids = lambda k: torch.randint(3, vocab, (k,), generator=g).tolist()  # noqa: E731
    return [Rollout(uid="g", kind="plain", question_id="q", prompt_ids=ids(prompt_len), response_ids=ids(response_len),
                    reward=float(i % 2 == 0)) for i in range(n)]


def ensure_world(device: torch.device) -> None:
    """A one-rank process group (NCCL on CUDA, gloo on CPU) for FSDP2."""
    import torch.distributed as td

    if td.is_initialized():
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29_500 + os.getpid() % 1000))
    td.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1)


@dataclass
class UpdateSetting:
    """One update measurement: layout, compute dtype and the two memory switches."""

    sharded: bool = True
    compute_dtype: torch.dtype = torch.bfloat16
    activation_checkpointing: bool = True
    logprob_chunk: int = 1024


def build_update(model: torch.nn.Module, setting: UpdateSetting, device: torch.device, micro_batch: int) -> Any:
    """The trainer's :class:`UpdateContext` around ``model`` laid out as ``setting`` says."""
    from zppo_core.config import Config
    from zppo_core.trainer.build import build_optimizer
    from zppo_core.trainer.distributed import Dist
    from zppo_core.trainer.parallel import apply_fsdp2, enable_activation_checkpointing
    from zppo_core.trainer.state import UpdateContext

    cfg = Config()
    algo = type(cfg.algo)(**{**vars(cfg.algo), "iterations": 1, "reuse_old_logprobs": True})
    if setting.activation_checkpointing:
        enable_activation_checkpointing(model)
    if setting.sharded:
        ensure_world(device)
        apply_fsdp2(model, compute_dtype=setting.compute_dtype, device_type=device.type)
    else:
        model.to(device)
    dist = Dist(LocalAccelerator(device), "fsdp2" if setting.sharded else "single")
    return UpdateContext(model=model, optimizer=build_optimizer(model, cfg.optim), algo=algo, micro_batch=micro_batch,
                         grad_clip=cfg.optim.grad_clip, temperature=1.0, pad_id=0, vision_ids=set(), dist=dist,
                         logprob_chunk=setting.logprob_chunk, packing="off", reuse_old_logprobs=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bf16_peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)


def measure_update(shape: dict[str, int], setting: UpdateSetting, device: torch.device, micro_batch: int,
                   lengths: tuple[int, int]) -> dict[str, Any]:
    """One ``run_updates`` call (after a short warm-up): seconds, tokens/s, peak GiB, MFU; or ``oom``."""
    from zppo_core.trainer.update import run_updates

    model = qwen35_text_model(shape)
    n_params = sum(p.numel() for p in model.parameters())
    ctx = build_update(model, setting, device, micro_batch)
    try:
        run_updates(ctx, rollouts(micro_batch, 8, 8, shape["vocab_size"], seed=1), seed=0)  # warm-up
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        batch = rollouts(micro_batch, *lengths, shape["vocab_size"])
        _sync(device)
        t0 = time.perf_counter()
        m = run_updates(ctx, batch, seed=0)
        _sync(device)
        secs = time.perf_counter() - t0
    except torch.OutOfMemoryError:
        return {"oom": True}
    finally:
        del ctx, model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    tokens = micro_batch * sum(lengths)
    peak = bf16_peak_tflops(device)
    out = {"oom": False, "seconds": round(secs, 3), "tokens_per_s": round(tokens / secs, 1),
           "params_b": round(n_params / 1e9, 3), "loss_finite": bool(torch.isfinite(torch.tensor(m["train/loss"])))}
    if device.type == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if peak:
        out["mfu"] = round(6 * n_params * tokens / secs / (peak * 1e12), 4)
    return out


def item_update(device: torch.device, tiny: bool) -> dict[str, Any]:
    from zppo_core.config import Config

    cfg = Config()
    lengths = TINY_LENGTHS if tiny else (cfg.rollout.max_prompt_tokens, cfg.rollout.student.max_new_tokens)
    shapes = {"tiny": TINY_SHAPE} if tiny else SHAPES
    saving = UpdateSetting(activation_checkpointing=True, logprob_chunk=cfg.parallel.logprob_chunk)
    plain = UpdateSetting(activation_checkpointing=False, logprob_chunk=0)
    res: dict[str, Any] = {"micro_batch": cfg.schedule.micro_batch, "tokens_per_sequence": sum(lengths)}
    ok = True
    for name, shape in shapes.items():
        a = measure_update(shape, saving, device, cfg.schedule.micro_batch, lengths)
        b = measure_update(shape, plain, device, cfg.schedule.micro_batch, lengths)
        res[name] = {"ac_and_chunk": a, "neither": b}
        ok &= not a["oom"] and a["loss_finite"]
        if "peak_gib" in a and not b["oom"]:
            ok &= a["peak_gib"] < b["peak_gib"]
    return {"ok": bool(ok), **res}


def item_gdn(device: torch.device, tiny: bool) -> dict[str, Any]:
    """The Gated-DeltaNet path and one layer's forward+backward time at the paper's length."""
    from zppo_core.config import Config

    kernels = {m: importlib.util.find_spec(m) is not None for m in ("fla", "causal_conv1d")}
    path = "fla + causal-conv1d kernels" if all(kernels.values()) else (
        "torch fallback" if not any(kernels.values()) else "mixed: " + ", ".join(k for k, v in kernels.items() if v))
    shape = dict(TINY_SHAPE if tiny else SHAPES["qwen3.5-0.8b"], num_hidden_layers=1)
    model = qwen35_text_model(shape)
    model.config.layer_types = ["linear_attention"]
    layer = model.model.layers[0].to(device)
    cfg = Config()
    length = sum(TINY_LENGTHS) if tiny else cfg.rollout.max_prompt_tokens + cfg.rollout.student.max_new_tokens
    x = torch.randn(1, length, shape["hidden_size"], device=device, requires_grad=True)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
        layer.linear_attn(x).float().sum().backward()  # warm-up (kernel compilation)
        _sync(device)
        t0 = time.perf_counter()
        out = layer.linear_attn(x)
        out.float().sum().backward()
        _sync(device)
    secs = time.perf_counter() - t0
    return {"ok": bool(torch.isfinite(out.float()).all()), "path": path, "kernels_importable": kernels,
            "tokens": length, "fwd_bwd_s": round(secs, 4)}


def item_sharded_equals_single(device: torch.device, tiny: bool) -> dict[str, Any]:
    """The same update sharded (FSDP2, one rank) and unsharded: parameters agree (fp32 compute)."""
    from zppo_core.trainer.parallel import full_model_state_dict, is_sharded
    from zppo_core.trainer.update import run_updates

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    shape = dict(TINY_SHAPE, num_hidden_layers=4) if tiny else dict(SHAPES["qwen3.5-0.8b"], num_hidden_layers=4)
    batch = rollouts(4, *(TINY_LENGTHS if tiny else (256, 768)), shape["vocab_size"])
    states, layout = {}, {}
    for sharded in (True, False):
        setting = UpdateSetting(sharded=sharded, compute_dtype=torch.float32, activation_checkpointing=False,
                                logprob_chunk=0)
        ctx = build_update(qwen35_text_model(shape, seed=3), setting, device, 4)
        layout[sharded] = is_sharded(ctx.model)
        run_updates(ctx, batch, seed=0)
        sd = full_model_state_dict(ctx.model) if sharded else {k: v.detach().cpu() for k, v in ctx.model.state_dict().items()}
        states[sharded] = sd
    diff = max(float((states[True][k].float() - states[False][k].float()).abs().max()) for k in states[False])
    moved = max(float((states[False][k].float() - v.float()).abs().max())
                for k, v in qwen35_text_model(shape, seed=3).state_dict().items())
    return {"ok": diff <= 1e-5 and moved > 0 and layout == {True: True, False: False}, "max_abs_diff": diff,
            "max_update": moved, "sharded_run_has_dtensor_params": layout[True]}


def _tiny_tokenizer(vocab: int) -> Any:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{f"w{i}": i for i in range(3, vocab)}}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(words, unk_token="<unk>")),
                                   pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def item_hf_generate(device: torch.device, tiny: bool) -> dict[str, Any]:
    """The transformers generation backend on the device: shapes, log-probs and tokens/s."""
    from zppo_core.engines.base import GenerationRequest, SamplingParams
    from zppo_core.engines.hf import HFBackend

    shape = TINY_SHAPE if tiny else dict(SHAPES["qwen3.5-0.8b"], num_hidden_layers=4)
    model = qwen35_text_model(shape).to(device)
    model.config.use_cache = True
    be = HFBackend(model, processor=_tiny_tokenizer(shape["vocab_size"]))
    reqs = [GenerationRequest(messages=[], prompt_ids=list(range(3, 3 + 8 + i))) for i in range(4)]
    new = 16 if tiny else 256
    params = SamplingParams(temperature=1.0, max_new_tokens=new, seed=0, ignore_eos=True)
    be.generate(reqs[:1], 1, SamplingParams(max_new_tokens=2, seed=0))  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    out = be.generate(reqs, 2, params)
    _sync(device)
    secs = time.perf_counter() - t0
    samples = [s for group in out for s in group]
    ok = len(samples) == 8 and all(len(s.token_ids) == new and s.logprobs and len(s.logprobs) == new for s in samples)
    return {"ok": bool(ok), "device": str(next(model.parameters()).device), "samples": len(samples),
            "tokens_per_s": round(len(samples) * new / secs, 1)}


def item_env(device: torch.device, tiny: bool) -> dict[str, Any]:
    import accelerate
    import transformers

    import zppo_core.engines.hf  # noqa: F401 - the generation backend of the hf_generate item
    import zppo_core.trainer.parallel  # noqa: F401
    import zppo_core.trainer.update  # noqa: F401

    pulled = sorted(m for m in FORBIDDEN if m in sys.modules)
    kernels = {m: importlib.util.find_spec(m) is not None for m in ("fla", "causal_conv1d", "flash_attn")}
    info = {"torch": torch.__version__, "transformers": transformers.__version__, "accelerate": accelerate.__version__,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "bf16_peak_tflops": bf16_peak_tflops(device), "kernels_importable": kernels, "forbidden_imported": pulled}
    return {"ok": not pulled, **info}


ITEMS = {"env": item_env, "update": item_update, "gdn": item_gdn, "sharded_equals_single": item_sharded_equals_single,
         "hf_generate": item_hf_generate}
#: what the CPU smoke run (``--device cpu --tiny``) runs by default
TINY_DEFAULT = ("env", "update", "sharded_equals_single")


def run_items(names: list[str], device: str, tiny: bool) -> dict[str, dict[str, Any]]:
    """Run ``names`` in this process, each guarded: an exception is that item's FAIL."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    results = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            res = ITEMS[name](dev, tiny)
        except Exception as e:  # noqa: BLE001 - reported as the item's failure
            res = {"ok": False, "error": f"{type(e).__name__}: {e}"[:1500]}
        res["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = res
    with contextlib.suppress(Exception):
        import torch.distributed as td

        if td.is_initialized():
            td.destroy_process_group()
    return results


__all__ = ["FORBIDDEN", "ITEMS", "SHAPES", "TINY_DEFAULT", "run_items"]
