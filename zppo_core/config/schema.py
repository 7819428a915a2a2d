"""The typed configuration: every section as a dataclass, with the paper's values as defaults.

Every hyperparameter of the paper's Tab. 8 lives here with the paper's value as default, so
``Config()`` *is* the paper's setting (mirrored by ``configs/paper.yaml``). Smaller profiles
(``configs/tiny.yaml``) override fields in YAML. Unknown keys are rejected by name.

Pure module: no I/O. Loading from YAML and dotted overrides live in :mod:`.loading`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal, NamedTuple, get_args, get_origin, get_type_hints

# --------------------------------------------------------------------------------------------
# Allowed values: each a Literal type; validate() checks every field so typed, and the constants
# other modules read (``BACKENDS``, ``NORM_MODES``...) are its arguments.
# --------------------------------------------------------------------------------------------
Backend = Literal["transformers", "vllm", "openai", "recorded"]
Dtype = Literal["bfloat16", "float16", "float32"]
WeightSync = Literal["memory", "disk"]
SleepLevel = Literal[0, 1]
AttnImplementation = Literal["auto", "sdpa", "eager", "flash_attention_2"]
NcqOrder = Literal["rollout", "shuffle"]
Aggregation = Literal["token", "sequence"]
AdvNorm = Literal["none", "without_zero", "with_zero"]
AdvScope = Literal["step", "minibatch"]
Strategy = Literal["auto", "fsdp2", "ddp", "single"]
Packing = Literal["auto", "on", "off"]
ToyKind = Literal["", "arithmetic", "fixed", "miniature"]
SyntheticWorld = Literal["figures", "miniature"]
Launcher = Literal["accelerate", "python"]
SummaryColumns = Literal["family", "benchmark"]
Executor = Literal["local", "slurm"]
ServeOn = Literal["first", "every"]

BACKENDS: tuple[str, ...] = get_args(Backend)
WEIGHT_SYNC_MODES: tuple[str, ...] = get_args(WeightSync)
NCQ_ORDERS: tuple[str, ...] = get_args(NcqOrder)
NORM_MODES: tuple[str, ...] = get_args(AdvNorm)
LAUNCHERS: tuple[str, ...] = get_args(Launcher)
TOY_KINDS: tuple[str, ...] = get_args(ToyKind)[1:]  # "" = no toy set
#: ``model.attn_implementation`` values
ATTN_IMPLEMENTATIONS: tuple[str, ...] = get_args(AttnImplementation)
#: ``curation.synthetic_world`` values (what the offline sources hold)
SYNTHETIC_WORLDS: tuple[str, ...] = get_args(SyntheticWorld)
#: ``pipeline.summary_columns`` values (columns of the end-of-run table)
SUMMARY_COLUMNS: tuple[str, ...] = get_args(SummaryColumns)
#: where the pipeline's training and evaluation stages run (:mod:`tasks.slurm` for slurm)
EXECUTORS: tuple[str, ...] = get_args(Executor)
#: which nodes of a training job serve the teacher/judge: the first one, or each node its own copy
SERVE_ON: tuple[str, ...] = get_args(ServeOn)


# --------------------------------------------------------------------------------------------
# Method presets: the paper's method rows (Tabs. 1, 2, 4) as switches, never as code forks.
# --------------------------------------------------------------------------------------------
class MethodSpec(NamedTuple):
    """What one ``zppo.method`` switches on in the one training loop.

    ``replay``: the prompt replay buffer (†); ``bcq`` / ``ncq``: ZPPO's reformulated groups;
    ``distill``: ``""`` (RL: clipped surrogate, I updates) | ``"off"`` (JSD on correct teacher
    rollouts, Alg. 2) | ``"on"`` (JSD on the student's own rollouts, Alg. 3) -- one JSD update per
    step; ``guidance``: ``""`` | ``"hint"`` (Alg. 5) | ``"prefix"`` (Alg. 6) extra groups on X_aug.
    """

    replay: bool
    bcq: bool
    ncq: bool
    distill: str = ""
    guidance: str = ""

    def uses_teacher(self, compression: bool) -> bool:
        """Whether the method asks the teacher to *generate* (the one rule for the trainer, the
        server start-up and the preflight): BCQ's teacher rollouts, NCQ's compression (when
        ``zppo.compression``), Off-Distill's teacher rollouts, Hint's and Prefix's teacher
        rollouts (and Hint's hint). On-Distill only scores with an in-process teacher."""
        return self.bcq or (self.ncq and compression) or self.distill == "off" or bool(self.guidance)


#: method name -> what it switches on, in the paper's row order (Tabs. 1, 2 and 4)
METHODS: dict[str, MethodSpec] = {
    "off_distill": MethodSpec(False, False, False, distill="off"),
    "off_distill_replay": MethodSpec(True, False, False, distill="off"),  # Off-Distill-dagger
    "on_distill": MethodSpec(False, False, False, distill="on"),
    "on_distill_replay": MethodSpec(True, False, False, distill="on"),  # On-Distill-dagger
    "grpo": MethodSpec(False, False, False),
    "grpo_replay": MethodSpec(True, False, False),  # GRPO-dagger
    "grpo_both": MethodSpec(False, True, True),  # BCQ+NCQ without buffer
    "grpo_replay_hint": MethodSpec(True, False, False, guidance="hint"),
    "grpo_replay_prefix": MethodSpec(True, False, False, guidance="prefix"),
    "grpo_replay_bcq": MethodSpec(True, True, False),
    "grpo_replay_ncq": MethodSpec(True, False, True),
    "zppo": MethodSpec(True, True, True),
}

#: Display names used in tables (paper's row labels), in the paper's row order.
METHOD_LABELS: dict[str, str] = {
    "base": "Base",
    "off_distill": "+Off-Distill",
    "off_distill_replay": "+Off-Distill†",
    "on_distill": "+On-Distill",
    "on_distill_replay": "+On-Distill†",
    "grpo": "+GRPO",
    "grpo_replay": "+GRPO†",
    "grpo_both": "+GRPO+Both",
    "grpo_replay_hint": "+GRPO†+Hint",
    "grpo_replay_prefix": "+GRPO†+Prefix",
    "grpo_replay_bcq": "+GRPO†+BCQ",
    "grpo_replay_ncq": "+GRPO†+NCQ",
    "zppo": "+ZPPO",
}


@dataclass
class SamplingConfig:
    """Decoding parameters of one generation role."""

    #: sampling temperature (0 = greedy)
    temperature: float = 1.0
    #: nucleus sampling: keep the smallest token set of this total probability, in (0, 1] (1 = off)
    top_p: float = 1.0
    #: keep the k most likely tokens; -1 = off
    top_k: int = -1  # -1: disabled
    #: drop tokens below this fraction of the most likely token's probability, in [0, 1] (0 = off)
    min_p: float = 0.0
    #: subtracted from the logits of tokens already in the response (0 = off)
    presence_penalty: float = 0.0
    #: divides the logits of tokens already seen (1 = off)
    repetition_penalty: float = 1.0
    #: tokens generated at most per response
    max_new_tokens: int = 12_288
    #: strings that end a response (not included in it)
    stop: list[str] = field(default_factory=list)


@dataclass
class ModelConfig:
    """Student / teacher / judge model choice and the image resize rule (paper App. B.2)."""

    #: the trained model: a hub id, a local folder (safetensors) or ``builtin:<name>`` (``zppo models
    #: list``)
    student: str = "Qwen/Qwen3.5-2B"
    #: the stronger model whose answers go into BCQ/NCQ prompts (hub id, folder or builtin)
    teacher: str = "Qwen/Qwen3.5-27B-FP8"
    #: the model that grades free-form answers (``reward_type: judge`` rows, judged benchmarks)
    judge: str = "Qwen/Qwen3.5-27B-FP8"
    #: generation backend of the student's rollouts: vllm | transformers | openai | recorded
    student_backend: Backend = "vllm"
    #: generation backend of the teacher: openai (served, ``teacher_url``) | vllm | transformers | recorded
    #: (the parquet's ``teacher_response``)
    teacher_backend: Backend = "openai"
    #: backend of the judge: openai (served, ``judge_url``) | vllm | transformers | recorded
    judge_backend: Backend = "openai"
    #: base URL of the teacher's OpenAI-compatible server (a ``vllm serve`` endpoint)
    teacher_url: str = "http://127.0.0.1:8000/v1"
    #: base URL of the judge's OpenAI-compatible server (the teacher's when both are one model)
    judge_url: str = "http://127.0.0.1:8000/v1"
    #: compute dtype of the student's forward (FSDP2 mixed-precision param dtype / autocast);
    #: master weights and optimizer state are always float32
    dtype: Dtype = "bfloat16"
    #: let transformers / vLLM run Python code shipped with a model; off unless the model needs it
    trust_remote_code: bool = False
    #: smallest image area (pixels) after the processor's resize (paper App. B.2: 256 x 32 x 32)
    min_pixels: int = 256 * 32 * 32
    #: largest image area (pixels) after the resize (paper App. B.2: 1280 x 32 x 32)
    max_pixels: int = 1280 * 32 * 32
    #: how trained weights reach a vLLM student engine each step: memory (full bf16 tensors
    #: streamed parameter by parameter into the engine's weight loader; the engine then runs in
    #: the trainer process, external_launcher) | disk (safetensors folder re-read by the engine)
    weight_sync: WeightSync = "memory"
    #: vLLM sleep mode of the colocated student engine around the update: 0 = off (engine keeps
    #: its memory), 1 = offload weights to CPU + drop KV cache. 2 (drop both) is refused: level 2
    #: followed by a weight reload is reported to corrupt VLM rollouts
    vllm_sleep_level: SleepLevel = 1
    #: GPUs (node-local indices) of the teacher / judge server: the training and evaluation
    #: stages start `vllm serve` there when the URL answers nothing, and keep their ranks and
    #: workers off them either way (a server started by hand must run on these GPUs). The paper's
    #: node: 6 student GPUs + 2 for the FP8 teacher/judge. [] = the server is on another host
    teacher_gpus: list[int] = field(default_factory=lambda: [6, 7])
    #: GPUs (node-local) of the judge server, as ``teacher_gpus``; the same GPUs = one server for both
    judge_gpus: list[int] = field(default_factory=lambda: [6, 7])
    #: attention kernels of the trained student (and an in-process teacher): auto =
    #: flash_attention_2 on CUDA when flash-attn is installed, else transformers' default (sdpa);
    #: or one of sdpa | eager | flash_attention_2
    attn_implementation: AttnImplementation = "auto"
    #: thinking mode (the chat template's ``enable_thinking``, sent with every request) of the
    #: teacher's rollouts; paper: NOT FOUND -> off for all four served roles: the RL closer already
    #: asks the teacher for the <think>...</think> + \boxed{} format (the student's), and the
    #: compressor, the hint writer and the judge have 512-token budgets that a thinking template
    #: would spend on reasoning
    teacher_thinking: bool = False
    #: thinking mode of the teacher as NCQ compressor (see ``teacher_thinking``)
    compressor_thinking: bool = False
    #: thinking mode of the teacher as hint writer (Hint baseline)
    hint_thinking: bool = False
    #: thinking mode of the judge
    judge_thinking: bool = False
    #: interpreter of the environment that has vLLM for those servers ("" = this interpreter)
    server_python: str = ""
    #: context length of a started teacher / judge server
    server_max_model_len: int = 32_768
    #: seconds to wait for a started server to answer /v1/models
    server_startup_timeout_s: float = 1_800.0
    #: seconds one call to the teacher / judge server (``*_backend: openai``) may take before it
    #: counts as failed
    server_timeout_s: float = 300.0
    #: retries of a failed call to the teacher / judge server (exponential backoff)
    server_retries: int = 2
    #: seconds the teacher / judge server has to answer GET /models when a run starts (``zppo
    #: train`` before its first step, ``zppo eval`` before its first judged item): one clear error if not
    server_health_timeout_s: float = 10.0


@dataclass
class RolloutConfig:
    """Rollout sampling (Tab. 8): G_S, G_T, train-time decoding, length limits."""

    group_size: int = 8  # G_S: student rollouts per question (one group)
    teacher_group_size: int = 4  # G_T: teacher rollouts per hard question
    #: decoding of the student's training rollouts (paper Tab. 8: T = 1, up to 12,288 tokens)
    student: SamplingConfig = field(default_factory=SamplingConfig)
    #: decoding of the teacher's rollouts (BCQ candidates, Off-Distill, Hint / Prefix)
    teacher: SamplingConfig = field(default_factory=SamplingConfig)
    #: longest plain prompt (chat template + image tokens) the trainer accepts; a longer one is an
    #: error naming the question (curation already drops them)
    max_prompt_tokens: int = 4_096
    #: tensor-parallel degree of student / teacher engines. The colocated student engine runs
    #: one per training rank: student_tp must be 1 (a TP group would need identical prompts on
    #: its ranks, which the per-rank sharding of questions does not give)
    student_tp: int = 1
    #: tensor-parallel degree of an in-process vLLM teacher engine
    teacher_tp: int = 1
    #: fraction of GPU memory for a colocated vLLM student engine
    gpu_memory_utilization: float = 0.5
    #: context of the student engine: prompt (a BCQ/NCQ prompt holds teacher text) + response
    student_max_model_len: int = 32_768
    #: tokens the student engine schedules per forward (prefill chunking); >= its max_model_len
    max_num_batched_tokens: int = 32_768
    #: give every student request its own seed (bit-reproducible rollouts across resumes, but vLLM
    #: samples seeded requests on its slower per-request path); false: the engine's own seeded
    #: stream (schedule.seed + rank), as TRL's colocate mode
    seeded_requests: bool = False


@dataclass
class ZPPOConfig:
    """ZPPO-specific knobs (Tab. 8, "ZPPO" block) and the method switches."""

    #: the method row to train (``METHODS``): zppo | grpo | grpo_replay | grpo_replay_bcq | grpo_replay_ncq
    #: | grpo_both | grpo_replay_hint | grpo_replay_prefix | off_distill(_replay) | on_distill(_replay)
    method: str = "zppo"
    tau: float = 0.5  # a question is hard when its plain rollouts' mean accuracy is below this
    rho_replay: float = 0.25  # replayed questions per step, fraction of |X_new|
    rho_aug: float = 0.25  # cap on BCQ+NCQ instances per step, fraction of |X_new|
    #: questions the prompt replay buffer holds at most (oldest evicted first)
    buffer_capacity: int = 10_000
    #: NCQ: the teacher compresses each wrong student rollout into a short candidate (paper); false: the
    #: rollouts go in verbatim
    compression: bool = True
    #: tokens of one compressed NCQ candidate at most
    compression_max_tokens: int = 512
    #: decoding of the compressor (paper: NOT FOUND -> greedy, documented choice)
    compression_temperature: float = 0.0
    #: Draw teacher rollouts on all hard questions (Algorithm 1 as written) or only on the
    #: pre-capped set (INFERRED equivalent shortcut, paper Sec. 1.2 remark). Same training data.
    teacher_on_precap_only: bool = True
    #: NCQ candidate block order: "rollout" (as sampled) or "shuffle" (paper: NOT FOUND)
    ncq_order: NcqOrder = "rollout"
    #: Reward of rows whose ``reward_type`` is "judge" (free-form gold answers): the LLM judge
    #: (model.judge via model.judge_backend, decoding eval.judge_sampling), as the paper. False:
    #: the rule grader scores every row (offline profiles without a judge model).
    judge_rewards: bool = True
    #: Prefix baseline (Alg. 6): fraction alpha of a correct teacher rollout forced as prefix
    prefix_alpha: float = 0.4
    #: decoding of the teacher's hint (Hint baseline, Fig. 19; paper: NOT FOUND -> greedy,
    #: capped like a compressed candidate)
    hint_max_tokens: int = 512
    #: sampling temperature of the hint (0 = greedy)
    hint_temperature: float = 0.0
    #: Off-Distill's reduction of the per-token JSD (Alg. 2): "sequence" = the paper's objective,
    #: the mean over the step's correct teacher trajectories of each one's mean per-token JSD;
    #: "token" = one token mean over the whole batch (``algo.loss_agg``'s token mode, longer
    #: trajectories weigh more). On-Distill keeps ``algo.loss_agg``
    off_distill_agg: Aggregation = "sequence"

    @property
    def use_replay(self) -> bool:
        return METHODS[self.method].replay

    @property
    def use_bcq(self) -> bool:
        return METHODS[self.method].bcq

    @property
    def use_ncq(self) -> bool:
        return METHODS[self.method].ncq

    @property
    def distill(self) -> str:
        """"" (RL) | "off" | "on" (distillation baselines)."""
        return METHODS[self.method].distill

    @property
    def guidance(self) -> str:
        """"" | "hint" | "prefix" (prompt-guidance baselines)."""
        return METHODS[self.method].guidance



@dataclass
class AlgoConfig:
    """Loss and advantage (GRPO + DAPO + REINFORCE++ two-step advantage)."""

    #: PPO ratio clip below 1: ratios under 1 - clip_low stop the gradient (DAPO's clip-higher pair)
    clip_low: float = 0.20
    #: PPO ratio clip above 1: ratios over 1 + clip_high stop the gradient
    clip_high: float = 0.28
    #: dual-clip bound c on negative advantages: the loss never exceeds c x |A| (c > 1)
    dual_clip: float = 10.0
    #: KL-to-reference coefficient: only 0 (no reference model, as the paper and DAPO)
    kl_coef: float = 0.0
    #: token (paper: mean over every token of the mini-batch) | sequence (per-sequence mean first)
    loss_agg: Aggregation = "token"
    #: batch normalisation of the advantages: without_zero (paper: over the rollouts of non-trivial
    #: groups) | with_zero | none (zppo_core.advantages)
    adv_norm: AdvNorm = "without_zero"
    adv_eps: float = 1e-6  # added to the std in the advantage normalisation (paper: NOT FOUND)
    #: scope of the advantage batch statistics: "step" (whole rollout step) or "minibatch"
    adv_scope: AdvScope = "step"
    iterations: int = 4  # I: mini-batch updates per rollout step (PPO epochs = 1)
    #: I = 1 only: take the old log-probs from the update forward itself (detached) instead of a
    #: separate no-grad pass -- same weights, tokens and mode, so ratio = 1 exactly; ignored for I > 1
    reuse_old_logprobs: bool = True


@dataclass
class OptimConfig:
    """AdamW settings (Tab. 8)."""

    #: AdamW learning rate (constant after warmup)
    lr: float = 1.0e-6
    #: AdamW (beta1, beta2)
    betas: tuple[float, float] = (0.9, 0.999)
    #: AdamW epsilon
    eps: float = 1e-8
    #: AdamW decoupled weight decay
    weight_decay: float = 0.1
    #: clip the global gradient norm to this value before each optimizer step
    grad_clip: float = 1.0
    #: fraction of ``schedule.total_steps`` over which the lr rises linearly from 0, in [0, 1)
    warmup_ratio: float = 0.0


@dataclass
class ParallelConfig:
    """How the student is sharded across training processes and how memory is traded for compute."""

    #: auto | fsdp2 | ddp | single. auto: fsdp2 when launched with an FSDP accelerate config
    #: (``distributed_type: FSDP``), ddp for other multi-process launches, single for one process
    strategy: Strategy = "auto"
    #: FSDP2: free the gathered parameters after each forward (full shard) or keep them (ZeRO-2)
    reshard_after_forward: bool = True
    #: recompute each decoder layer's activations in the backward instead of storing them
    activation_checkpointing: bool = True
    #: token log-probs in chunks of this many positions (no full-vocabulary fp32 logits of the
    #: whole micro-batch: 4 x 16k positions x 248k vocabulary would be ~65 GB); 0 = one pass
    logprob_chunk: int = 1_024
    #: seconds a collective may wait before the job aborts (NCCL's default is 600 s), for the
    #: trainer's process group and the gloo group of its object gathers: ranks wait there while
    #: others draw G_T teacher rollouts of up to 12k tokens from the 27B teacher
    collective_timeout_s: float = 7_200.0


@dataclass
class ScheduleConfig:
    """Batching and length of the run (Tab. 8)."""

    rollout_batch: int = 384  # |X_new|: new questions per rollout step
    micro_batch: int = 4  # sequences per device per forward/backward (update)
    #: padding-free micro-batches: sequences laid end to end with restarting position_ids (varlen
    #: kernels on flash attention, a dense block-diagonal mask on sdpa/eager). auto: only with
    #: flash attention; on: wherever exact; off: always padded. Image batches and
    #: linear-attention models are always padded
    packing: Packing = "auto"
    #: unless packing is off: fill each micro-batch up to this many tokens instead of micro_batch rows (0 = rows)
    micro_batch_tokens: int = 0
    #: rollout steps of the run (each: rollouts, then ``algo.iterations`` updates)
    total_steps: int = 200
    #: seed of the run: data order, sampling, initialisation of anything random
    seed: int = 0
    #: save a resumable checkpoint every this many steps (and at the end)
    checkpoint_every: int = 10
    #: checkpoints kept on disk (older ones deleted; a resume point is never deleted)
    keep_checkpoints: int = 2


@dataclass
class DataConfig:
    """Training data: the curated ZPPO-77K parquet (or a generated set in the same schema)."""

    #: the curated parquet; a path that does not exist is an error. "" = generated toy data
    #: (only together with ``toy_kind``), written to ``<output>/toy_data/``
    train_path: str = "runs/curation/zppo77k.parquet"
    #: where image references in the parquet are resolved from (curation output dir)
    image_root: str = ""
    #: offline only: the kind of toy set generated when ``train_path`` is "" ("" = none;
    #: "arithmetic" | "fixed" | "miniature", see zppo_core.trainer.toy_data)
    toy_kind: ToyKind = ""
    #: rows of a generated toy set
    toy_size: int = 64
    #: give the toy rows images (the VLM path)
    toy_images: bool = False


@dataclass
class CurationConfig:
    """ZPPO-77K recipe (paper App. B.1)."""

    #: hub id (or local folder) of the Vero-600k source
    vero: str = "zlab-princeton/Vero-600k"
    #: hub id (or local folder) of the MMFineReason source
    mmfr: str = "OpenDataArena/MMFineReason-SFT-586K-Qwen3-VL-235B-Thinking"
    #: hub revision (commit, tag) of Vero read; "" = the default branch
    vero_revision: str = ""
    #: hub revision of MMFineReason read; "" = the default branch
    mmfr_revision: str = ""
    #: rows kept at most per Tier-1 sub-dataset (paper App. B.1: 2,800; seeded sample)
    tier1_cap: int = 2_800
    #: rows kept at most per Tier-2 sub-dataset (paper: 1,400)
    tier2_cap: int = 1_400
    max_pass_rate: float = 0.5  # MMFineReason rows with pass_rate > this are dropped
    #: rows whose gold answer is longer (characters) are rejected as ``answer_too_long``
    max_answer_chars: int = 512
    #: rows whose image's shorter side is below this (pixels) are rejected as ``image_too_small``
    min_image_side: int = 100
    #: rows whose prompt (text + image tokens + RL closer) is longer are rejected (paper: 4,096)
    max_prompt_tokens: int = 4_096
    #: tokenizer used to count prompt tokens ("" = the student's)
    tokenizer: str = ""
    #: seed of the per-sub-dataset sampling under the caps
    seed: int = 0
    #: curate generated offline sources (``synthetic_world``) instead of the hub datasets
    synthetic: bool = False
    #: Vero rows generated offline (MMFineReason rows in the real sources' ratio)
    synthetic_scale: int = 2_000
    #: what the offline sources hold: ``figures`` (drawn figures with VQA questions, image rows
    #: with the real sources' defects) or ``miniature`` (text-only additions of the miniature
    #: world, ``zppo_core.models.miniature``), both in the real Vero-600k / MMFineReason schemas
    synthetic_world: SyntheticWorld = "figures"
    #: reject rows without an image (``image_missing``): ZPPO-77K rows are image triples (paper).
    #: ``false`` keeps text-only rows (the miniature world); their image stages are skipped
    require_images: bool = True
    #: upstream split read from Vero
    vero_split: str = "train"
    #: upstream split read from MMFineReason
    mmfr_split: str = "train"
    #: smallest image area (pixels) after the resize; these four fields are the image-token rule of
    #: the student's processor (Qwen3.5: patch 16, merge 2; App. B.2 pixels)
    min_pixels: int = 256 * 32 * 32
    #: largest image area (pixels) after the resize
    max_pixels: int = 1280 * 32 * 32
    #: vision patch side (pixels) of the student's processor
    patch_size: int = 16
    #: patches merged per side into one image token
    merge_size: int = 2
    #: images whose longer side exceeds this multiple of the shorter are rejected as ``image_aspect_ratio``
    max_aspect_ratio: float = 200.0
    #: images with more pixels (w x h, read from the header) are rejected as ``image_too_large``;
    #: default = PIL's ``Image.MAX_IMAGE_PIXELS`` (89,478,485), so every kept image decodes
    #: without PIL's DecompressionBombError / warning at training time
    max_image_pixels: int = 89_478_485
    #: DuckDB threads of one curation
    threads: int = 2
    #: DuckDB memory limit of one curation (e.g. "2GB"; it spills to disk beyond it)
    memory_limit: str = "2GB"
    #: rows per batch when scanning image headers / encoding prompts
    batch_rows: int = 65_536


@dataclass
class EvalConfig:
    """Evaluation decoding and suite (paper App. B.2)."""

    #: decoding of the evaluated model (paper App. B.2: T = 0.6, top-p 0.95, top-k 20, presence 1.5)
    sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(
            temperature=0.6,
            top_p=0.95,
            top_k=20,
            min_p=0.0,
            presence_penalty=1.5,
            repetition_penalty=1.0,
            max_new_tokens=12_288,
        )
    )
    #: decoding of the judge (greedy, 512 tokens)
    judge_sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(temperature=0.0, top_p=1.0, max_new_tokens=512)
    )
    #: benchmarks to evaluate: names, family names (VLM, LLM, Video) or "all" (``zppo eval --list``)
    benchmarks: list[str] = field(default_factory=lambda: ["all"])
    #: items generated per engine call
    batch_size: int = 64
    max_items: int = 0  # items per benchmark at most (0 = all)
    #: context length of the evaluated model's engine
    max_model_len: int = 262_144
    #: frames per second sampled from a video (paper: NOT FOUND)
    video_fps: float = 1.0
    #: frames per video at most (sampled evenly beyond it)
    video_max_frames: int = 64
    #: grade with the judge (``model.judge``); without it judged benchmarks are skipped and answers the rule
    #: grader cannot resolve score 0
    use_judge: bool = True
    #: GPU memory fraction of ONE evaluation GPU given to the vLLM engines on it (split evenly
    #: between pipeline.eval_workers_per_gpu workers)
    gpu_memory_utilization: float = 0.85
    #: folder with local copies of the benchmarks (``<data_root>/<abbr>/`` laid out like the hub
    #: repo); "" = read the hub ids (cache only under HF_HUB_OFFLINE=1)
    data_root: str = ""
    #: folder holding the video files (and ``subtitle/*.srt``) of the Video family
    video_dir: str = ""
    #: folder of ``<judge>.jinja`` files overriding the built-in benchmark judge prompts
    judge_prompt_dir: str = ""
    #: base seed of evaluation sampling (T=0.6): each batch samples with seed + crc32(first item
    #: id), so a re-run of the same model gives the same responses (paper: pass@1, one sample)
    seed: int = 0
    #: items of each generated offline family (OfflineVLM / OfflineLLM / OfflineVideo)
    offline_size: int = 24
    #: seed of the generated offline families' items
    offline_seed: int = 20_260_617
    #: continue an interrupted benchmark from its partial records
    resume: bool = True


