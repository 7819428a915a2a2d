"""Resume after a failure: the training stage is killed on purpose after step 1 of 2
(``ZPPO_FAULT_TRAIN_AFTER_STEP``); the re-run reports curation ``Cached``, the trainer resumes from
its checkpoint and continues the same MLflow run, and the results equal an uninterrupted run. The
run folder's path holds both quote characters (MLflow lookups, commands, YAML all see it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_helpers import base_env, run_pipeline
from safetensors.torch import load_file

pytestmark = [pytest.mark.slow]

#: one method, no base row, one small benchmark: the point here is the training stage
#: greedy evaluation: sampled evaluation (T=0.6) is not reproducible run to run, and the point is
#: that identical weights give identical results
RESUME = {"pipeline.methods": ["zppo"], "pipeline.evaluate_base": False, "eval.benchmarks": ["OfflineLLM"],
          "eval.max_items": 2, "eval.sampling.temperature": 0.0}
KEY = "builtin_tiny-qwen3.5-vl/zppo/seed0"


def _rows_by_step(path: Path) -> dict[int, dict]:
    rows = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[int(row["step"])] = {k: v for k, v in row.items() if not k.startswith("perf/")}
    return rows


def _weights(folder: str) -> dict:
    out = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_failed_training_resumes_and_matches_an_uninterrupted_run(tmp_path, prefect_server):
    env = {**base_env(tmp_path), "PREFECT_API_URL": prefect_server}
    env.pop("PREFECT_HOME")  # `zppo pipeline` puts Prefect's home inside the run folder
    out = tmp_path / "it's \"resumed\""  # quotes in the run folder's path work end to end
    failed = run_pipeline(out, {**env, "ZPPO_FAULT_TRAIN_AFTER_STEP": "1"}, overrides=RESUME)
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    # printed once (not by every engine level), the traceback kept in the run folder
    assert said.count("trainer killed after step") == 1, said[-3000:]
    assert "Traceback (most recent call last)" not in said and "InjectedFault" in (out / "pipeline_error.txt").read_text()
    steps_before = _rows_by_step(out / "train" / KEY / "metrics.jsonl")
    assert 1 in steps_before  # killed after step 1 had been logged and checkpointed

    again = run_pipeline(out, env, overrides=RESUME)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-4000:]
    curate_lines = [ln for ln in log.splitlines() if "Task run 'curate" in ln and "Finished in state" in ln]
    assert curate_lines and all("Cached" in ln for ln in curate_lines), curate_lines
    res = json.loads((out / "report" / "pipeline_result.json").read_text())
    tr = res["trainings"][KEY]
    assert tr["resumed_from_step"] >= 1 and tr["steps"] == 2

    # one MLflow run for the stage, continued: every step logged exactly once
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=res["tracking_uri"])
    exp = c.get_experiment_by_name(res["experiment"])
    trains = [r for r in c.search_runs([exp.experiment_id]) if r.data.tags.get("stage") == "train"]
    assert [r.info.run_id for r in trains] == [tr["run_id"]]
    hist = c.get_metric_history(tr["run_id"], "reward/plain_mean")
    assert sorted(m.step for m in hist) == [1, 2]

    ref_out = tmp_path / "uninterrupted"
    ref = run_pipeline(ref_out, env, overrides=RESUME)
    assert ref.returncode == 0, (ref.stdout + ref.stderr)[-4000:]
    ref_res = json.loads((ref_out / "report" / "pipeline_result.json").read_text())
    assert _rows_by_step(out / "train" / KEY / "metrics.jsonl") == _rows_by_step(ref_out / "train" / KEY / "metrics.jsonl")
    a, b = _weights(tr["final_model"]), _weights(ref_res["trainings"][KEY]["final_model"])
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    acc = {s: r["evals"]["builtin:tiny-qwen3.5-vl"]["zppo"]["0"]["OfflineLLM"]["accuracy"] for s, r in
           (("resumed", res), ("uninterrupted", ref_res))}
    assert acc["resumed"] == acc["uninterrupted"]
