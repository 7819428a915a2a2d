"""Layout choice, fp32 master weights and the config knobs that must mean what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zppo_core.config import ConfigError, OptimConfig, load_config
from zppo_core.trainer.build import build_optimizer, load_student
from zppo_core.trainer.parallel import resolve_strategy

ROOT = Path(__file__).resolve().parents[2]


def test_resolve_strategy():
    assert resolve_strategy("auto", 1, launched_with_fsdp=True) == "single"
    assert resolve_strategy("auto", 2, launched_with_fsdp=True) == "fsdp2"
    assert resolve_strategy("auto", 2, launched_with_fsdp=False) == "ddp"
    assert resolve_strategy("ddp", 1, launched_with_fsdp=False) == "single"
    assert resolve_strategy("fsdp2", 2, launched_with_fsdp=False) == "fsdp2"
    with pytest.raises(RuntimeError, match="'single' with 2 processes"):
        resolve_strategy("single", 2, launched_with_fsdp=False)


@pytest.mark.parametrize("key,value,msg", [
    ("algo.kl_coef", 0.01, "algo.kl_coef: 0.01 is not supported"),
    ("parallel.strategy", "zero3", "parallel.strategy: 'zero3'"),
    ("parallel.logprob_chunk", -1, "parallel.logprob_chunk"),
    ("model.dtype", "float64", "model.dtype: 'float64'"),
])
def test_invalid_knobs_are_rejected_by_name(key, value, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(ROOT / "configs" / "tiny.yaml", {key: value})


def test_revision_pins_are_gone():
    with pytest.raises(ConfigError, match="student_revision"):
        load_config(ROOT / "configs" / "tiny.yaml", {"model.student_revision": "abc"})


def test_bf16_config_still_trains_fp32_master_weights(tmp_path):
    """model.dtype bfloat16 is the compute dtype; the loaded student and the optimizer are fp32."""
    from zppo_core.models import resolve

    cfg = load_config(ROOT / "configs" / "tiny.yaml", {"model.dtype": "bfloat16"})
    model, _ = load_student(resolve(cfg.model.student), cfg)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    opt = build_optimizer(model, cfg.optim)
    assert opt.param_groups[0]["params"][0].dtype == torch.float32
    with pytest.raises(ValueError, match=r"torch.bfloat16.*master weights must be float32"):
        build_optimizer(model.to(torch.bfloat16), OptimConfig())
