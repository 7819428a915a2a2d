"""Atomic, resumable training checkpoints.

Layout of ``<output_dir>/checkpoints/step_000010/``::

    model/                    HF folder: config + safetensors weights (+ tokenizer/processor);
                              loadable by ``from_pretrained``; no pickled weights
    optimizer.safetensors     every tensor of ``optimizer.state_dict()["state"]``
    optimizer.json            the rest of the optimizer state (param_groups, scalar entries)
    trainer_state.json        step, run id, config hash, data cursor, replay buffer, RNG
                              states of every rank -- written LAST

A checkpoint is written into ``checkpoints/.tmp-step_000010-<pid>/`` and renamed into place
with ``os.replace`` only when complete and fsynced (files and folders), so a run killed
mid-save, or a machine that loses power right after, leaves no partial ``step_*`` folder behind; :func:`find_latest` only considers ``step_*`` folders holding ``trainer_state.json``.
Only rank 0 calls the file writers here; the trainer-level functions at the end
(:func:`save`, :func:`restore`; and :func:`gather_model_state` for the disk weight sync of
:mod:`zppo_core.trainer.student_engine`) are called by EVERY rank, because the full state
dicts they gather are collectives under DDP/FSDP.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from zppo_core.durable import replace_durably

if TYPE_CHECKING:
    from zppo_core.trainer.state import Parts, TrainerState

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
MODEL_DIR = "model"
_STEP_RE = re.compile(r"^step_(\d+)$")


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def step_dirname(step: int) -> str:
    return f"step_{step:06d}"


# ---------------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------------
def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints as ``(step, path)``, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _STEP_RE.match(p.name)
        if m and p.is_dir() and (p / STATE_FILE).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def find_latest(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder, or ``None``."""
    ckpts = list_checkpoints(output_dir)
    return ckpts[-1][1] if ckpts else None


def read_state(ckpt: str | Path) -> dict[str, Any]:
    path = Path(ckpt) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RuntimeError(f"unreadable checkpoint state {path}: {e}") from e


#: trainer_state.json keys a checkpoint must hold to be resumed from
_STATE_KEYS = ("step", "cursor", "buffer", "rng")


def checkpoint_problem(ckpt: str | Path) -> str | None:
    """Why ``ckpt`` cannot be resumed from (``None`` when it can): an unreadable or incomplete
    state file, a missing or unparsable model config, a truncated safetensors file."""
    from safetensors import safe_open

    ckpt = Path(ckpt)
    try:
        state = read_state(ckpt)
    except RuntimeError as e:
        return str(e)
    missing = [k for k in _STATE_KEYS if k not in state]
    if missing:
        return f"{ckpt / STATE_FILE} lacks {missing}"
    for name in (f"{MODEL_DIR}/config.json", "optimizer.json"):
        try:
            json.loads((ckpt / name).read_text())
        except (OSError, ValueError) as e:
            return f"{ckpt / name}: {e}"
    tensors = sorted((ckpt / MODEL_DIR).glob("*.safetensors"))
    if not tensors:
        return f"{ckpt / MODEL_DIR}: no safetensors weights"
    for f in [*tensors, ckpt / "optimizer.safetensors"]:
        try:
            with safe_open(str(f), "pt"):
                pass
        except Exception as e:  # noqa: BLE001 - SafetensorError, OSError: the file is unusable
            return f"{f}: {e}"
    return None


def find_resumable(output_dir: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint that passes :func:`checkpoint_problem`, and the newer ones skipped
    as ``(path, reason)`` (newest first) -- the caller warns about each by name."""
    skipped: list[tuple[Path, str]] = []
    for _, path in reversed(list_checkpoints(output_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped


def latest_run_id(output_dir: str | Path) -> str | None:
    """Tracking run id stored in the newest checkpoint whose state is readable (``None`` if none)."""
    for _, path in reversed(list_checkpoints(output_dir)):
        try:
            return read_state(path).get("run_id") or None
        except RuntimeError:
            continue
    return None


# ---------------------------------------------------------------------------------------------
# optimizer state <-> safetensors + JSON
# ---------------------------------------------------------------------------------------------
def optimizer_to_files(state: dict[str, Any], directory: Path) -> None:
    """Split an optimizer state dict into tensors (safetensors) and the rest (JSON).

    Works for ``optimizer.state_dict()`` (int keys) and for the full, FQN-keyed dict of
    ``torch.distributed.checkpoint.state_dict.get_optimizer_state_dict`` (what the trainer saves:
    identical under single process, DDP and FSDP).
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in state["state"].items():
        for name, val in entries.items():
            if isinstance(val, torch.Tensor):
                tensors[f"{pid}/{name}"] = val.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = val
    save_file(tensors, str(directory / "optimizer.safetensors"))
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state["param_groups"]]
    (directory / "optimizer.json").write_text(json.dumps({"param_groups": groups, "scalars": scalars}))


