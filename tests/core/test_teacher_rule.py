"""One rule decides which methods call the teacher (MethodSpec.uses_teacher): the trainer's
backend, the training stage's server start-up and the preflight read it, so Hint, Prefix and
Off-Distill(†) get their teacher started and checked like BCQ and compressed NCQ."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.servers import needed_roles
from zppo_core.config import METHODS, load_config
from zppo_core.preflight import Probe, run_checks

ROOT = Path(__file__).resolve().parents[2]
#: the methods that ask the teacher to generate, with compression on (the paper's setting)
TEACHER_USERS = {"grpo_both", "grpo_replay_bcq", "grpo_replay_ncq", "zppo", "grpo_replay_hint",
                 "grpo_replay_prefix", "off_distill", "off_distill_replay"}


def _cfg(method: str, compression: bool = True):
    return load_config(ROOT / "configs" / "tiny.yaml", {
        "zppo.method": method, "zppo.compression": compression, "model.teacher_backend": "openai",
        "model.teacher_url": "http://127.0.0.1:9/v1", "zppo.judge_rewards": False, "model.judge_backend": "recorded"})


def test_the_rule_names_every_teacher_user():
    assert {m for m, spec in METHODS.items() if spec.uses_teacher(True)} == TEACHER_USERS
    # without compression NCQ lists the student's own answers: no teacher call
    assert {m for m, spec in METHODS.items() if spec.uses_teacher(False)} == TEACHER_USERS - {"grpo_replay_ncq"}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_servers_and_preflight_follow_the_rule(method, tmp_path):
    cfg = _cfg(method)
    uses = method in TEACHER_USERS
    assert cfg.zppo.needs_teacher_backend is uses
    assert ("teacher" in needed_roles(cfg)) is uses  # the training stage starts it when configured
    probe = Probe(gpu_count=lambda: 0, has_module=lambda name: True, served_models=lambda url, t: [cfg.model.teacher],
                  hub_lookup=lambda repo, kind, t: None)
    rep = run_checks(cfg, "train", output_dir=tmp_path, probe=probe)
    assert ("teacher" in [c.name for c in rep.checks]) is uses  # and the preflight checks it
    assert "teacher" not in needed_roles(cfg, "eval")
