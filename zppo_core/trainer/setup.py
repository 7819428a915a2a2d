"""``train(cfg, output_dir, ...)``: build everything, resume, run the steps, save.

Contract (docs/ARCHITECTURE.md, "Training"): returns ``final_model`` (HF folder, safetensors),
``checkpoint_dir``, ``metrics_path`` (JSONL, one object per step with key ``step``), ``steps``
(the last step reached), ``last_metrics``, ``run_id``. Rank 0 appends every step's metrics to
``<output_dir>/metrics.jsonl`` and calls ``callbacks(step, metrics)``; ``run_id`` is stored in
every checkpoint (``checkpoint.latest_run_id`` reads it back).

One writer: rank 0 holds the output folder's lock (:mod:`zppo_core.locks`) for the whole run.

Resume: the newest readable checkpoint is picked automatically (a newer unreadable one is
skipped with a warning naming it), and only when it was made by the same method,
trajectory-deciding settings and training rows (:mod:`zppo_core.trainer.resume`; ``force_new``
starts over). The checkpoint resumed from is kept until the run ends, then pruned like the others;
``final_model`` is copied from the newest checkpoint that passes ``checkpoint_problem``. The student (and a vLLM
student engine) is loaded from the checkpoint's model folder; optimizer, data cursor, replay
buffer and this rank's RNG states are restored, so the resumed run continues at step k+1 with
neither a repeated nor a skipped step. A run already at its last step returns at once
(``steps`` = that step) and says so in its log line, it does not silently exit mid-way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from zppo_core.config import Config
from zppo_core.replay import PromptReplayBuffer
from zppo_core.trainer import checkpoint as ck
from zppo_core.trainer.batch import vision_token_ids
from zppo_core.trainer.build import (
    Grader,
    build_optimizer,
    build_student_backend,
    build_teacher_backend,
    check_judge_server,
    load_student,
    make_render,
)
from zppo_core.durable import replace_durably
from zppo_core.locks import is_rank_zero, rank_zero_folder_lock
from zppo_core.trainer import resume
from zppo_core.trainer.data import DataCursor, DataError, load_questions
from zppo_core.trainer.samples import SAMPLES_FILE
from zppo_core.trainer.distill import load_teacher
from zppo_core.trainer.distributed import Dist
from zppo_core.trainer.loop import Callback, fit
from zppo_core.trainer.parallel import describe
from zppo_core.trainer.state import Parts, TrainerState, UpdateContext
from zppo_core.trainer.student_engine import StudentEngine

log = logging.getLogger("zppo.trainer")


_MIXED = {"bfloat16": "bf16", "float16": "fp16", "float32": "no"}


def _accelerator(cfg: Config) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from zppo_core.trainer.distributed import process_group_kwargs

    # mixed precision = model.dtype for the ddp/single layouts (autocast over fp32 master
    # weights); the fsdp2 layout takes it from its MixedPrecisionPolicy instead
    acc = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=_MIXED[cfg.model.dtype],
                      kwargs_handlers=[process_group_kwargs(cfg.parallel.collective_timeout_s)])
    set_seed(cfg.schedule.seed, device_specific=True)  # seed + rank
    return acc


def _layout(cfg: Config, acc: Any, dist: Dist, model: Any) -> tuple[Any, Any]:
    """Shard (fsdp2) or wrap (ddp) the fp32 student; build the optimizer on what results."""
    from zppo_core.trainer.build import torch_dtype
    from zppo_core.trainer.parallel import apply_fsdp2, enable_activation_checkpointing

    if cfg.parallel.activation_checkpointing:
        enable_activation_checkpointing(model)
    if dist.is_fsdp:  # fully_shard moves each unit to the device as it shards it: never whole on a GPU
        apply_fsdp2(model, compute_dtype=torch_dtype(cfg.model.dtype), device_type=acc.device.type,
                    reshard_after_forward=cfg.parallel.reshard_after_forward)
        return model, build_optimizer(model, cfg.optim)
    optimizer = build_optimizer(model, cfg.optim)
    return acc.prepare(model, optimizer)


def build_parts(cfg: Config, output_dir: Path, model_dir: str) -> Parts:
    from zppo_core import symbolic_worker
    from zppo_core.engines.render import load_image
    from zppo_core.models.processor import tokenizer_of

    from zppo_core.trainer.parallel import resolve_strategy

    acc = _accelerator(cfg)
    dist = Dist(acc, resolve_strategy(cfg.parallel.strategy, int(acc.num_processes)),
                object_timeout_s=cfg.parallel.collective_timeout_s)
    questions = load_questions(_ensure_data(cfg, dist, output_dir), cfg.data.image_root)
    symbolic_worker.prestart()  # the grader's sympy worker imports while the student loads
    model, processor = load_student(model_dir, cfg)
    model, optimizer = _layout(cfg, acc, dist, model)
    live = acc.unwrap_model(model)
    tok = tokenizer_of(processor)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    io = RolloutIOFactory.build(cfg, live, processor, model_dir, questions, load_image, dist.rank, dist.world)
    if dist.is_fsdp and hasattr(io.student, "set_collective_sync"):
        io.student.set_collective_sync(dist.max_int)  # generating from the sharded module
    vision_ids = vision_token_ids(tok)
    update = UpdateContext.from_config(cfg, model=model, optimizer=optimizer, pad_id=int(pad_id),
                                       vision_ids=vision_ids, dist=dist)
    if dist.is_fsdp and getattr(processor, "image_processor", None) is not None:
        update.vision_filler = _vision_filler(io, update.pad_id)
    teacher = load_teacher(cfg, dist, processor, model_dir) if cfg.zppo.distill else None
    if dist.is_main:
        log.info("student layout: %s over %d process(es)", dist.strategy, dist.world)
    return Parts(cfg=cfg, dist=dist, model=model, optimizer=optimizer, processor=processor, io=io,
                 questions=questions, pad_id=int(pad_id), vision_ids=vision_ids, output_dir=output_dir,
                 update=update, student=StudentEngine.for_run(cfg, io.student), teacher=teacher, tokenizer=tok)


def _vision_filler(io: Any, pad_id: int) -> Any:
    """A zero-weight rollout whose prompt holds one small blank image (FSDP2 + VLM)."""
    from PIL import Image

    from zppo_core.engines.base import GenerationRequest
    from zppo_core.trainer.batch import Rollout
    from zppo_core.trainer.state import FILLER_UID

    req = GenerationRequest(messages=[{"role": "user", "content": "."}], images=[Image.new("RGB", (32, 32))])
    prompt_ids, mm = io.render(req)
    return Rollout(uid=FILLER_UID, kind="plain", question_id=FILLER_UID, prompt_ids=list(prompt_ids),
                   response_ids=[pad_id], mm=mm)


#: where generated toy data goes inside the run folder (``data.train_path`` empty)
TOY_DATA = Path("toy_data") / "zppo77k.parquet"


def training_file(cfg: Config, output_dir: Path) -> Path:
    """The parquet to train on. A ``data.train_path`` that does not exist is an error, never
    replaced by generated data: toy data is used only when asked for explicitly, by an empty
    ``data.train_path`` together with a ``data.toy_kind`` (generated at ``<output>/toy_data/``)."""
    d = cfg.data
    if d.train_path:
        path = Path(d.train_path)
        if not path.is_file():
            raise DataError(f"training data not found: {path} (data.train_path). Toy data is generated only "
                            f"when data.train_path is empty and data.toy_kind is set")
        return path
    if not d.toy_kind:
        raise DataError("data.train_path is empty: set it to the curated parquet, or set data.toy_kind "
                        "(arithmetic | fixed) to train on generated toy data")
    return output_dir / TOY_DATA


def _ensure_data(cfg: Config, dist: Dist, output_dir: Path) -> Path:
    """:func:`training_file`, generating the requested toy set there first when missing."""
    path = training_file(cfg, output_dir)
    d = cfg.data
    if not d.train_path and not path.exists():
        if dist.is_main:
            from zppo_core.trainer.toy_data import ToySpec, make_toy_dataset

            spec = ToySpec(kind=d.toy_kind, n=d.toy_size, seed=cfg.schedule.seed, with_images=d.toy_images)
            made = make_toy_dataset(path.parent, spec)
            if made != path:
                made.replace(path)
        dist.barrier()
    return path


class RolloutIOFactory:
    """Builds the :class:`~zppo_core.trainer.rollout.RolloutIO` of a run (a seam for tests)."""

    @staticmethod
    def build(cfg, live_model, processor, model_dir, questions, load_image, rank=0, world=1):
        from zppo_core.trainer.rollout import RolloutIO

        check_judge_server(cfg, questions)
        return RolloutIO(
            student=build_student_backend(cfg, live_model, processor, model_dir, rank, world),
            teacher=build_teacher_backend(cfg, questions, processor),
            render=make_render(processor, cfg),
            grade=Grader(cfg),
            load_image=lambda p: load_image(p, where=p),
        )


def train(
    cfg: Config,
    output_dir: str | Path,
    *,
    max_steps: int | None = None,
    callbacks: Iterable[Callback] = (),
    run_id: str | None = None,
    force_new: bool = False,
) -> dict[str, Any]:
    """Run (or resume) training; see the module docstring for the returned dict.

    Holds the output folder's lock (rank 0) for the whole run. ``force_new``: do not continue the
    folder's checkpoints; move its previous outputs aside and start at step 0.
    """
    out = Path(output_dir)
    with rank_zero_folder_lock(out, "zppo train"):
        if is_rank_zero():
            _clean_leftovers(out)
        return _train(cfg, out, max_steps, callbacks, run_id, force_new)


def _resume_point(cfg: Config, out: Path, force_new: bool) -> Path | None:
    """The checkpoint to continue (every rank reads the same files and decides alike)."""
    if force_new:
        if is_rank_zero() and (moved := resume.supersede(out)) is not None:
            log.warning("--force-new: the previous outputs of %s were moved to %s", out, moved)
        return None
    latest, skipped = ck.find_resumable(out)
    for path, why in skipped:
        log.warning("checkpoint %s is unreadable (%s); falling back to %s", path, why,
                    latest if latest is not None else "a fresh start")
    if latest is not None:
        resume.check(ck.read_state(latest), cfg, latest)
    return latest


def _train(cfg: Config, out: Path, max_steps: int | None, callbacks: Iterable[Callback], run_id: str | None,
           force_new: bool) -> dict[str, Any]:
    from zppo_core.models import resolve

    latest = _resume_point(cfg, out, force_new)
    model_dir = str(latest / ck.MODEL_DIR) if latest else resolve(cfg.model.student)
    parts = build_parts(cfg, out, model_dir)
    z = cfg.zppo
    st = TrainerState(
        step=0,
        cursor=DataCursor(len(parts.questions), cfg.schedule.seed),
        buffer=PromptReplayBuffer(z.buffer_capacity, z.tau, seed=cfg.schedule.seed),
        run_id=run_id,
    )
    parts.data_fingerprint = resume.data_fingerprint(parts.questions)
    if latest is not None:
        resume.check_data(ck.read_state(latest), parts.data_fingerprint, latest,
                          cfg.data.train_path or str(out / TOY_DATA))
        ck.restore(parts, st, latest)
        parts.resumed_from = latest  # pruning keeps it until the run ends
    start = st.step
    end = min(cfg.schedule.total_steps, max_steps if max_steps is not None else cfg.schedule.total_steps)
    metrics_path = out / "metrics.jsonl"
    if parts.dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        _truncate_metrics(metrics_path, st.step)
        _truncate_metrics(out / SAMPLES_FILE, st.step)  # sample rows of steps the resume recomputes
        log.info("training %s steps %d..%d (method %s)%s", cfg.name, st.step + 1, end, z.method,
                 f", resumed from {latest}" if latest else "")
    last = fit(parts, st, end, metrics_path, callbacks)
    if latest is not None and st.step == start and parts.dist.is_main:
        log.info("nothing to do: checkpoint %s is already at step %d (end %d)", latest, st.step, end)
    final = out / "final_model"
    if st.step > 0 and parts.dist.is_main:
        ckpt, skipped = ck.find_resumable(out)  # verified: a damaged newer one is never published
        for path, why in skipped:
            log.warning("checkpoint %s is unusable (%s); publishing %s instead", path, why, ckpt)
        if ckpt is not None:
            _publish_final(ckpt / ck.MODEL_DIR, final)
        ck.prune(out, cfg.schedule.keep_checkpoints)  # the run is over: its start point is no longer in use
    parts.dist.barrier()
    return {
        "parallel": describe(parts.dist.strategy, parts.dist.world),
        "final_model": str(final),
        "checkpoint_dir": str(ck.checkpoint_root(out)),
        "metrics_path": str(metrics_path),
        "steps": st.step,
        "last_metrics": last,
        "run_id": st.run_id,
    }


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows of steps after ``step`` (a crash between logging and checkpointing a step), and
    a torn last line (a crash in the middle of writing it), with a warning.

    The resumed run recomputes those steps, so every step appears exactly once. A line that is
    not JSON before the last one is damage, not a crash: an error naming the line.
    """
    if not path.exists():
        return
    rows = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = []
    for i, ln in enumerate(rows, 1):
        try:
            row = json.loads(ln)
        except json.JSONDecodeError:
            if i == len(rows):
                log.warning("%s: dropping a torn last line (%d characters) left by an interrupted run", path, len(ln))
                continue
            raise ValueError(f"{path}: line {i} is not valid JSON") from None
        if row.get("step", 0) <= step:
            keep.append(ln)
    if len(keep) != len(rows):
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(ln + "\n" for ln in keep))
        replace_durably(tmp, path)


def _clean_leftovers(out: Path) -> None:
    """Remove temp folders of killed runs (``.final_model.tmp-*``, checkpoint temp folders);
    safe because this process holds the folder lock."""
    import shutil

    leftovers = [*out.glob(".final_model.tmp-*"), *out.glob(".final_model.old-*"),
                 *ck.checkpoint_root(out).glob(".tmp-step_*"),
                 *ck.checkpoint_root(out).glob(".old-step_*")]
    for p in leftovers:
        log.info("removing %s, left over by an interrupted run", p)
        shutil.rmtree(p, ignore_errors=True)


def _publish_final(src: Path, final: Path) -> None:
    """Copy the newest checkpoint's model folder to ``final_model`` atomically and durably."""
    import os
    import shutil

    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    replace_durably(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["RolloutIOFactory", "build_parts", "train"]