def _param_key(key: str) -> int | str:
    """Optimizer state keys: ints (``optimizer.state_dict()``) or parameter names (FQNs)."""
    return int(key) if key.isdigit() else key


def optimizer_from_files(directory: Path) -> dict[str, Any]:
    """Inverse of :func:`optimizer_to_files` (a dict for ``optimizer.load_state_dict``)."""
    meta = json.loads((directory / "optimizer.json").read_text())
    state: dict[Any, dict[str, Any]] = {}
    for key, t in load_file(str(directory / "optimizer.safetensors")).items():
        pid, name = key.rsplit("/", 1)
        state.setdefault(_param_key(pid), {})[name] = t
    for pid, entries in meta["scalars"].items():
        state.setdefault(_param_key(pid), {}).update(entries)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------------------------------------
# RNG states (python / numpy / torch), JSON-serialisable
# ---------------------------------------------------------------------------------------------
def get_rng_state() -> dict[str, Any]:
    """This process's RNG states as plain JSON data."""
    py = random.getstate()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    out: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        out["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states produced by :func:`get_rng_state`."""
    v, keys, gauss = state["python"]
    random.setstate((v, tuple(keys), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# ---------------------------------------------------------------------------------------------
# save / prune
# ---------------------------------------------------------------------------------------------
def save_checkpoint(
    output_dir: str | Path,
    step: int,
    *,
    save_model: Callable[[Path], None],
    optimizer_state: dict[str, Any] | None,
    trainer_state: dict[str, Any],
    keep: int,
    protect: tuple[Path, ...] = (),
) -> Path:
    """Write checkpoint ``step`` atomically and prune to the newest ``keep`` (rank 0 only).

    ``save_model(dir)`` writes the HF model folder; ``trainer_state`` must be JSON data and
    gets ``step`` added; ``protect``: see :func:`prune`. Returns the final folder.
    """
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dirname(step)
    tmp = root / f".tmp-{step_dirname(step)}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(tmp / MODEL_DIR)
    if optimizer_state is not None:
        optimizer_to_files(optimizer_state, tmp)
    state = dict(trainer_state, step=step)
    (tmp / STATE_FILE).write_text(json.dumps(state))
    old = None
    if final.exists():  # re-saving the same step (e.g. final save after a periodic one)
        old = root / f".old-{step_dirname(step)}-{os.getpid()}"
        os.replace(final, old)
    replace_durably(tmp, final)  # every file and folder fsynced before the rename
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    prune(output_dir, keep, protect=(final, *protect))
    return final


def prune(output_dir: str | Path, keep: int, protect: tuple[Path, ...] = ()) -> None:
    """Keep the newest ``keep`` (at least 1) checkpoints that pass :func:`checkpoint_problem`,
    plus the folders in ``protect`` (the one just written, the checkpoint a running resume
    started from); delete the
    other ``step_*`` folders -- older ones and unusable ones, each unusable one with a warning --
    and any stale temp folders. The newest usable checkpoint is therefore never deleted."""
    root = checkpoint_root(output_dir)
    for pattern in (".tmp-step_*", ".old-step_*"):
        for p in root.glob(pattern):
            if not p.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(p, ignore_errors=True)
    ckpts = list_checkpoints(output_dir)
    problems = {p: checkpoint_problem(p) for _, p in ckpts}
    good = [p for _, p in ckpts if problems[p] is None]
    kept = {p.name for p in good[-max(keep, 1):]} | {Path(p).name for p in protect}
    for _, p in ckpts:
        if p.name in kept:
            continue
        if problems[p] is not None:
            log.warning("deleting unusable checkpoint %s (%s)", p, problems[p])
        shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# trainer-level save / restore / weight sync (every rank calls these)
# ---------------------------------------------------------------------------------------------
def gather_model_state(parts: Parts) -> dict[str, torch.Tensor]:
    """The full (unsharded) model state dict. A collective: EVERY rank calls it, the same number
    of times; under FSDP2 only rank 0 receives the tensors."""
    if parts.dist.is_fsdp:
        from zppo_core.trainer.parallel import full_model_state_dict

        return full_model_state_dict(parts.model)
    return parts.dist.acc.get_state_dict(parts.model)


def write_model(parts: Parts, out: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """HF folder (safetensors + processor) at ``out`` from a gathered state dict (rank 0)."""
    from zppo_core.models.processor import save_processor

    unwrapped = parts.dist.acc.unwrap_model(parts.model)
    unwrapped.save_pretrained(str(out), safe_serialization=True, state_dict=state_dict)
    _fix_architectures(out, unwrapped)
    save_processor(parts.processor, out)


def _fix_architectures(out: Path, model: Any) -> None:
    """``save_pretrained`` records the class name; an FSDP2 module's class is ``FSDP<Name>``."""
    path = out / "config.json"
    cfg = json.loads(path.read_text())
    archs = cfg.get("architectures") or []
    fixed = [a[4:] if a.startswith("FSDP") and a[4:] in {c.__name__ for c in type(model).__mro__} else a
             for a in archs]
    if fixed != archs:
        cfg["architectures"] = fixed
        path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def _state_json(parts: Parts, st: TrainerState) -> dict[str, Any]:
    from zppo_core.trainer.resume import identity

    rngs = parts.dist.gather([get_rng_state()])
    return {
        "run_id": st.run_id,
        **identity(parts.cfg),  # method, config_hash, resume_hash, resume_config
        "world_size": parts.dist.world,
        "data_fingerprint": parts.data_fingerprint,
        "parallel": {"strategy": parts.dist.strategy, "world_size": parts.dist.world},
        "cursor": st.cursor.state_dict(),
        "buffer": st.buffer.state_dict(),
        "rng": rngs,
    }


def _sd_options(full: bool):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=full, cpu_offload=full)


def full_optimizer_state(parts: Parts) -> dict[str, Any]:
    """Unsharded optimizer state keyed by parameter name (same under 1 process, DDP, FSDP)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(parts.model, parts.optimizer, options=_sd_options(True))


def load_optimizer_state(parts: Parts, state: dict[str, Any]) -> None:
    """Inverse of :func:`full_optimizer_state` (every rank passes the full dict)."""
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    set_optimizer_state_dict(parts.model, parts.optimizer, state, options=_sd_options(parts.dist.is_fsdp))


def save(parts: Parts, st: TrainerState) -> Path | None:
    """Checkpoint the current step (every rank participates; rank 0 writes)."""
    state = _state_json(parts, st)  # collective: all ranks
    opt_state = full_optimizer_state(parts)  # collective under FSDP
    model_state = gather_model_state(parts)  # collective under FSDP
    path = None
    if parts.dist.is_main:
        path = save_checkpoint(
            parts.output_dir, st.step, save_model=lambda d: write_model(parts, d, model_state),
            optimizer_state=opt_state,
            trainer_state=state, keep=parts.cfg.schedule.keep_checkpoints,
            protect=(parts.resumed_from,) if parts.resumed_from is not None else (),
        )
    parts.dist.barrier()
    return path


def restore(parts: Parts, st: TrainerState, ckpt: Path) -> None:
    """Load optimizer, cursor, buffer, this rank's RNG and the step from ``ckpt`` (every rank)."""
    state = read_state(ckpt)
    if state.get("world_size") != parts.dist.world:
        raise RuntimeError(
            f"checkpoint {ckpt} was written by {state.get('world_size')} processes, this run has "
            f"{parts.dist.world}; resume with the same number of processes"
        )
    load_optimizer_state(parts, optimizer_from_files(ckpt))
    st.cursor.load_state_dict(state["cursor"])
    st.buffer.load_state_dict(state["buffer"])
    set_rng_state(state["rng"][parts.dist.rank])
    st.step = int(state["step"])
    st.run_id = st.run_id or state.get("run_id")


__all__ = [
    "MODEL_DIR",
    "STATE_FILE",
    "checkpoint_problem",
    "checkpoint_root",
    "find_latest",
    "find_resumable",
    "full_optimizer_state",
    "get_rng_state",
    "latest_run_id",
    "list_checkpoints",
    "load_optimizer_state",
    "optimizer_from_files",
    "optimizer_to_files",
    "prune",
    "read_state",
    "restore",
    "save",
    "gather_model_state",
    "save_checkpoint",
    "write_model",
    "set_rng_state",
]