@dataclass
class TrackingConfig:
    """MLflow tracking."""

    #: "" = a local server-less store under the run folder (``<output>/mlruns/mlflow.db``)
    tracking_uri: str = ""
    #: MLflow experiment the runs are logged to (created as a model-training experiment)
    experiment: str = "zppo"
    #: where the printed MLflow links point: "" = the tracking server itself for an http(s)
    #: ``tracking_uri``, else ``http://127.0.0.1:5000`` (where ``make mlflow-ui`` serves a local
    #: store; ``make mlflow-ui PORT=5001`` wants ``http://127.0.0.1:5001`` here)
    ui_url: str = ""
    #: candidate-match audit files ``bcq_debug.jsonl`` / ``ncq_debug.jsonl`` in the training folder
    #: (paper F.7): at most this many records per kind and step (the first in rollout order) ...
    audit_records_per_step: int = 16
    #: ... and at most this many per kind over the whole run (0 = write no audit file)
    audit_max_records: int = 5_000
    #: sample completions per group kind (plain / BCQ / NCQ) and step written by the trainer to
    #: ``samples.jsonl`` and logged as an MLflow table (0 = none)
    samples_per_kind: int = 2


@dataclass
class PipelineConfig:
    """The ``zppo-full`` sweep and how its stages run (Prefect); none of it changes results."""

    #: students of the sweep (hub ids, folders, builtins); [] = ``[model.student]``
    students: list[str] = field(default_factory=list)
    #: every row of the paper's Tabs. 1, 2 and 4 by default (``METHODS``, paper row order)
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    #: seeds of the sweep, one run each (its ``schedule.seed``); [] = ``[schedule.seed]``
    seeds: list[int] = field(default_factory=list)
    #: also evaluate the untrained student (the "Base" row)
    evaluate_base: bool = True
    #: training launcher: "accelerate" (``accelerate launch`` with ``accelerate_config``) or "python"
    launcher: Launcher = "accelerate"
    #: ``accelerate launch --config_file`` of the training stage (FSDP2 full shard, bf16)
    accelerate_config: str = "configs/accelerate/fsdp_full_shard_bf16.yaml"
    #: benchmark evaluations running at once per (student, method)
    eval_concurrency: int = 2
    #: GPUs (node-local) evaluation workers spread over ([] = every visible GPU); with GPUs, one
    #: worker process per GPU slot generates its share of every benchmark with one engine
    eval_gpus: list[int] = field(default_factory=list)
    #: evaluation workers sharing one GPU (each engine gets 1/N of its memory)
    eval_workers_per_gpu: int = 1
    #: retries of transient failures (judge/API timeouts, port clashes) per stage
    retries: int = 2
    #: seconds before such a retry
    retry_delay_s: float = 30.0
    #: how often the training stage polls metrics.jsonl to stream step metrics to MLflow
    poll_interval_s: float = 2.0
    #: report stage: method pairs "A:B" whose macro difference A - B is bootstrapped (Tab. 14);
    #: empty = ZPPO against every other method of the sweep
    report_pairs: list[str] = field(default_factory=list)
    #: resamples of the benchmark-resampling bootstrap (Tab. 14; paper: 10,000)
    bootstrap_resamples: int = 10_000
    #: RNG seed of that bootstrap
    bootstrap_seed: int = 0
    #: columns of the end-of-run result table: ``family`` (VLM / LLM / Video averages, the paper's
    #: grouping) or ``benchmark`` (one column each; the miniature's in-family and held-out splits)
    summary_columns: SummaryColumns = "family"
    #: run the preflight checks (GPUs, vLLM, servers, hub, paths; ``zppo doctor``) as the
    #: flow's first task and stop with one line when one fails
    preflight: bool = True


