"""Resume only what this run produced: the identity of a checkpoint, its comparison with the
run's config, and starting a folder over on request.

A checkpoint stores ``method``, ``config_hash`` (the whole resolved config), and
``resume_hash`` / ``resume_config``: the settings that decide the training trajectory, i.e. the
whole config except :data:`MAY_CHANGE_ON_RESUME`. A run continues a folder only when its method
and resume hash match the newest readable checkpoint; otherwise :class:`ResumeMismatch` says
which settings differ and how to proceed (a new output folder, or ``--force-new``, which moves
the folder's previous results aside into ``superseded-<UTC time>/`` -- nothing is deleted).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from zppo_core.config import Config
from zppo_core.fingerprint import stable_hash
from zppo_core.redact import redact

#: settings that may change between a run and its continuation: names and places, tracking,
#: the sweep/launcher, curation and evaluation, how long to run and how often to save, and
#: the addresses of the teacher/judge servers. ``schedule.total_steps`` only while the
#: learning rate does not depend on it (``optim.warmup_ratio`` = 0).
MAY_CHANGE_ON_RESUME = (
    "name", "output_dir", "tracking.", "pipeline.", "eval.", "curation.", "schedule.checkpoint_every",
    "schedule.keep_checkpoints", "model.teacher_url", "model.judge_url",
)
#: what ``--force-new`` moves aside (the run's outputs; the generated toy data is an input)
RUN_OUTPUTS = ("checkpoints", "metrics.jsonl", "samples.jsonl", "final_model", ".weight_sync")


class ResumeMismatch(RuntimeError):
    """The output folder's checkpoint was produced by another method or configuration."""


def _may_change(key: str, cfg: Config) -> bool:
    if key == "schedule.total_steps":
        return cfg.optim.warmup_ratio == 0
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in MAY_CHANGE_ON_RESUME)


def resume_config(cfg: Config) -> dict[str, Any]:
    """The flattened settings that decide the training trajectory."""
    return {k: v for k, v in cfg.flatten().items() if not _may_change(k, cfg)}


def identity(cfg: Config) -> dict[str, Any]:
    """What a checkpoint stores about the run that made it (credentials masked)."""
    conf = resume_config(cfg)
    return {"method": cfg.zppo.method, "config_hash": cfg.hash(), "resume_hash": stable_hash(conf),
            "resume_config": redact(conf)}


def check(state: dict[str, Any], cfg: Config, ckpt: Path) -> None:
    """Raise :class:`ResumeMismatch` unless ``cfg`` may continue the run that wrote ``state``."""
    mine = identity(cfg)
    if "resume_hash" in state:
        same = state["resume_hash"] == mine["resume_hash"]
    else:  # checkpoints written before resume hashes existed: the whole config must match
        same = state.get("config_hash") == mine["config_hash"]
    if same and state.get("method") == mine["method"]:
        return
    theirs = state.get("resume_config") or {}
    diff = sorted(k for k in set(theirs) | set(mine["resume_config"])
                  if theirs.get(k) != mine["resume_config"].get(k))
    what = f"; differing settings: {', '.join(diff[:8])}{' ...' if len(diff) > 8 else ''}" if theirs else ""
    raise ResumeMismatch(
        f"{ckpt} was made by method {state.get('method')!r} (config hash {state.get('config_hash')}), "
        f"this run is method {mine['method']!r} (config hash {mine['config_hash']}){what}. Refusing to "
        f"continue another run's checkpoint: choose a new output folder, or pass --force-new to start "
        f"this folder over (its previous results are moved to {ckpt.parent.parent}/superseded-<time>/)"
    )


def data_fingerprint(questions: list[dict[str, Any]]) -> str:
    """Content hash of the training rows (ids, texts, answers, image files by name): the same
    data copied elsewhere keeps it, data replaced at the same path changes it."""
    keys = ("id", "question", "answer", "image", "reward_type", "tier", "teacher_response")
    return stable_hash([[q.get(k) for k in keys] for q in questions])


def check_data(state: dict[str, Any], fingerprint: str, ckpt: Path, train_file: str) -> None:
    """Raise :class:`ResumeMismatch` when the training rows differ from those ``ckpt`` was trained
    on (checkpoints without a fingerprint are not checked)."""
    theirs = state.get("data_fingerprint")
    if theirs and theirs != fingerprint:
        raise ResumeMismatch(
            f"{ckpt} was trained on other data than {train_file} holds now (data fingerprint {theirs}, now "
            f"{fingerprint}): restore that data, or pass --force-new to start this folder over (its previous "
            f"results are moved to {ckpt.parent.parent}/superseded-<time>/)")


def supersede(output_dir: str | Path) -> Path | None:
    """Move the folder's previous run outputs into ``superseded-<UTC time>/`` (rank 0, under
    the folder lock). Returns that folder, or None when there was nothing to move."""
    out = Path(output_dir)
    present = [out / n for n in RUN_OUTPUTS if (out / n).exists()]
    if not present:
        return None
    dest = out / time.strftime("superseded-%Y%m%dT%H%M%SZ", time.gmtime())
    k = 1
    while dest.exists():
        dest = dest.with_name(f"{dest.name.split('.')[0]}.{k}")
        k += 1
    dest.mkdir(parents=True)
    for p in present:
        os.replace(p, dest / p.name)
    return dest


__all__ = ["MAY_CHANGE_ON_RESUME", "RUN_OUTPUTS", "ResumeMismatch", "check", "check_data", "data_fingerprint",
           "identity", "resume_config", "supersede"]
