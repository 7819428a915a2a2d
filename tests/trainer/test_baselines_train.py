"""The baseline rows run through ``zppo train`` on configs/tiny.yaml: 2 steps, every trainable
parameter moves (weight decay off, so only the loss can move them), every logged key is
documented; a distillation run resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zppo_core.config import METHODS
from zppo_core.metrics import TRAIN_METRICS, template_of
from zppo_core.models import resolve
from zppo_core.trainer import cli
from zppo_core.trainer.checkpoint import find_latest, read_state
from zppo_core.trainer.setup import RolloutIOFactory

ROOT = Path(__file__).resolve().parents[2]
BASELINES = [m for m, spec in METHODS.items() if spec.distill or spec.guidance]
HINT = "Line the numbers up and add them column by column."


def _weights(folder) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _argv(tmp_path: Path, method: str, *extra: str) -> list[str]:
    sets = {
        "data.train_path": "''", "data.toy_size": 24,  # '' = toy data, generated in the run folder
        "rollout.group_size": 4, "rollout.teacher_group_size": 2, "rollout.student.max_new_tokens": 16,
        "rollout.teacher.max_new_tokens": 64, "zppo.rho_aug": 0.5, "zppo.rho_replay": 0.5, "algo.iterations": 2,
        "schedule.rollout_batch": 4, "schedule.micro_batch": 8, "schedule.checkpoint_every": 1,
        "optim.lr": 1.0e-2, "optim.weight_decay": 0.0,
    }
    argv = ["--config", str(ROOT / "configs" / "tiny.yaml"), "--method", method, "--output", str(tmp_path / "run")]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    return argv + list(extra)


@pytest.fixture
def recorded_hints(monkeypatch):
    """The recorded teacher also answers the Fig. 19 hint request (by its id ``hint:<question id>``)."""
    build = RolloutIOFactory.build

    def with_hints(cfg, live, processor, model_dir, questions, load_image, *rank_world):
        io = build(cfg, live, processor, model_dir, questions, load_image, *rank_world)
        if io.teacher is not None:
            io.teacher.by_id.update({f"hint:{q['id']}": [HINT] for q in questions})
        return io

    monkeypatch.setattr(RolloutIOFactory, "build", staticmethod(with_hints))


@pytest.mark.parametrize(
    "method", [m if m == "on_distill" else pytest.param(m, marks=pytest.mark.slow) for m in BASELINES]
)
def test_baseline_row_trains_two_steps_and_moves_every_parameter(method, tmp_path, recorded_hints):
    assert cli.main(_argv(tmp_path, method, "--max-steps", "2")) == 0
    rows = [json.loads(x) for x in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [1, 2]
    # every documented key (templates such as buffer/admissions/<bin> instantiated) and nothing else
    assert all({template_of(k) for k in r} == set(TRAIN_METRICS) for r in rows), \
        {template_of(k) for k in rows[0]} ^ set(TRAIN_METRICS)
    spec = METHODS[method]
    assert all(r["zppo/bcq_count"] == r["zppo/ncq_count"] == 0 for r in rows)
    assert (rows[1]["rollout/replay_questions"] > 0) == spec.replay
    if spec.distill:
        assert all(r["train/updates"] == 1 and r["distill/jsd"] > 0 for r in rows)
        assert all(r["distill/tokens"] == r["train/response_tokens"] > 0 for r in rows)
        if spec.distill == "on":  # the student's own plain rollouts are the batch
            assert all(r["distill/tokens"] <= r["rollout/sequences"] * 16 and r["zppo/teacher_rollouts"] == 0
                       for r in rows)
        else:  # G_T teacher rollouts on every prompt (new + replayed)
            assert all(r["zppo/teacher_rollouts"] == 2 * (4 + r["rollout/replay_questions"]) for r in rows)
            assert all(r["distill/teacher_correct_frac"] == r["zppo/teacher_pass_rate"] > 0 for r in rows)
    else:
        assert all(r["distill/tokens"] == 0 and r["train/updates"] == 2 for r in rows)
        kind = spec.guidance
        groups = sum(r[f"{kind}/groups"] for r in rows)
        assert groups > 0
        for r in rows:  # plain groups + the extra groups
            assert r["rollout/groups"] == 4 + r["rollout/replay_questions"] + r[f"{kind}/groups"]
        if kind == "prefix":
            assert all(r["prefix/prefix_tokens_mean"] > 0 for r in rows if r["prefix/groups"])
    before = _weights(resolve("builtin:tiny-qwen3"))
    after = _weights(tmp_path / "run" / "final_model")
    assert before.keys() == after.keys()
    assert [k for k in before if torch.equal(before[k], after[k])] == []


@pytest.mark.slow
def test_distillation_resume_matches_uninterrupted_run(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    full.mkdir(), cut.mkdir()
    method = "off_distill_replay"
    assert cli.main(_argv(full, method, "--set", "schedule.total_steps=3")) == 0
    assert cli.main(_argv(cut, method, "--set", "schedule.total_steps=3", "--max-steps", "2")) == 0
    assert read_state(find_latest(cut / "run"))["step"] == 2
    assert cli.main(_argv(cut, method, "--set", "schedule.total_steps=3")) == 0  # resumes at step 3
    a, b = _weights(full / "run" / "final_model"), _weights(cut / "run" / "final_model")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = read_state(find_latest(full / "run")), read_state(find_latest(cut / "run"))
    assert sa["buffer"] == sb["buffer"] and sa["cursor"] == sb["cursor"] and sa["method"] == method
    rows_a = [json.loads(x) for x in open(full / "run" / "metrics.jsonl")]
    rows_b = [json.loads(x) for x in open(cut / "run" / "metrics.jsonl")]
    assert [r["step"] for r in rows_b] == [1, 2, 3]
    assert rows_a[2]["distill/jsd"] == rows_b[2]["distill/jsd"] > 0