@dataclass
class ClusterConfig:
    """Where stages run: ``local`` (subprocesses of the Prefect worker's host) or ``slurm`` (one
    batch job per training run, ``eval_jobs`` one-node jobs per model evaluation; runs of the
    sweep in parallel, ``max_jobs_in_flight`` at once). Defaults: the paper's layout, 8 nodes x 8 GPUs of
    which 6 train and 2 serve the 27B teacher/judge on every node (docs/cluster.md)."""

    #: "local": stages are subprocesses of the Prefect worker's host; "slurm": sbatch jobs
    executor: Executor = "local"
    #: ``#SBATCH --partition`` ("" = the cluster's default)
    partition: str = ""
    #: ``#SBATCH --account`` ("" = the cluster's default)
    account: str = ""
    #: ``#SBATCH --qos`` ("" = the cluster's default)
    qos: str = ""
    #: ``#SBATCH --time`` of a training job; a job stopped at this limit is resubmitted and resumes
    time_limit: str = "48:00:00"
    #: nodes per training run (paper: 8); FSDP2 spans all of them
    nodes: int = 8
    #: GPUs per node the job asks for (``--gpus-per-node``); 0 = CPU nodes, one training rank each
    gpus_per_node: int = 8
    #: of those, GPUs that serve the teacher/judge (the last ones of the node's mask; paper: 2)
    serve_gpus_per_node: int = 2
    #: nodes that start ``vllm serve`` when the run needs a served teacher/judge: "first" | "every"
    serve_on: ServeOn = "every"
    #: port of the served teacher/judge, bound to the node's own address (never 0.0.0.0)
    server_port: int = 8000
    #: port of the rank rendezvous on the first node of the allocation
    rdzv_port: int = 29500
    #: extra lines copied into the batch script as ``#SBATCH <line>`` (e.g. "--constraint=h100")
    sbatch_lines: list[str] = field(default_factory=list)
    #: shell line run on each node before the launcher (e.g. "source /shared/zppo/.venv/bin/activate")
    setup: str = ""
    #: interpreter on the nodes ("" = the worker's own, which must be on the shared filesystem)
    python: str = ""
    #: seconds between job-state polls (squeue / scontrol; sacct or the job-completion log after)
    poll_interval_s: float = 10.0
    #: automatic resubmissions of a job that ended by time limit, node failure or preemption
    max_resubmits: int = 3
    #: (student, method, seed) runs -- and Base evaluations -- whose jobs may be in the cluster at
    #: once; each holds one job at a time (its training, then its evaluation), ``eval_jobs`` while
    #: it evaluates. ``local`` runs them one after another
    max_jobs_in_flight: int = 16
    #: one-node Slurm jobs per model evaluation; each runs one pinned ``eval.worker`` per GPU slot
    #: (``gpus_per_node`` x ``pipeline.eval_workers_per_gpu``, the serving GPUs excluded when the
    #: judge is served in the job) on its share of every benchmark's items
    eval_jobs: int = 1
    #: ``#SBATCH --time`` of an evaluation job
    eval_time_limit: str = "12:00:00"


