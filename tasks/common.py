"""What every stage wrapper shares: the tracking context handed between tasks, labels, logging.

Tasks receive plain JSON-able values only (the resolved config as a dict, paths, a
:class:`TrackCtx` as a dict), so Prefect can persist their inputs and results.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import tasks.results  # noqa: F401 - registers the stages' result storage block class in every process
from tasks.tracking import Tracker

_TRACKERS: dict[tuple[str, str], Tracker] = {}
_TRACKERS_LOCK = threading.Lock()


@dataclass
class TrackCtx:
    """Where and under which parent the stages log (a dict on the wire)."""

    tracking_uri: str
    experiment: str
    artifact_location: str | None
    parent_run_id: str
    #: tags every run of this pipeline carries (teacher, git_sha, config_hash, ...)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrackCtx":
        return cls(**d)

    def tracker(self) -> Tracker:
        key = (self.tracking_uri, self.experiment)
        with _TRACKERS_LOCK:
            if key not in _TRACKERS:
                _TRACKERS[key] = Tracker(self.tracking_uri, self.experiment, self.artifact_location)
            return _TRACKERS[key]


def slug(spec: str) -> str:
    """Folder/run-name-safe form of a model spec: ``Qwen/Qwen3.5-2B`` -> ``Qwen_Qwen3.5-2B``."""
    return re.sub(r"[^0-9A-Za-z_.\-]+", "_", spec).strip("_")


def labels(student: str, method: str, seed: int | None) -> dict[str, str]:
    """The per-run tag set (student, method, seed) that sits beside the pipeline tags."""
    return {"student": student, "method": method, "seed": "" if seed is None else str(seed)}


def short_name(spec: str) -> str:
    """What a reader calls a model: ``builtin:tiny-qwen3.5-vl?warmstart=0`` -> ``tiny-qwen3.5-vl``,
    ``Qwen/Qwen3.5-2B`` -> ``Qwen3.5-2B``, ``/ckpt/zppo-2b/final_model`` -> ``zppo-2b/final_model``."""
    body = spec[len("builtin:"):] if spec.startswith("builtin:") else spec
    body = body.split("?", 1)[0].rstrip("/")
    parts = [p for p in re.split(r"[/\\]", body) if p]
    if not parts:
        return spec
    return "/".join(parts[-2:]) if len(parts) > 2 else parts[-1]


def stage_tag(lab: dict[str, str]) -> str:
    """``tiny-qwen3.5-vl/zppo/s0`` (Prefect task run names: ``train[...]``, ``eval[...]``)."""
    seed = f"/s{lab['seed']}" if lab.get("seed") else ""
    return f"{short_name(lab['student'])}/{lab['method']}{seed}"


def run_name(lab: dict[str, str], lead: str = "") -> str:
    """MLflow run name leading with what differs between runs: ``zppo · tiny-qwen3.5-vl · s0``
    (``lead`` first when given, e.g. the benchmark of an evaluation run)."""
    parts = [lead] if lead else []
    parts += [lab["method"], short_name(lab["student"])]
    if lab.get("seed"):
        parts.append(f"s{lab['seed']}")
    return " · ".join(parts)


def stage_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a task/flow, the module logger elsewhere (unit tests)."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # noqa: BLE001 - MissingContextError outside a run
        return logging.getLogger("zppo.pipeline")


def json_safe(obj: Any) -> Any:
    """Results as plain JSON values (paths -> str), so persisted results stay small and portable."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


__all__ = ["TrackCtx", "json_safe", "labels", "run_name", "short_name", "slug", "stage_logger", "stage_tag"]


#: ``extra`` key of a log record that repeats the error the command prints itself at the end
FINAL_ERROR = "zppo_final_error"
#: how Prefect's engine echoes a failure that propagates: once per task, subflow and flow
_ENGINE_ECHOES = ("Finished in state Failed", "Finished in state Crashed", "Encountered exception during execution",
                  "Task run failed with exception")


class RepeatedFailureFilter(logging.Filter):
    """Drops from the terminal the engine's echoes of a failure that ``zppo pipeline`` prints
    once itself (with the traceback): they stay in the Prefect run's logs. A retry announcement
    ("Retry 1/2 will start ...") is kept: it says why the run waits."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, FINAL_ERROR, False):
            return False
        if not record.name.startswith(("prefect.flow_runs", "prefect.task_runs")):
            return True
        msg = record.getMessage()
        return not msg.startswith(_ENGINE_ECHOES) or "will start" in msg


def quiet_repeated_failures() -> None:
    """Install :class:`RepeatedFailureFilter` on Prefect's console handler (not its API handler)."""
    for h in logging.getLogger().handlers + logging.getLogger("prefect").handlers:
        if type(h).__name__ == "PrefectConsoleHandler" and not any(
                isinstance(f, RepeatedFailureFilter) for f in h.filters):
            h.addFilter(RepeatedFailureFilter())
