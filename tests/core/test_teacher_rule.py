"""One rule decides which methods call the teacher (``Config.uses_teacher`` over
``MethodSpec.uses_teacher``) and one which stages call the judge (``Config.uses_judge``): the
trainer's backends, the stages' server start-up and the preflight read them, so Hint, Prefix and
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
    assert cfg.uses_teacher() is uses
    assert ("teacher" in needed_roles(cfg)) is uses  # the training stage starts it when configured
    probe = Probe(gpu_count=lambda: 0, has_module=lambda name: True, served_models=lambda url, t: [cfg.model.teacher],
                  hub_lookup=lambda repo, kind, t: None)
    rep = run_checks(cfg, "train", output_dir=tmp_path, probe=probe)
    assert ("teacher" in [c.name for c in rep.checks]) is uses  # and the preflight checks it
    assert "teacher" not in needed_roles(cfg, "eval")


@pytest.mark.parametrize("judge_rewards, use_judge", [(True, True), (True, False), (False, True), (False, False)])
def test_servers_and_preflight_follow_the_judge_rule(judge_rewards, use_judge, tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", {
        "zppo.method": "grpo", "zppo.judge_rewards": judge_rewards, "eval.use_judge": use_judge,
        "model.judge_backend": "openai", "model.judge_url": "http://127.0.0.1:9/v1"})
    assert (cfg.uses_judge("train"), cfg.uses_judge("eval")) == (judge_rewards, use_judge)
    assert ("judge" in needed_roles(cfg, "train"), "judge" in needed_roles(cfg, "eval")) == (judge_rewards, use_judge)
    probe = Probe(gpu_count=lambda: 0, has_module=lambda name: True, served_models=lambda url, t: [cfg.model.judge],
                  hub_lookup=lambda repo, kind, t: None)
    for scope, expected in (("train", judge_rewards), ("eval", use_judge), ("pipeline", judge_rewards or use_judge)):
        names = [c.name for c in run_checks(cfg, scope, output_dir=tmp_path, probe=probe).checks]
        assert ("judge" in names) is expected, scope
