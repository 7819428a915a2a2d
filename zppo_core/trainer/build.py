"""Construction of the trainer's parts from the config: student model + processor, AdamW,
generation backends (student, teacher), the renderer and the grader.

Student generation:

* ``model.student_backend = "transformers"`` (CPU, tests): the backend wraps the LIVE training
  model, so every rollout uses the current weights with no copy and no sync.
* ``"vllm"`` (GPU): an in-process engine built from the same folder; after each step's updates
  the trainer saves the weights (safetensors) and calls ``backend.update_weights(dir)``.
  On resume the engine is built from the checkpoint's model folder, never the initial weights.

Teacher: any backend kind; ``recorded`` replays the parquet's ``teacher_response`` column (the
offline departure documented in :mod:`zppo_core.engines.recorded`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from zppo_core.config import Config
from zppo_core.config.schema import OptimConfig
from zppo_core.engines.base import GenerationBackend
from zppo_core.engines.factory import build_backend

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def torch_dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"model.dtype: {name!r} not in {sorted(_DTYPES)}") from None


def resolve_attn_implementation(requested: str, *, on_cuda: bool, flash_available: bool) -> str | None:
    """``model.attn_implementation`` -> the ``attn_implementation`` passed to transformers.

    ``auto``: ``flash_attention_2`` on CUDA when flash-attn is installed (the `gpu` extra), else
    ``None`` (transformers' default, sdpa). An explicit ``flash_attention_2`` without CUDA or
    without flash-attn raises ``ValueError`` naming the field."""
    if requested == "auto":
        return "flash_attention_2" if on_cuda and flash_available else None
    if requested == "flash_attention_2" and not (on_cuda and flash_available):
        raise ValueError("model.attn_implementation: flash_attention_2 needs CUDA and the flash-attn package "
                         "(the `gpu` extra); use auto or sdpa")
    return requested


def attn_implementation(cfg: Config) -> str | None:
    """:func:`resolve_attn_implementation` on this machine."""
    import importlib.util

    return resolve_attn_implementation(cfg.model.attn_implementation, on_cuda=torch.cuda.is_available(),
                                       flash_available=importlib.util.find_spec("flash_attn") is not None)


def load_student(model_dir: str, cfg: Config, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """(model, processor-or-tokenizer) from an HF folder (safetensors only).

    The trained weights are loaded in float32 whatever ``model.dtype`` says: they are the master
    weights the optimizer steps (AdamW at lr 1e-6 on bf16 weights loses most updates to
    rounding). ``model.dtype`` is the compute dtype (FSDP2 mixed precision / autocast). A frozen
    model (the distillation teacher) passes its ``dtype``. Attention kernels:
    :func:`attn_implementation`. The model stays on CPU (sharding places it).
    """
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    from zppo_core.models.processor import is_vlm_dir, load_processor

    cls = AutoModelForImageTextToText if is_vlm_dir(model_dir) else AutoModelForCausalLM
    from zppo_core.engines.hf import from_pretrained_checked

    attn = attn_implementation(cfg)
    model = from_pretrained_checked(cls, model_dir, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code,
                                    **({"attn_implementation": attn} if attn else {}))
    model.config.use_cache = False
    processor = load_processor(model_dir, trust_remote_code=cfg.model.trust_remote_code)
    return model, processor


def build_optimizer(model: Any, optim: OptimConfig) -> torch.optim.Optimizer:
    """AdamW with the paper's settings (Tab. 8) over float32 parameters (float32 state).

    Refuses parameters of another dtype: silent pure-bf16 training would drop most updates.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    low = sorted({str(p.dtype) for p in params if p.dtype != torch.float32})
    if low:
        raise ValueError(f"optimizer: trainable parameters in {low}; master weights must be float32 "
                         "(model.dtype sets only the compute dtype)")
    return torch.optim.AdamW(params, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                             weight_decay=optim.weight_decay)


def lr_at(step: int, cfg: Config) -> float:
    """Constant learning rate after a linear warmup of ``warmup_ratio * total_steps`` steps."""
    warm = int(cfg.optim.warmup_ratio * cfg.schedule.total_steps)
    if warm <= 0:
        return cfg.optim.lr
    return cfg.optim.lr * min(1.0, step / warm)


def single_process_dist_env() -> None:
    """``external_launcher`` joins a ``torch.distributed`` world from the launcher's env vars; a
    plain single-process run has none, so describe a world of one (local, a free port)."""
    import os

    from zppo_core.engines.vllm_server import free_port

    for key, val in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(key, val)
    os.environ.setdefault("MASTER_PORT", str(free_port()))


def student_engine_kwargs(cfg: Config, rank: int, world: int) -> dict[str, Any]:
    """Keyword arguments of the colocated vLLM student engine of training rank ``rank``: on its
    own GPU (``external_launcher`` under several ranks, or for in-memory weight sync), seed
    ``schedule.seed + rank``, explicit lengths, the trainer's pixel limits, sleep mode level
    ``model.vllm_sleep_level`` (0 = off). The CPU build of vLLM has no sleep mode and cannot
    ``external_launcher`` runs the engine core in this process, which in-memory sync needs (it
    works with the CPU build too); the CPU build has no sleep mode, so sleep is off there."""
    from zppo_core.engines.vllm_engine import colocate_kwargs

    m, r = cfg.model, cfg.rollout
    on_gpu = torch.cuda.is_available()
    kw = colocate_kwargs(rank=rank, world=world, seed=cfg.schedule.seed, max_model_len=r.student_max_model_len,
                         max_num_batched_tokens=r.max_num_batched_tokens, tensor_parallel_size=r.student_tp,
                         min_pixels=m.min_pixels, max_pixels=m.max_pixels, in_process=m.weight_sync == "memory")
    kw.update(dtype=m.dtype, gpu_memory_utilization=r.gpu_memory_utilization, trust_remote_code=m.trust_remote_code,
              enable_sleep_mode=on_gpu and m.vllm_sleep_level > 0, sleep_level=max(m.vllm_sleep_level, 1),
              seeded_requests=r.seeded_requests)
    return kw


def build_student_backend(cfg: Config, live_model: Any, processor: Any, model_dir: str,
                          rank: int = 0, world: int = 1) -> GenerationBackend:
    """Student backend: wraps the live model (transformers) or a weight-synced engine (vllm)."""
    kind = cfg.model.student_backend
    if kind == "transformers":
        return build_backend("transformers", live_model, processor=processor,
                             min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
    if kind == "vllm":
        kw = student_engine_kwargs(cfg, rank, world)
        if kw.get("distributed_executor_backend") == "external_launcher":
            single_process_dist_env()
        return build_backend("vllm", model_dir, **kw)
    raise ValueError(f"model.student_backend: {kind!r} cannot train (use transformers or vllm)")


def build_teacher_backend(cfg: Config, questions: list[dict[str, Any]], processor: Any) -> GenerationBackend | None:
    """Teacher / compressor backend, or ``None`` when the method needs none."""
    if not cfg.uses_teacher():
        return None
    kind, m = cfg.model.teacher_backend, cfg.model
    if kind == "recorded":
        from zppo_core.models.processor import tokenizer_of

        return build_backend("recorded", rows=[{"id": q["id"], "question": q["question"],
                                                "teacher_response": q["teacher_response"]} for q in questions],
                             tokenizer=tokenizer_of(processor))
    if kind == "openai":
        from zppo_core.engines.openai_compat import check_server, server_kwargs

        check_server(m.teacher_url, m.server_health_timeout_s, "model.teacher_url")  # before the first step
        return build_backend("openai", m.teacher, **server_kwargs(m, m.teacher_url, "teacher"))
    if kind == "vllm":
        return build_backend("vllm", m.teacher, dtype=m.dtype, tensor_parallel_size=cfg.rollout.teacher_tp)
    return build_backend("transformers", m.teacher, dtype=m.dtype, min_pixels=m.min_pixels,
                         max_pixels=m.max_pixels, trust_remote_code=m.trust_remote_code)


def make_render(processor: Any, cfg: Config):
    """``request -> (prompt_ids, model_inputs or None)`` with the generation's tokenisation."""
    from zppo_core.engines.render import render_prompt

    def render(req):
        r = render_prompt(processor, req, min_pixels=cfg.model.min_pixels, max_pixels=cfg.model.max_pixels)
        return r.input_ids, (dict(r.model_inputs) or None)

    return render


@dataclass
class JudgeCounts:
    """Rollouts the LLM judge graded so far, and of those the ones with a malformed verdict (0)."""

    judged: int = 0
    judge_malformed: int = 0


class Grader:
    """``grader(responses, question) -> rewards in {0., 1.}`` for one group.

    Rule rows go through :func:`zppo_core.grading.reward`. Rows with ``reward_type == "judge"``
    go to the LLM judge when ``zppo.judge_rewards`` is on: one batched call per group with the
    shared judge prompt (Fig. 9) and strict verdict parsing (malformed => 0). The judge backend
    is built on first use by ``judge_factory()`` (default :func:`build_judge_backend`);
    :attr:`counts` adds up what it graded.
    """

    def __init__(self, cfg: Config, judge_factory: Callable[[], GenerationBackend] | None = None) -> None:
        from zppo_core.engines.base import SamplingParams

        self.cfg = cfg
        self.counts = JudgeCounts()
        self._params = SamplingParams.from_config(cfg.eval.judge_sampling)
        self._factory = judge_factory or (lambda: build_judge_backend(cfg))
        self._judge: GenerationBackend | None = None

    def __call__(self, texts: list[str], q: dict[str, Any]) -> list[float]:
        from zppo_core import grading

        if not (self.cfg.uses_judge("train") and q.get("reward_type") == "judge"):
            return [float(grading.reward(t, q["answer"])) for t in texts]
        return self._judged(texts, q)

    def _judged(self, texts: list[str], q: dict[str, Any]) -> list[float]:
        from zppo_core import grading
        from zppo_core.engines.base import GenerationRequest
        from zppo_core.prompts import build_judge_prompt

        if self._judge is None:
            self._judge = self._factory()
        reqs = [GenerationRequest(messages=[{"role": "user", "content": build_judge_prompt(
            question=q["question"], options=[], model_response=t, ground_truth=q["answer"])}])
            for t in texts]
        verdicts = [grading.parse_judge_verdict(ss[0].text if ss else "")
                    for ss in self._judge.generate(reqs, 1, self._params)]
        self.counts.judged += len(verdicts)
        self.counts.judge_malformed += sum(v is None for v in verdicts)
        return [1.0 if v else 0.0 for v in verdicts]


def check_judge_server(cfg: Config, questions: list[dict[str, Any]]) -> None:
    """Before the first step: the judge server answers, when judge rewards will call it."""
    m = cfg.model
    if cfg.uses_judge("train") and m.judge_backend == "openai" and any(
            q.get("reward_type") == "judge" for q in questions):
        from zppo_core.engines.openai_compat import check_server

        check_server(m.judge_url, m.server_health_timeout_s, "model.judge_url")


def build_judge_backend(cfg: Config) -> GenerationBackend:
    """The LLM judge of free-form training rewards (the teacher checkpoint on a sidecar pool)."""
    m = cfg.model
    if m.judge_backend == "recorded":
        raise ValueError("model.judge_backend 'recorded' cannot judge free-form answers: serve a judge model "
                         "(openai/vllm/transformers) or set zppo.judge_rewards: false")
    if m.judge_backend == "openai":
        from zppo_core.engines.openai_compat import server_kwargs

        return build_backend("openai", m.judge, **server_kwargs(m, m.judge_url, "judge"))
    if m.judge_backend == "vllm":
        return build_backend("vllm", m.judge, dtype=m.dtype, tensor_parallel_size=cfg.rollout.teacher_tp)
    return build_backend("transformers", m.judge, dtype=m.dtype, trust_remote_code=m.trust_remote_code)


__all__ = [
    "Grader",
    "JudgeCounts",
    "build_judge_backend",
    "build_optimizer",
    "build_student_backend",
    "build_teacher_backend",
    "load_student",
    "check_judge_server",
    "lr_at",
    "make_render",
    "torch_dtype",
]
