"""MLflow logging of the pipeline, through :class:`mlflow.MlflowClient` with explicit run ids.

The client API (not the fluent ``mlflow.start_run`` stack) is used everywhere because evaluation
tasks run in parallel threads: each call names its run, nothing depends on an "active run".

Run hierarchy (``mlflow.parentRunId`` tags)::

    pipeline · <name>                    one per pipeline (re-runs of a failed pipeline continue it)
    ├── curation                         curation report, counts
    ├── <method> · <student> · s<seed>   training step metrics, eval/acc/*, eval/family_avg/*,
    │   │                                config, metrics.jsonl, curves, sample completions (tables)
    │   └── <benchmark> · <method> · ... per-item records (parquet + an MLflow table), accuracy
    └── base · <student>                 the untrained student, same layout

Run names lead with what differs between runs, and ``method``, ``student`` and ``seed`` are also
params; :mod:`tasks.mlflow_views` shares the runs table and chart view that show them as columns.

Every run carries the same tag set (student, teacher, method, seed, git_sha, config_hash, stage)
so runs compare side by side in the UI. A run is found again by its ``zppo.key`` tag, which is how
a resumed stage continues its run instead of opening a new one.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from zppo_core.redact import MASK, is_secret_key, mask_url_credentials

#: MLflow's per-request limits (log_batch)
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAMS_PER_BATCH = 100
_MAX_PARAM_CHARS = 6000
#: tag holding the last training step already logged to a run (resume without duplicates)
LAST_STEP_TAG = "zppo.last_logged_step"
KEY_TAG = "zppo.key"
#: the readable key beside its hash (paths may hold quotes, which no filter string may contain)
KEY_TEXT_TAG = "zppo.key_text"
_MAX_TAG_CHARS = 5000


def default_tracking_uri(output_dir: str | Path) -> str:
    """Server-less local store inside the run folder (``mlflow ui`` opens it)."""
    db = Path(output_dir).resolve() / "mlruns" / "mlflow.db"
    return f"sqlite:///{db}"


def artifact_root(output_dir: str | Path) -> str:
    """Where a local store keeps artifacts (``<output>/mlruns/artifacts``)."""
    return (Path(output_dir).resolve() / "mlruns" / "artifacts").as_uri()


def local_artifact_root(tracking_uri: str) -> str | None:
    """Artifacts of a ``sqlite:///<dir>/x.db`` store in ``<dir>/artifacts`` (MLflow's own default
    is ``./mlruns`` of whatever folder the process runs in); None for other stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri[len("sqlite:///"):]).resolve().parent / "artifacts").as_uri()


#: experiment tag the MLflow 3 UI reads to open an experiment on its runs (model training), not
#: on the GenAI traces page
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def resolve_tracking_uri(configured: str, output_dir: str | Path) -> str:
    return configured or default_tracking_uri(output_dir)


#: where ``make mlflow-ui`` / ``mlflow ui`` serves a local store
LOCAL_UI = "http://127.0.0.1:5000"
#: longest text kept per cell of an MLflow table (prompts and completions can be long)
TABLE_TEXT_CHARS = 4000


def ui_base(tracking_uri: str, ui_url: str = "") -> str:
    """The MLflow UI that shows ``tracking_uri``: ``ui_url`` when configured (``tracking.ui_url``),
    else the server itself, else the local ``mlflow ui`` (:data:`LOCAL_UI`)."""
    if ui_url:
        return ui_url.rstrip("/")
    return tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI


#: the params a comparison sorts by, as short top-level keys (also the runs table's columns)
RUN_PARAMS = ("method", "student", "seed")


def run_params(lab: Mapping[str, str]) -> dict[str, str]:
    """The :data:`RUN_PARAMS` of a run from its labels (``seed`` "-" for the base model)."""
    return {k: (lab.get(k) or "-") if k == "seed" else lab[k] for k in RUN_PARAMS}


# -- names and values -------------------------------------------------------------------------
def key_tag(key: str) -> str:
    """The value stored in the ``zppo.key`` tag: a hex hash of the run key, so the search filter
    never has to quote the key's text (output paths may hold ``'`` or ``"``)."""
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:32]


def sanitize_key(key: str) -> str:
    """MLflow-safe metric/param name: alphanumerics and ``_ - . space /``; ``@`` -> ``_at_``."""
    key = key.replace("@", "_at_")
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", key)


def safe_params(flat: Mapping[str, Any]) -> dict[str, str]:
    """Flattened config -> MLflow params: secrets masked, credentials in URLs masked, truncated."""
    out: dict[str, str] = {}
    for k, v in flat.items():
        text = MASK if is_secret_key(k) else mask_url_credentials(
            json.dumps(v) if isinstance(v, (list, tuple, dict)) else str(v)
        )
        out[sanitize_key(k)] = text[:_MAX_PARAM_CHARS]
    return out


