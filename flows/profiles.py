"""Config resolution for the pipeline (no Prefect import, so the CLI can read the config and set
Prefect's environment before Prefect loads its settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zppo_core.config import METHODS, Config, ConfigError, load_config

#: the repository root (configs/ lives there)
REPO_ROOT = Path(__file__).resolve().parent.parent


#: keys each run of the sweep gets from the sweep or the curation stage: an override of them
#: would be silently replaced, so it is refused by name with what to use instead
PER_LANE_KEYS = {
    "model.student": "use --students or pipeline.students",
    "zppo.method": "use --methods or pipeline.methods",
    "schedule.seed": "use --seeds or pipeline.seeds",
    "data.train_path": "the curation stage's parquet; choose the data with curation.*",
    "data.image_root": "the curation stage's folder; choose the data with curation.*",
}


def refuse_per_lane_overrides(overrides: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` naming every override the pipeline would replace per run."""
    refused = sorted(k for k in overrides if k in PER_LANE_KEYS)
    if refused:
        raise ConfigError("; ".join(f"--set {k}: the pipeline sets it per run ({PER_LANE_KEYS[k]})" for k in refused))


def sweep_of(cfg: Config, students: list[str] | None, methods: list[str] | None,
           seeds: list[int] | None) -> tuple[list[str], list[str], list[int]]:
    """``(students, methods, seeds)`` of a run: the arguments, else the config's ``pipeline``."""
    st = list(students or cfg.pipeline.students or [cfg.model.student])
    me = list(methods or cfg.pipeline.methods)
    se = [int(s) for s in (seeds or cfg.pipeline.seeds or [cfg.schedule.seed])]
    bad = [m for m in me if m not in METHODS]
    if bad:
        raise ConfigError(f"methods: unknown {bad}; choose from {sorted(METHODS)}")
    return st, me, se


def sweep_benchmarks(cfg: Config) -> list[str]:
    """The registry abbreviations ``eval.benchmarks`` names (families, ``all``, ``offline``)."""
    from eval.registry import select

    try:
        return [b.abbr for b in select(cfg.eval.benchmarks)]
    except KeyError as e:
        raise ConfigError(f"eval.benchmarks: {e.args[0]}") from None


def resolve_config(config: str | None, profile: str | None, overrides: dict[str, Any] | None) -> Config:
    """``profile`` ``tiny`` -> ``configs/tiny.yaml``; ``config`` is a YAML path (repo-relative ok)."""
    if not config and not profile:
        raise ConfigError("zppo-full: give a config file or a profile name")
    path = Path(config) if config else REPO_ROOT / "configs" / f"{profile}.yaml"
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    return load_config(path, overrides or {})


__all__ = ["PER_LANE_KEYS", "REPO_ROOT", "refuse_per_lane_overrides", "resolve_config", "sweep_benchmarks", "sweep_of"]
