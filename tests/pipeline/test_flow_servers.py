"""The ``zppo-full`` flow on the (shrunken) tiny profile against a real Prefect server and a real
MLflow tracking server, both started on 127.0.0.1 by the fixtures; then the MLflow UI's runs
table and chart view the pipeline links to, in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from urllib.parse import quote

import httpx
import pytest

from pipeline_helpers import REPO, base_env, prefect_task_runs, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.server]

ARTIFACTS = REPO / "runs" / "test-artifacts"
METHODS = ("grpo", "zppo")


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, prefect_server, mlflow_server):
    tmp = tmp_path_factory.mktemp("flow")
    env = {**base_env(tmp), "PREFECT_API_URL": prefect_server}
    out = tmp / "run"
    proc = run_pipeline(out, env, "--methods", ",".join(METHODS),
                        overrides={"tracking.tracking_uri": mlflow_server, "tracking.experiment": "zppo-test"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads((out / "report" / "pipeline_result.json").read_text())
    return {"out": out, "stdout": proc.stdout, "stderr": proc.stderr, "result": result}


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_cli_prints_table_and_ui_command(pipeline_run, mlflow_server):
    text = pipeline_run["stdout"]
    assert "ZPPO pipeline finished" in text
    for label in ("Base", "+GRPO", "+ZPPO", "(n=4)", "Δ LLM"):
        assert label in text
    assert "MLflow UI:" in text
    exp = _client(mlflow_server).get_experiment_by_name("zppo-test").experiment_id
    view = (f"{mlflow_server}/#/experiments/{exp}/runs?viewStateShareKey={pipeline_run['result']['parent_run_id']}"
            "&workflowType=machine_learning")
    assert f"Runs in MLflow (method, student, seed, accuracies): {view}\n" in text
    assert f"Compare runs in MLflow (accuracy by method, rewards): {view}&compareRunsMode=CHART\n" in text
    assert f"Report (tables beside the paper's numbers, plots): {pipeline_run['out'] / 'report'}" in text
    assert text.count("ZPPO pipeline finished") == 1
    header = [ln for ln in (text + pipeline_run.get("stderr", "")).splitlines() if ln.startswith("method  seeds")]
    assert len(header) == 1, header  # the table once (not also in the flow's log)
    console = (pipeline_run["out"] / "console.log").read_text()
    assert "ZPPO pipeline finished" in console and "Task run 'curate" in console  # the console, kept


def test_summary_file_and_the_parent_runs_description(pipeline_run, mlflow_server):
    report = pipeline_run["out"] / "report"
    md = (report / "summary.md").read_text()
    assert "### Per family" in md and "### Per benchmark" in md and "| +ZPPO |" in md and "Δ LLM" in md
    data = json.loads((report / "summary.json").read_text())
    zppo = data["builtin:tiny-qwen3.5-vl"]["family"]["zppo"]["LLM"]
    assert zppo["delta"] is not None and zppo["n"] == 4
    parent = _client(mlflow_server).get_run(pipeline_run["result"]["parent_run_id"])
    assert parent.data.tags["mlflow.note.content"] == md[:5000]  # the run page's description
    assert parent.data.metrics["summary/builtin_tiny-qwen3.5-vl/zppo/LLM"] == zppo["mean"]
    assert _client(mlflow_server).get_experiment_by_name("zppo-test").tags["mlflow.experimentKind"] == \
        "custom_model_development"


def test_prefect_server_has_the_completed_flow_run(pipeline_run, prefect_server):
    fr = pipeline_run["result"]["flow_run_id"]
    r = httpx.get(f"{prefect_server}/flow_runs/{fr}", timeout=30).json()
    assert r["state"]["type"] == "COMPLETED"
    names = {t["name"] for t in prefect_task_runs(prefect_server, fr)}
    student = "tiny-qwen3.5-vl"
    assert {"preflight", "curate", "report", f"train[{student}/grpo/s0]", f"train[{student}/zppo/s0]"} <= names
    # the nested evaluation flows (one per model) are named by what they evaluate
    flows = httpx.post(f"{prefect_server}/flow_runs/filter", json={"limit": 200}, timeout=30).json()
    assert {f"evaluate[{student}/base]", f"evaluate[{student}/zppo/s0]"} <= {f["name"] for f in flows}


def test_mlflow_parent_nested_runs_metrics_and_artifacts(pipeline_run, mlflow_server):
    res = pipeline_run["result"]
    c = _client(mlflow_server)
    exp = c.get_experiment_by_name("zppo-test")
    runs = c.search_runs([exp.experiment_id], max_results=200)
    by_id = {r.info.run_id: r for r in runs}
    parent = by_id[res["parent_run_id"]]
    assert parent.info.status == "FINISHED" and parent.data.tags["stage"] == "pipeline"
    assert parent.data.params["zppo.tau"] == "0.5" and parent.data.params["schedule.total_steps"] == "2"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    stages = sorted(r.data.tags["stage"] for r in children)
    assert stages == ["curation", "eval", "train", "train"]  # curation, base, grpo, zppo
    for r in children:  # consistent tag set on every nested run
        for tag in ("teacher", "git_sha", "config_hash"):
            assert r.data.tags[tag] == parent.data.tags[tag]
    assert sorted(r.info.run_name for r in children) == [
        "base · tiny-qwen3.5-vl", "curation", "grpo · tiny-qwen3.5-vl · s0", "zppo · tiny-qwen3.5-vl · s0"]
    for method in METHODS:
        run = next(r for r in children if r.data.tags.get("method") == method)
        assert run.data.tags["student"] == "builtin:tiny-qwen3.5-vl" and run.data.tags["seed"] == "0"
        assert (run.data.params["method"], run.data.params["student"], run.data.params["seed"]) == (
            method, "builtin:tiny-qwen3.5-vl", "0")
        hist = c.get_metric_history(run.info.run_id, "reward/plain_mean")
        assert [m.step for m in hist] == [1, 2]
        for bench in ("OfflineLLM", "OfflineVLM"):
            assert 0.0 <= run.data.metrics[f"eval/acc/{bench}"] <= 100.0
        assert "eval/family_avg/LLM" in run.data.metrics
        arts = {a.path for d in ("config", "metrics", "plots", "samples") for a in c.list_artifacts(run.info.run_id, d)}
        assert {"config/config.yaml", "metrics/metrics.jsonl", "plots/reward_curves.png",
                "samples/completions.json"} <= arts
        with open(c.download_artifacts(run.info.run_id, "samples/completions.json")) as f:
            samples = json.load(f)
        assert samples["columns"][:5] == ["step", "kind", "reward", "gold", "response"]  # readable order
        assert all(row[3] for row in samples["data"])  # every sample shows its gold answer
        evals = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
        assert sorted(r.data.tags["benchmark"] for r in evals) == ["OfflineLLM", "OfflineVLM"]
        assert sorted(r.info.run_name for r in evals) == [f"{b} · {method} · tiny-qwen3.5-vl · s0"
                                                          for b in ("OfflineLLM", "OfflineVLM")]
        arts = sorted(a.path for a in c.list_artifacts(evals[0].info.run_id, "records"))
        assert arts[0].endswith("_items.json") and arts[1].endswith(".parquet")
    curation = next(r for r in children if r.data.tags["stage"] == "curation")
    assert [a.path for a in c.list_artifacts(curation.info.run_id, "curation")]
    report = {a.path for a in c.list_artifacts(parent.info.run_id, "report")}
    for name in ("reward_curves.png", "replay_buffer.png", "results.json",
                 "accuracy_by_family_builtin_tiny-qwen3.5-vl.png", "table_builtin_tiny-qwen3.5-vl.md",
                 "paper_report.md", "paper_report.html", "bootstrap.json"):
        assert f"report/{name}" in report
    for method in METHODS:  # dashboards (PNG + offline HTML) on every training run
        run = next(r for r in children if r.data.tags.get("method") == method)
        dash = {a.path for a in c.list_artifacts(run.info.run_id, "dashboards")}
        assert {"dashboards/index.html", "dashboards/fig4_entry_accuracy.png"} <= dash
    assert "config/resolved_config.yaml" in {a.path for a in c.list_artifacts(parent.info.run_id, "config")}


def _chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        subprocess.run(["bash", str(REPO / "tests" / "pipeline" / "install_chromium.sh")], check=False)
        chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed and `apt-get install chromium` was not possible here")
    return chromium


def _render(chromium: str, url: str, shot, loaded: str | None = None) -> str:
    """The page's DOM as visible text (tags and styles stripped), and a screenshot in ``shot``.

    ``loaded``: a text the finished page shows (the chart cards load lazily, after the table):
    under a loaded suite the page is rendered again with a longer virtual-time budget until it
    appears (3 tries); the assertions on the text stay the caller's."""
    text = ""
    for budget in (30_000, 60_000, 120_000):
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1400,900",
                 f"--virtual-time-budget={budget}"]
        with tempfile.TemporaryDirectory() as prof:
            dom = subprocess.run([chromium, *flags, f"--user-data-dir={prof}", "--dump-dom", url],
                                 capture_output=True, text=True, timeout=300).stdout
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", " ", dom, flags=re.S)))
        if loaded is None or loaded in text:
            break
    with tempfile.TemporaryDirectory() as prof:
        subprocess.run([chromium, *flags, f"--user-data-dir={prof}", f"--screenshot={shot}", url],
                       capture_output=True, text=True, timeout=300)
    assert shot.exists() and shot.stat().st_size > 10_000
    return text


