"""One typed configuration for the whole pipeline (see :mod:`.schema` for every field).

``Config()`` *is* the paper's setting (mirrored by ``configs/paper.yaml``); smaller profiles
(``configs/tiny.yaml``) override fields in YAML. Unknown keys are rejected by name.
"""

from zppo_core.config.loading import config_from_dict, dump_config, load_config, parse_overrides, replace
from zppo_core.config.schema import (
    METHOD_LABELS,
    METHODS,
    MethodSpec,
    AlgoConfig,
    Config,
    ConfigError,
    CurationConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    ParallelConfig,
    PipelineConfig,
    ClusterConfig,
    RolloutConfig,
    SUMMARY_COLUMNS,
    SYNTHETIC_WORLDS,
    SamplingConfig,
    ScheduleConfig,
    TrackingConfig,
    ZPPOConfig,
    flatten_dict,
    validate,
)

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "MethodSpec",
    "AlgoConfig",
    "Config",
    "ConfigError",
    "CurationConfig",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "OptimConfig",
    "ParallelConfig",
    "PipelineConfig",
    "ClusterConfig",
    "RolloutConfig",
    "SUMMARY_COLUMNS",
    "SYNTHETIC_WORLDS",
    "SamplingConfig",
    "ScheduleConfig",
    "TrackingConfig",
    "ZPPOConfig",
    "flatten_dict",
    "validate",
    "config_from_dict",
    "dump_config",
    "load_config",
    "parse_overrides",
    "replace",
]
