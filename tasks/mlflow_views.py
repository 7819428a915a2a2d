"""The MLflow pages a researcher opens after a pipeline: its results as a runs table and as charts.

MLflow 3 keeps a *shared view* (the runs table's filter, sort and columns, the chart cards) as an
experiment tag ``mlflow.sharedViewState.<key>`` holding the view's JSON, and opens it from
``#/experiments/<id>/runs?viewStateShareKey=<key>`` (the UI's "Share" button writes the same tag). The
pipeline writes one view per pipeline run, keyed by the parent run's id, so the links it prints
open

* the **runs table** (:func:`runs_url`): one row per (student, method, seed) and per Base
  evaluation, not collapsed under the parent (a search filter lists them flat), with
  ``method``, ``student``, ``seed`` and the headline accuracies (the family averages) as the
  chosen columns (each benchmark's ``eval/acc/<benchmark>`` stays one click away under
  "Columns": MLflow sorts metric columns by name and puts them before the params, so 31
  benchmark columns would push the family averages and the params off the screen);
* the **charts** (:func:`compare_url`, ``compareRunsMode=CHART``): per family a scatter chart with
  the method on the x axis and the family's accuracy on the y axis, then the reward curves.

``workflowType=machine_learning`` opens the "Model training" side of MLflow 3.17's UI (it
otherwise opens on the GenAI traces overview, whatever the experiment's kind tag says).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlencode

from tasks.evaluate import family_key
from tasks.tracking import RUN_PARAMS

SHARED_VIEW_TAG = "mlflow.sharedViewState."
#: the UI side ("Model training") the printed links open
WORKFLOW_TYPE = "machine_learning"
#: learning curve charted beside the accuracies
REWARD_CURVE = "reward/plain_mean"
SECTION_ID = "zppo-results"


@dataclass(frozen=True)
class ResultsView:
    """One pipeline's results in the UI: which runs, which accuracy columns.

    ``families``: the names whose ``eval/family_avg/<family>`` metrics the result runs carry, in
    the order they were evaluated."""

    experiment_id: str
    pipeline_run_id: str
    families: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.pipeline_run_id

    @property
    def search_filter(self) -> str:
        """The training and Base runs of this pipeline (its direct children, curation aside)."""
        return f"tags.mlflow.parentRunId = '{self.pipeline_run_id}' AND tags.stage != 'curation'"

    def accuracy_keys(self) -> list[str]:
        """The headline accuracy columns: one family average per family."""
        return [family_key(f) for f in self.families]

    def state(self) -> dict[str, Any]:
        """The shared view's JSON: search facets and UI state as MLflow 3's runs page reads them."""
        columns = [column("params", p) for p in RUN_PARAMS] + [column("metrics", m) for m in self.accuracy_keys()]
        return {
            "searchFilter": self.search_filter,
            "orderByKey": column("params", "method"),
            "orderByAsc": True,
            "startTime": "ALL",
            "lifecycleFilter": "Active",
            "datasetsFilter": [],
            "modelVersionFilter": "All Runs",
            "selectedColumns": columns,
            "runsHiddenMode": "SHOW_ALL",
            "compareRunSections": [{"uuid": SECTION_ID, "name": "ZPPO results", "display": True,
                                    "isReordered": False}],
            "compareRunCharts": charts(self.families),
            "isAccordionReordered": True,
        }


def results_view(experiment_id: str, pipeline_run_id: str,
                 evals: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> ResultsView:
    """The view of a pipeline's results: ``evals[student][method][seed] = {benchmark: result}``
    as the flow collects them; families in the order they were evaluated, those no run scored
    (skipped everywhere) left out."""
    families: dict[str, None] = {}
    for by_method in evals.values():
        for by_seed in by_method.values():
            for results in by_seed.values():
                for r in results.values():
                    if isinstance(r, dict) and not r.get("skipped") and r.get("accuracy") is not None:
                        families[r["family"]] = None
    return ResultsView(experiment_id, pipeline_run_id, tuple(families))


def column(kind: str, key: str) -> str:
    """MLflow UI's canonical column / sort key: ``params.`method```, ``metrics.`eval/family_avg/Math```."""
    return f"{kind}.`{key}`"


def charts(families: Iterable[str]) -> list[dict[str, Any]]:
    """Chart cards: per family, method (x) against the family's accuracy (y); then the reward curve."""
    cards: list[dict[str, Any]] = []
    for fam in families:
        cards.append({"uuid": f"zppo-acc-{fam}", "type": "SCATTER", "metricSectionId": SECTION_ID,
                      "runsCountToCompare": 100, "deleted": False, "isGenerated": False,
                      "displayName": f"{fam} accuracy by method",
                      "xaxis": {"key": "method", "type": "PARAM"},
                      "yaxis": {"key": family_key(fam), "type": "METRIC"}})
    cards.append({"uuid": "zppo-reward", "type": "LINE", "metricSectionId": SECTION_ID, "runsCountToCompare": 100,
                  "deleted": False, "isGenerated": False, "metricKey": REWARD_CURVE,
                  "selectedMetricKeys": [REWARD_CURVE], "xAxisKey": "step", "scaleType": "linear",
                  "xAxisScaleType": "linear", "lineSmoothness": 0, "useGlobalXaxisKey": False,
                  "useGlobalLineSmoothing": False, "range": {}})
    return cards


def share_view(client: Any, view: ResultsView) -> None:
    """Write ``view`` as the experiment's shared view ``view.key`` (re-runs overwrite it)."""
    client.set_experiment_tag(view.experiment_id, SHARED_VIEW_TAG + view.key,
                              json.dumps(view.state(), separators=(",", ":")))


def _page(base: str, view: ResultsView, **extra: str) -> str:
    query = urlencode({"viewStateShareKey": view.key, "workflowType": WORKFLOW_TYPE, **extra})
    return f"{base}/#/experiments/{view.experiment_id}/runs?{query}"


def runs_url(base: str, view: ResultsView) -> str:
    """The runs table of ``view`` (one row per training / Base run, accuracy columns)."""
    return _page(base, view)


def compare_url(base: str, view: ResultsView) -> str:
    """The chart view of ``view``: method on one axis, accuracy on the other, per family."""
    return _page(base, view, compareRunsMode="CHART")


__all__ = ["ResultsView", "SHARED_VIEW_TAG", "charts", "column", "compare_url", "results_view",
           "runs_url", "share_view"]