@pytest.mark.browser
def test_mlflow_pages_show_the_runs_flat_with_columns_and_accuracy_by_method(pipeline_run, mlflow_server):
    chromium = _chromium()
    c = _client(mlflow_server)
    exp = c.get_experiment_by_name("zppo-test")
    runs = [r for r in c.search_runs([exp.experiment_id])
            if r.data.tags.get("mlflow.parentRunId") == pipeline_run["result"]["parent_run_id"]]
    lanes = [r for r in runs if r.data.tags.get("stage") != "curation"]
    trains = [r for r in lanes if r.data.tags.get("stage") == "train"]
    assert sorted(r.data.params["method"] for r in trains) == sorted(METHODS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # the runs table the pipeline printed: every lane run as its own row (not folded under the
    # parent), the comparison's params and the family accuracies as columns
    printed = re.search(r"Runs in MLflow \(.*?\): (\S+)", pipeline_run["stdout"]).group(1)
    text = _render(chromium, printed, ARTIFACTS / "mlflow_runs_table.png")
    (ARTIFACTS / "mlflow_runs_table.txt").write_text(text)
    for r in lanes:
        assert r.info.run_name in text, f"run {r.info.run_name!r} not in the runs table"
    for r in runs:
        if r.data.tags.get("stage") == "curation":  # filtered out of the table
            assert r.info.run_name not in text, r.info.run_name
    for col in ("method", "student", "seed", "eval/family_avg/"):
        assert col in text, f"column {col!r} not in the runs table"
    # the chart view: per family, method on x against the family's accuracy on y; the reward curves
    printed = re.search(r"Compare runs in MLflow \(.*?\): (\S+)", pipeline_run["stdout"]).group(1)
    text = _render(chromium, printed, ARTIFACTS / "mlflow_compare_runs.png", loaded="method vs.")
    (ARTIFACTS / "mlflow_compare_runs.txt").write_text(text)
    families = {k.split("/", 2)[2] for r in lanes for k in r.data.metrics if k.startswith("eval/family_avg/")}
    assert families
    for fam in families:
        assert f"method vs. eval/family_avg/{fam}" in text or f"eval/family_avg/{fam} vs. method" in text, fam
    assert "reward/plain_mean" in text
    ids = json.dumps([r.info.run_id for r in trains]).replace(" ", "")
    # both methods' reward curves on one metric chart (legend: "<run name> (reward/plain_mean)")
    key = quote(json.dumps("reward/plain_mean"))
    url = (f"{mlflow_server}/#/metric?runs={ids}&metric={key}&experiments=[\"{exp.experiment_id}\"]"
           f"&plot_metric_keys={quote(json.dumps(['reward/plain_mean']))}&x_axis=step")
    text = _render(chromium, url, ARTIFACTS / "mlflow_reward_curves.png")
    for r in trains:
        assert f"{r.info.run_name} (reward/plain_mean)" in text, f"no reward curve of {r.info.run_name!r}"
