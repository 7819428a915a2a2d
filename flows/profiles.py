"""Config resolution for the pipeline (no Prefect import, so the CLI can read the config and set
Prefect's environment before Prefect loads its settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zppo_core.config import Config, ConfigError, load_config

#: the repository root (configs/ lives there)
REPO_ROOT = Path(__file__).resolve().parent.parent


def resolve_config(config: str | None, profile: str | None, overrides: dict[str, Any] | None) -> Config:
    """``profile`` ``tiny`` -> ``configs/tiny.yaml``; ``config`` is a YAML path (repo-relative ok)."""
    if not config and not profile:
        raise ConfigError("zppo-full: give a config file or a profile name")
    path = Path(config) if config else REPO_ROOT / "configs" / f"{profile}.yaml"
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    return load_config(path, overrides or {})


__all__ = ["REPO_ROOT", "resolve_config"]