def numeric_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Keep finite numbers; lists become ``<k>/min``, ``/mean``, ``/max``; names sanitized."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        name = sanitize_key(prefix + str(k))
        if isinstance(v, bool):
            out[name] = float(v)
        elif isinstance(v, (int, float)):
            if math.isfinite(float(v)):
                out[name] = float(v)
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) for x in v):
            vals = [float(x) for x in v]
            out[name + "/min"], out[name + "/max"] = min(vals), max(vals)
            out[name + "/mean"] = sum(vals) / len(vals)
    return out


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Complete lines of a JSONL file (a half-written last line is left for the next read)."""
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    lines = p.read_text().splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines):
                break  # being written right now
            raise ValueError(f"{p}: line {i} is not valid JSON") from None
    return rows


class Tracker:
    """Thin, thread-safe helper over one MLflow experiment."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None):
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self._lock = threading.Lock()
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            local = not tracking_uri.startswith(("http://", "https://", "databricks"))
            where = (artifact_location or local_artifact_root(tracking_uri)) if local else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=where,
                                                               tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING})
        else:
            self.experiment_id = exp.experiment_id
            if EXPERIMENT_KIND_TAG not in exp.tags:  # made before the tag existed: open on runs too
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)

    # -- runs ------------------------------------------------------------------------------
    def find_run(self, key: str) -> str | None:
        """Latest run of this experiment whose ``zppo.key`` tag is :func:`key_tag` of ``key``."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key_tag(key)}'",
            order_by=["attributes.start_time DESC"], max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def open_run(self, key: str, name: str, tags: Mapping[str, Any], parent_run_id: str | None = None,
                 run_id: str | None = None) -> str:
        """Continue the run ``run_id`` or the one tagged ``key``; else create it. Returns its id."""
        with self._lock:
            rid = run_id or self.find_run(key)
            all_tags = {k: str(v) for k, v in tags.items()}
            all_tags[KEY_TAG] = key_tag(key)
            all_tags[KEY_TEXT_TAG] = key[:_MAX_TAG_CHARS]
            if parent_run_id:
                all_tags["mlflow.parentRunId"] = parent_run_id
            if rid is None:
                rid = self.client.create_run(self.experiment_id, tags=all_tags, run_name=name).info.run_id
            else:
                self.client.update_run(rid, status="RUNNING")
                for k, v in all_tags.items():
                    self.client.set_tag(rid, k, v)
            return rid

    def finish(self, run_id: str, ok: bool = True) -> None:
        self.client.set_terminated(run_id, status="FINISHED" if ok else "FAILED")

    # -- data ------------------------------------------------------------------------------
    def log_params(self, run_id: str, flat: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(run_id).data.params
        items = [Param(k, v) for k, v in safe_params(flat).items() if k not in existing]
        for i in range(0, len(items), _MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=items[i : i + _MAX_PARAMS_PER_BATCH])

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int = 0) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k, v, ts, step) for k, v in numeric_metrics(metrics).items()]
        for i in range(0, len(items), _MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=items[i : i + _MAX_METRICS_PER_BATCH])

    def log_summary(self, run_id: str, metrics: Mapping[str, Any]) -> None:
        """Step-0 metrics logged only when their value changed (re-runs add no duplicate points)."""
        current = self.client.get_run(run_id).data.metrics
        fresh = {k: v for k, v in numeric_metrics(metrics).items() if current.get(k) != v}
        if fresh:
            self.log_metrics(run_id, fresh)

    def last_logged_step(self, run_id: str) -> int:
        tag = self.client.get_run(run_id).data.tags.get(LAST_STEP_TAG)
        return int(tag) if tag is not None else -1

    def log_step_rows(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Log metrics.jsonl rows with ``step`` > the run's last logged step. Returns how many."""
        last = self.last_logged_step(run_id)
        n = 0
        for row in rows:
            step = int(row["step"])
            if step <= last:
                continue
            self.log_metrics(run_id, {k: v for k, v in row.items() if k != "step"}, step=step)
            self.client.set_tag(run_id, LAST_STEP_TAG, str(step))
            last, n = step, n + 1
        return n

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        p = Path(path)
        if p.is_dir():
            self.client.log_artifacts(run_id, str(p), artifact_path)
        elif p.exists():
            self.client.log_artifact(run_id, str(p), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def log_table(self, run_id: str, rows: list[Mapping[str, Any]], artifact_file: str) -> None:
        """Rows as an MLflow table (previewed in the UI's artifact view and ``mlflow.load_table``);
        text cells cut at :data:`TABLE_TEXT_CHARS`."""
        if not rows:
            return
        cols = list(dict.fromkeys(k for r in rows for k in r))
        data = {c: [_cell(r.get(c)) for r in rows] for c in cols}
        self.client.log_table(run_id, data=data, artifact_file=artifact_file)


def _cell(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float)):
        return v
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= TABLE_TEXT_CHARS else text[:TABLE_TEXT_CHARS] + " ..."


__all__ = [
    "KEY_TAG",
    "KEY_TEXT_TAG",
    "key_tag",
    "LOCAL_UI",
    "LAST_STEP_TAG",
    "Tracker",
    "artifact_root",
    "default_tracking_uri",
    "is_secret_key",
    "numeric_metrics",
    "read_jsonl",
    "resolve_tracking_uri",
    "run_params",
    "safe_params",
    "sanitize_key",
    "ui_base",
]
