"""``zppo report RUN...`` on a fixture of MLflow runs (local sqlite store, no server)."""

from __future__ import annotations

import json

import pytest

from eval.paper_results import PAPER_RESULTS
from tasks.evaluate import acc_key, family_key
from tasks.tracking import Tracker
from flows.zppo_cli import main

STUDENT = "Qwen/Qwen3.5-2B"


@pytest.fixture()
def store(tmp_path):
    """A pipeline run with children: base, zppo x 2 seeds, grpo_replay, and a curation run."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    t = Tracker(uri, "exp", (tmp_path / "art").as_uri())
    parent = t.open_run("p", "pipeline", {"stage": "pipeline"})
    cur = t.open_run("c", "curation", {"stage": "curation"}, parent)
    t.log_metrics(cur, {"curation/rows": 10})

    def child(key, method, seed, accs):
        rid = t.open_run(key, f"{STUDENT} / {method}", {"student": STUDENT, "method": method, "seed": seed,
                                                         "stage": "train"}, parent)
        t.log_metrics(rid, {acc_key(a): v for a, v in accs.items()} | {family_key("VLM"): 1.0})  # what the eval stage logs
        return rid

    ids = {
        "base": child("b", "base", "", {"AI2D": 60.0, "MVerse": 40.0, "MMLU": 50.0}),
        "zppo0": child("z0", "zppo", "0", {"AI2D": 70.0, "MVerse": 44.0, "MMLU": 54.0}),
        "zppo1": child("z1", "zppo", "1", {"AI2D": 72.0, "MVerse": 46.0, "MMLU": 56.0}),
        "grpo": child("g", "grpo_replay", "0", {"AI2D": 65.0, "MVerse": 45.0, "MMLU": 52.0}),
    }
    return uri, t, parent, ids


def test_report_cli_from_a_pipeline_run(store, tmp_path, capsys):
    uri, t, parent, _ = store
    out = tmp_path / "rep"
    rc = main(["report", parent, "--tracking-uri", uri, "--out", str(out), "--resamples", "1000",
               "--pair", "zppo:grpo_replay"])
    assert rc == 0
    md = (out / "paper_report.md").read_text()
    assert f"{STUDENT}: VLM (Tab. 1)" in md and f"{STUDENT}: LLM + Video (Tab. 2)" in md
    # zppo: two seeds averaged (71, 45, 55); the paper's 2B numbers beside
    p = PAPER_RESULTS["2B"]["zppo"]
    assert f"| +ZPPO ×2 seeds | 71.0 ({p['AI2D']:.1f}) |" in md
    boot = json.loads((out / "bootstrap.json").read_text())
    assert {r["method"] for r in boot["runs"]} == {"base", "zppo", "grpo_replay"}  # curation run skipped
    vlm = next(r for r in boot["bootstrap"] if r["family"] == "VLM")
    # VLM diffs zppo - grpo_replay: AI2D 71-65 = 6, MVerse 45-45 = 0 -> delta 3, 1 win, 1 tie
    assert (vlm["a"], vlm["b"], vlm["ours"]["delta"], vlm["ours"]["wins"], vlm["ours"]["ties"]) == (
        "zppo", "grpo_replay", 3.0, 1, 1)
    assert vlm["ours"]["low"] == 0.0 and vlm["ours"]["high"] == 6.0  # each extreme has p = 1/4
    assert vlm["paper"]["n"] == 16
    assert "<table>" in (out / "paper_report.html").read_text()
    # logged: a report run nested under the pipeline run with the three files
    runs = t.client.search_runs([t.experiment_id], filter_string="tags.stage = 'report'")
    assert len(runs) == 1 and runs[0].data.tags["mlflow.parentRunId"] == parent
    names = sorted(a.path for a in t.client.list_artifacts(runs[0].info.run_id, "report"))
    assert names == ["report/bootstrap.json", "report/paper_report.html", "report/paper_report.md"]


def test_report_cli_on_named_runs_and_bad_input(store, tmp_path, capsys):
    uri, _, _, ids = store
    rc = main(["report", ids["base"], ids["zppo0"], "--tracking-uri", uri, "--out", str(tmp_path / "r2"),
               "--resamples", "200", "--no-log"])
    assert rc == 0
    md = (tmp_path / "r2" / "paper_report.md").read_text()
    assert "| +ZPPO | 70.0 (" in md and "+ZPPO − Base" in md  # default pair: ZPPO vs every other method
    assert main(["report", ids["base"], "--tracking-uri", uri, "--pair", "zppo", "--no-log",
                 "--out", str(tmp_path / "r3")]) == 2
    assert "expected METHOD_A:METHOD_B" in capsys.readouterr().err
