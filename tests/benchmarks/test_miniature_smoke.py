"""Smoke run of the miniature benchmark: gate, Base + GRPO + ZPPO x 1 seed x 2 steps through the
real trainer CLI and evaluator, tables and the MLflow store (the shipped warm-start weights); every
result stamped with what made it, and a re-run reuses only results of the current stamp."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_miniature_smoke(tmp_path, monkeypatch, model_cache, capsys):
    monkeypatch.setenv("ZPPO_CACHE", model_cache)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import miniature

    out = tmp_path / "mini"
    argv = ["--smoke", "--out", str(out), "--jobs", "1", "--set", "schedule.rollout_batch=4",
            "--set", "rollout.group_size=4", "--set", "rollout.teacher_group_size=2", "--set", "schedule.micro_batch=16"]
    rc = miniature.main(argv)
    assert rc == 0
    gate = json.loads((out / "gate.json").read_text())
    assert gate["n_items"] == 4 and 0.0 <= gate["plain_all"] <= 1.0 and isinstance(gate["passed"], bool)
    res = json.loads((out / "results.json").read_text())
    assert set(res["accuracy"]) == {"base", "grpo", "zppo"}
    for method, row in res["accuracy"].items():
        assert set(row) == {"MiniAdd", "MiniMul", "MiniSub"}, method
        assert all(cell["n"] == 6 and 0.0 <= cell["mean"] <= 1.0 for cell in row.values())
    for method in ("grpo", "zppo"):
        run = json.loads((out / method / "seed0" / "result.json").read_text())
        assert [s["step"] for s in run["steps"]] == [1, 2]
        assert "reward/bcq_mean" in run["steps"][0] and "buffer/size" in run["steps"][0]
    assert "+ZPPO" in (out / "table.md").read_text()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("miniature")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 4  # the comparison + base, grpo, zppo
    child = [r for r in runs if r.data.tags.get("method") == "zppo"][0]
    assert len(client.get_metric_history(child.info.run_id, "reward/plain_mean")) == 2

    # every result carries the stamp of the models, code and protocol that made it
    base = out / "base" / "seed0" / "result.json"
    stamp = json.loads(base.read_text())["stamp"]
    assert stamp == gate["stamp"] == res["meta"]["stamp"] == json.loads(
        (out / "zppo" / "seed0" / "result.json").read_text())["stamp"]
    assert {"student", "teacher", "code", "config", "steps", "eval_size", "set"} <= set(stamp)
    assert gate["seed"] == miniature.GATE_SEED  # not seed 0, whose items chose the student
    # a re-run reuses finished jobs of the current stamp and runs a stale one again
    stale = json.loads(base.read_text())
    stale["stamp"]["student"] = "an older student"
    base.write_text(json.dumps(stale))
    zppo_log = (out / "zppo" / "seed0" / "job.log").stat().st_mtime_ns
    capsys.readouterr()
    assert miniature.main([*argv, "--skip-gate"]) == 0
    said = capsys.readouterr().out
    assert "base/seed0: stale result (student changed), running it again" in said
    assert json.loads(base.read_text())["stamp"] == stamp
    assert (out / "zppo" / "seed0" / "job.log").stat().st_mtime_ns == zppo_log  # reused, not re-run
