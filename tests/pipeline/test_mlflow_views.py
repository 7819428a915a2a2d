"""The MLflow views a pipeline shares: the runs table's filter and columns, the chart cards, the
links, and the filter against a real (sqlite) MLflow store."""

from __future__ import annotations

import json

from tasks.mlflow_views import (SHARED_VIEW_TAG, ResultsView, charts, column, compare_url, results_view, runs_url,
                                share_view)


def _r(fam, acc, skipped=False):
    return {"family": fam, "accuracy": None if skipped else acc, "skipped": skipped}


EVALS = {"s": {"base": {"-": {"MathVista": _r("Math", 50.0), "AI2D": _r("General", 60.0),
                              "OCRBench": _r("Doc", 0.0, skipped=True)}},
               "zppo": {"0": {"MathVista": _r("Math", 55.0), "AI2D": _r("General", 61.0)}}}}


def test_results_view_keeps_the_evaluated_order_and_leaves_out_families_no_run_scored():
    v = results_view("7", "p1", EVALS)
    assert v == ResultsView("7", "p1", ("Math", "General"))  # Doc: only a skipped benchmark
    assert v.accuracy_keys() == ["eval/family_avg/Math", "eval/family_avg/General"]


def test_state_lists_the_lane_runs_flat_with_method_student_seed_then_accuracies():
    s = ResultsView("7", "p1", ("Math", "Doc")).state()
    assert s["searchFilter"] == "tags.mlflow.parentRunId = 'p1' AND tags.stage != 'curation'"
    assert s["selectedColumns"] == ["params.`method`", "params.`student`", "params.`seed`",
                                    "metrics.`eval/family_avg/Math`", "metrics.`eval/family_avg/Doc`"]
    assert (s["orderByKey"], s["orderByAsc"], s["runsHiddenMode"]) == ("params.`method`", True, "SHOW_ALL")
    assert column("metrics", "eval/acc/AI2D") == "metrics.`eval/acc/AI2D`"


def test_charts_put_method_on_x_and_each_family_accuracy_on_y_then_the_reward_curve():
    cards = charts(["Math", "Doc"])
    assert [c["type"] for c in cards] == ["SCATTER", "SCATTER", "LINE"]
    assert [(c["xaxis"], c["yaxis"]) for c in cards[:2]] == [
        ({"key": "method", "type": "PARAM"}, {"key": "eval/family_avg/Math", "type": "METRIC"}),
        ({"key": "method", "type": "PARAM"}, {"key": "eval/family_avg/Doc", "type": "METRIC"})]
    assert cards[2]["metricKey"] == "reward/plain_mean" and cards[2]["xAxisKey"] == "step"
    assert len({c["uuid"] for c in cards}) == 3


def test_links_are_encoded_and_open_the_shared_view_on_the_model_training_side():
    v = ResultsView("7", "p1", ())
    assert runs_url("http://h:5001", v) == \
        "http://h:5001/#/experiments/7/runs?viewStateShareKey=p1&workflowType=machine_learning"
    assert compare_url("http://h:5001", v) == \
        "http://h:5001/#/experiments/7/runs?viewStateShareKey=p1&workflowType=machine_learning&compareRunsMode=CHART"


def test_shared_view_on_a_real_store_selects_exactly_the_lane_runs(tmp_path):
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = c.create_experiment("zppo", artifact_location=str(tmp_path / "artifacts"))
    parent = c.create_run(exp, run_name="pipeline").info.run_id
    kids = {stage: c.create_run(exp, tags={"mlflow.parentRunId": parent, "stage": stage}).info.run_id
            for stage in ("curation", "train", "eval")}
    other = c.create_run(exp, run_name="other pipeline").info.run_id
    c.create_run(exp, tags={"mlflow.parentRunId": other, "stage": "train"})
    v = ResultsView(exp, parent, ("Math",))
    share_view(c, v)
    found = {r.info.run_id for r in c.search_runs([exp], filter_string=v.search_filter)}
    assert found == {kids["train"], kids["eval"]}
    tag = c.get_experiment(exp).tags[SHARED_VIEW_TAG + parent]
    assert json.loads(tag) == v.state() and len(tag) <= 20000  # MLflow's tag value limit
    share_view(c, ResultsView(exp, parent, ("Doc",)))  # a re-run overwrites its view
    assert json.loads(c.get_experiment(exp).tags[SHARED_VIEW_TAG + parent])["compareRunCharts"][0]["yaxis"]["key"] \
        == "eval/family_avg/Doc"
