"""Fixtures of the trainer tests: a tiny from-config causal LM and a CPU Accelerator."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(2)


@pytest.fixture
def tiny_lm():
    """A 2-layer Qwen3 causal LM with a 64-token vocabulary, fp32, seeded weights."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen3Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    return Qwen3ForCausalLM(cfg).float()


@pytest.fixture(scope="session")
def dist():
    from accelerate import Accelerator

    from zppo_core.trainer.distributed import Dist

    return Dist(Accelerator(cpu=True))


@pytest.fixture
def micro_config():
    """Factory of test configs: ``micro_config(tmp_path, **dotted_overrides)``."""
    return _micro_config


def _micro_config(tmp_path, **over):
    """configs/tiny.yaml shrunk further for tests (2-3 s per step), data generated under tmp_path."""
    from pathlib import Path

    from zppo_core.config import load_config

    root = Path(__file__).resolve().parents[2]
    base = {
        "data.train_path": "",  # toy data, generated in each run folder
        "data.toy_size": 24,
        "rollout.group_size": 4,
        "rollout.teacher_group_size": 2,
        "rollout.student.max_new_tokens": 16,
        "rollout.teacher.max_new_tokens": 64,  # recorded teacher: costs nothing
        "zppo.rho_aug": 0.5,  # 2 BCQ/NCQ slots with 4 new questions
        "zppo.rho_replay": 0.5,
        "algo.iterations": 2,
        "schedule.rollout_batch": 4,
        "schedule.micro_batch": 8,
        "schedule.total_steps": 2,
        "schedule.checkpoint_every": 1,
        "optim.lr": 1.0e-3,
    }
    base.update(over)
    return load_config(root / "configs" / "tiny.yaml", base)
