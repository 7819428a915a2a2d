"""Bad config values: one-line errors naming the setting; numbers parsed as YAML 1.2 reads them;
a non-finite loss or gradient stops the run before it reaches the weights."""

from __future__ import annotations

import pytest

from zppo_core.config import Config, ConfigError, parse_overrides, replace
from zppo_core.trainer.engine import NonFiniteError, check_finite


@pytest.mark.parametrize("key, value, message", [
    ("optim.lr", ".inf", "optim.lr: must be a finite number, got inf"),
    ("optim.lr", "-1e-6", "optim.lr: must be > 0, got -1e-06"),
    ("optim.lr", "0", "optim.lr: must be > 0, got 0.0"),
    ("schedule.total_steps", "0", "schedule.total_steps: must be >= 1, got 0"),
    ("rollout.group_size", "-4", "rollout.group_size: must be >= 1, got -4"),
    ("zppo.tau", "1.5", "zppo.tau: must be >= 0 and <= 1, got 1.5"),
    ("rollout.student.top_p", "0", "rollout.student.top_p: must be > 0 and <= 1, got 0.0"),
    ("optim.warmup_ratio", "1", "optim.warmup_ratio: must be < 1, got 1.0"),
    ("model.server_retries", "-1", "model.server_retries: must be >= 0, got -1"),
    ("algo.clip_low", ".nan", "algo.clip_low: must be a finite number, got nan"),
])
def test_out_of_range_values_are_refused_in_one_line(key, value, message):
    with pytest.raises(ConfigError) as e:
        replace(Config(), **parse_overrides([f"{key}={value}"]))
    assert str(e.value) == message


def test_numbers_are_parsed_as_yaml_1_2():
    cfg = replace(Config(), **parse_overrides(["optim.lr=2e-4", "optim.eps=1E-8", "schedule.total_steps=1e3",
                                               "zppo.tau=.5"]))
    assert (cfg.optim.lr, cfg.optim.eps, cfg.schedule.total_steps, cfg.zppo.tau) == (0.0002, 1e-08, 1000, 0.5)
    with pytest.raises(ConfigError, match="schedule.total_steps: expected int, got 0.5"):
        replace(Config(), **parse_overrides(["schedule.total_steps=5e-1"]))


def test_check_finite():
    check_finite(0.5, 2.0)
    for loss, norm in ((float("nan"), 1.0), (0.1, float("inf"))):
        with pytest.raises(NonFiniteError, match="non-finite training signal"):
            check_finite(loss, norm)


@pytest.mark.slow
def test_a_diverging_run_stops_before_its_first_checkpoint(tmp_path, micro_config):
    from zppo_core.trainer import train
    from zppo_core.trainer.checkpoint import list_checkpoints

    cfg = micro_config(tmp_path, **{"schedule.total_steps": 2, "zppo.method": "grpo", "optim.lr": 1e30,
                                    "optim.grad_clip": 1e30})
    with pytest.raises(NonFiniteError):
        train(cfg, tmp_path / "run")
    assert list_checkpoints(tmp_path / "run") == []
