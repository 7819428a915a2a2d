"""``zppo train`` dispatches to the trainer CLI; bad overrides are rejected by name."""

from __future__ import annotations

import json
from pathlib import Path

from flows.zppo_cli import main

TINY = str(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml")


def test_zppo_train_runs_one_step(tmp_path, capsys):
    rc = main([
        "train", "--config", TINY, "--method", "grpo", "--max-steps", "1",
        "--output", str(tmp_path / "run"), "--run-id", "abc",
        "--set", "data.toy_size=8", "--set", "schedule.rollout_batch=2",
        "--set", "rollout.student.max_new_tokens=8", "--set", "algo.iterations=1",
    ])
    assert rc == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["steps"] == 1 and summary["run_id"] == "abc"
    assert "train grpo: 1/1 steps (100%)" in out and "reward/plain_mean=" in out
    rows = [json.loads(x) for x in open(summary["metrics_path"])]
    assert rows[0]["step"] == 1 and rows[0]["zppo/bcq_count"] == 0
    # sample completions for reading (tracking.samples_per_kind = 2): the first two plain rollouts
    samples = [json.loads(x) for x in open(tmp_path / "run" / "samples.jsonl")]
    assert [(r["step"], r["kind"]) for r in samples] == [(1, "plain"), (1, "plain")]
    assert samples[0]["prompt"].startswith("<|im_start|>user\n") and samples[0]["reward"] in (0.0, 1.0)


def test_unknown_override_is_a_config_error(tmp_path, capsys):
    rc = main(["train", "--config", TINY, "--set", "algo.itterations=2", "--output", str(tmp_path)])
    assert rc == 2
    assert "algo.itterations" in capsys.readouterr().err