@dataclass
class Config:
    """The resolved configuration of one pipeline run."""

    #: name of the profile (run names and logs carry it)
    name: str = "paper"
    #: run folder: training checkpoints, evaluation records, the report and the local MLflow store
    output_dir: str = "runs/paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    zppo: ZPPOConfig = field(default_factory=ZPPOConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    curation: CurationConfig = field(default_factory=CurationConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        validate(self)

    # -- which served roles a stage calls (the one rule for the trainer, the server start-up
    # and the preflight) --------------------------------------------------------------------
    def uses_teacher(self, method: str | None = None) -> bool:
        """Whether training ``method`` (default ``zppo.method``) asks the teacher to generate
        (:meth:`MethodSpec.uses_teacher`)."""
        return METHODS[method or self.zppo.method].uses_teacher(self.zppo.compression)

    def uses_judge(self, stage: str) -> bool:
        """Whether ``stage`` ("train" | "eval") calls the judge: judge rewards in training
        (``zppo.judge_rewards``), the judge fallback in evaluation (``eval.use_judge``)."""
        if stage not in ("train", "eval"):
            raise ValueError(f"stage {stage!r} not in train|eval")
        return self.zppo.judge_rewards if stage == "train" else self.eval.use_judge

    # -- derived quantities of Algorithm 1 -------------------------------------------------
    @property
    def replay_count(self) -> int:
        """Questions drawn from the buffer per step: int(rho_replay * |X_new|)."""
        return int(self.zppo.rho_replay * self.schedule.rollout_batch) if self.zppo.use_replay else 0

    @property
    def aug_cap(self) -> int:
        """Cap on BCQ+NCQ instances per step: int(rho_aug * |X_new|)."""
        return int(self.zppo.rho_aug * self.schedule.rollout_batch)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def flatten(self) -> dict[str, Any]:
        """``{"zppo.tau": 0.5, ...}`` for logging as params."""
        return flatten_dict(self.to_dict())

    def hash(self) -> str:
        """Stable short hash of the resolved config (cache keys, run tags)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


_SAMPLING = ("rollout.student", "rollout.teacher", "eval.sampling", "eval.judge_sampling")
#: allowed ranges of numeric settings: (keys, low, high, low is excluded); ``None`` = unbounded.
#: Every float setting must also be finite.
_RANGES: tuple[tuple[tuple[str, ...], float | None, float | None, bool], ...] = (
    (("optim.lr", "optim.eps", "optim.grad_clip", "algo.adv_eps", "algo.dual_clip", "model.server_timeout_s",
      "model.server_health_timeout_s", "model.server_startup_timeout_s", "pipeline.poll_interval_s"),
     0, None, True),
    (("rollout.group_size", "rollout.teacher_group_size", "schedule.rollout_batch", "schedule.micro_batch",
      "schedule.total_steps", "schedule.checkpoint_every", "schedule.keep_checkpoints", "rollout.max_prompt_tokens",
      "rollout.student_tp", "rollout.teacher_tp", "zppo.compression_max_tokens", "zppo.hint_max_tokens",
      "data.toy_size", "eval.batch_size", "pipeline.eval_concurrency", "pipeline.eval_workers_per_gpu",
      "curation.threads", "curation.batch_rows", *(f"{s}.max_new_tokens" for s in _SAMPLING)), 1, None, False),
    (("optim.weight_decay", "model.server_retries", "pipeline.retries", "pipeline.retry_delay_s",
      "zppo.buffer_capacity", "zppo.compression_temperature", "zppo.hint_temperature", "eval.max_items",
      "algo.clip_low", "algo.clip_high", "tracking.samples_per_kind", *(f"{s}.temperature" for s in _SAMPLING)),
     0, None, False),
    (("zppo.tau", "zppo.rho_replay", "zppo.rho_aug", "curation.max_pass_rate", *(f"{s}.min_p" for s in _SAMPLING)),
     0, 1, False),
    (("rollout.gpu_memory_utilization", "eval.gpu_memory_utilization", *(f"{s}.top_p" for s in _SAMPLING)),
     0, 1, True),
    (("optim.warmup_ratio",), 0, 1, False),
)


def _check_ranges(cfg: Config) -> None:
    """One-line :class:`ConfigError` naming the first setting out of its range (or not finite)."""
    flat = cfg.flatten()
    for key, val in flat.items():
        if isinstance(val, float) and not math.isfinite(val):
            raise ConfigError(f"{key}: must be a finite number, got {val}")
    for keys, lo, hi, open_lo in _RANGES:
        for key in keys:
            val = flat[key]
            if (lo is not None and (val <= lo if open_lo else val < lo)) or (hi is not None and val > hi):
                low = f"> {lo:g}" if open_lo else f">= {lo:g}"
                want = f"{low} and <= {hi:g}" if hi is not None else low
                raise ConfigError(f"{key}: must be {want}, got {val}")
    if cfg.optim.warmup_ratio >= 1:
        raise ConfigError(f"optim.warmup_ratio: must be < 1, got {cfg.optim.warmup_ratio}")


def choices(allowed: tuple[Any, ...]) -> str:
    """``"a|b|c"`` for error messages; the empty string shows as ``''``."""
    return "|".join("''" if a == "" else str(a) for a in allowed)


def _check_choices(obj: Any, prefix: str = "") -> None:
    """One-line :class:`ConfigError` naming the first field typed ``Literal[...]`` whose value is
    not one of its arguments (``model.dtype: 'fp8' not in bfloat16|float16|float32``)."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):
        value, typ = getattr(obj, f.name), hints[f.name]
        if is_dataclass(value):
            _check_choices(value, f"{prefix}{f.name}.")
        elif get_origin(typ) is Literal:
            allowed = get_args(typ)
            if not any(value == a and type(value) is type(a) for a in allowed):
                raise ConfigError(f"{prefix}{f.name}: {value!r} not in {choices(allowed)}")


def validate(cfg: Config) -> None:
    _check_ranges(cfg)
    if cfg.zppo.method not in METHODS:
        raise ConfigError(f"zppo.method: unknown method {cfg.zppo.method!r}; choose one of {sorted(METHODS)}")
    if cfg.algo.kl_coef != 0.0:
        raise ConfigError(
            f"algo.kl_coef: {cfg.algo.kl_coef} is not supported (the trainer keeps no reference model; "
            "the paper trains without a KL term): set algo.kl_coef: 0.0"
        )
    if cfg.schedule.micro_batch_tokens < 0:
        raise ConfigError("schedule.micro_batch_tokens must be >= 0 (0 = micro_batch rows)")
    if cfg.parallel.logprob_chunk < 0:
        raise ConfigError("parallel.logprob_chunk must be >= 0 (0 = no chunking)")
    if cfg.model.vllm_sleep_level == 2:
        raise ConfigError("model.vllm_sleep_level: 2 is refused (level 2 + weight reload is reported to "
                          "corrupt VLM rollouts); use 1")
    _check_choices(cfg)
    if cfg.rollout.student_tp != 1:
        raise ConfigError(f"rollout.student_tp: {cfg.rollout.student_tp} is refused; the colocated student "
                          "engine runs one per training rank (tensor parallel needs one prompt set per TP group): use 1")
    if cfg.parallel.collective_timeout_s <= 0:
        raise ConfigError("parallel.collective_timeout_s must be > 0")
    if cfg.algo.iterations < 1:
        raise ConfigError("algo.iterations must be >= 1")
    if not 0.0 <= cfg.zppo.prefix_alpha <= 1.0:
        raise ConfigError(f"zppo.prefix_alpha: {cfg.zppo.prefix_alpha} not in [0, 1]")
    for pair in cfg.pipeline.report_pairs:
        a, sep, b = str(pair).partition(":")
        if not sep or not a.strip() or not b.strip():
            raise ConfigError(f"pipeline.report_pairs: {pair!r} is not METHOD_A:METHOD_B")
    if cfg.pipeline.bootstrap_resamples < 1:
        raise ConfigError("pipeline.bootstrap_resamples must be >= 1")
    if cfg.tracking.audit_records_per_step < 0 or cfg.tracking.audit_max_records < 0:
        raise ConfigError("tracking.audit_records_per_step / audit_max_records must be >= 0")
    _validate_cluster(cfg)


def _validate_cluster(cfg: Config) -> None:
    c = cfg.cluster
    if c.nodes < 1 or c.gpus_per_node < 0 or c.serve_gpus_per_node < 0:
        raise ConfigError("cluster.nodes must be >= 1, cluster.gpus_per_node and serve_gpus_per_node >= 0")
    if c.gpus_per_node and c.serve_gpus_per_node >= c.gpus_per_node:
        raise ConfigError(f"cluster.serve_gpus_per_node={c.serve_gpus_per_node} leaves none of the "
                          f"{c.gpus_per_node} GPUs per node to training")
    if c.max_resubmits < 0 or c.poll_interval_s <= 0:
        raise ConfigError("cluster.max_resubmits must be >= 0 and poll_interval_s > 0")
    if c.max_jobs_in_flight < 1 or c.eval_jobs < 1:
        raise ConfigError("cluster.max_jobs_in_flight and cluster.eval_jobs must be >= 1")
    if c.executor == "slurm" and c.nodes > 1 and cfg.pipeline.launcher != "accelerate":
        raise ConfigError(f"cluster.nodes={c.nodes} needs pipeline.launcher: accelerate (the python "
                          "launcher runs one process)")


def _to_plain(obj: Any) -> Any:
    if is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def flatten_dict(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_dict(v, key + "."))
        else:
            out[key] = v
    return out
