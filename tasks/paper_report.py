"""The paper-table report from MLflow runs (``zppo report RUN...`` and the pipeline's report stage).

Reads each run's ``eval/acc/<benchmark>`` metrics and its ``student`` / ``method`` / ``seed``
tags (falling back to the ``model.student`` / ``zppo.method`` / ``schedule.seed`` params). A
pipeline run (tag ``stage = pipeline``) stands for its direct child runs. Several seeds of one
(student, method) are averaged per benchmark. The tables themselves are
:func:`eval.paper_tables.build_report` (pure); this module is the MLflow glue: it writes
``paper_report.md``, ``paper_report.html`` (self-contained) and ``bootstrap.json`` and logs them
under ``report/`` of a run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.bootstrap import PAPER_RESAMPLES
from eval.paper_tables import PaperReport, StudentResults, build_report

_ACC_RE = re.compile(r"^eval/acc/(?P<abbr>[^/]+)$")  # tasks.evaluate.acc_key
ARTIFACT_DIR = "report"


@dataclass
class RunAccuracies:
    """One run's evaluation numbers and identity."""

    run_id: str
    student: str
    method: str
    seed: str
    accuracy: dict[str, float] = field(default_factory=dict)


def _ident(run: Any) -> tuple[str, str, str]:
    tags, params = run.data.tags, run.data.params
    student = tags.get("student") or params.get("model.student", "")
    method = tags.get("method") or params.get("zppo.method", "")
    seed = tags.get("seed") or params.get("schedule.seed", "")
    return student, method, seed


def run_accuracies(run: Any) -> RunAccuracies | None:
    """The run's ``eval/acc/<abbr>`` metrics, or None when it has none (e.g. curation)."""
    acc = {m["abbr"]: float(v) for k, v in run.data.metrics.items() if (m := _ACC_RE.match(k)) and m["abbr"] != "family"}
    if not acc:
        return None
    student, method, seed = _ident(run)
    if not student or not method:
        raise ValueError(f"MLflow run {run.info.run_id}: has eval metrics but no student/method tag or param")
    return RunAccuracies(run.info.run_id, student, method, seed, acc)


def expand(client: Any, run_ids: list[str]) -> list[Any]:
    """The runs named, a pipeline run replaced by its direct children (order kept, no repeats)."""
    out, seen = [], set()
    for rid in run_ids:
        run = client.get_run(rid)
        runs = [run]
        if run.data.tags.get("stage") == "pipeline":
            runs = client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{rid}'",
                                      order_by=["attributes.start_time ASC"], max_results=5000)
        for r in runs:
            if r.info.run_id not in seen:
                seen.add(r.info.run_id)
                out.append(r)
    return out


def students_from_runs(runs: list[RunAccuracies]) -> list[StudentResults]:
    """Group by student (first-seen order) and method; average each benchmark over seeds."""
    grouped: dict[str, dict[str, list[RunAccuracies]]] = {}
    for r in runs:
        grouped.setdefault(r.student, {}).setdefault(r.method, []).append(r)
    out = []
    for student, by_method in grouped.items():
        methods, seeds = {}, {}
        for method, rs in by_method.items():
            abbrs = list(dict.fromkeys(a for r in rs for a in r.accuracy))
            methods[method] = {a: _mean([r.accuracy[a] for r in rs if a in r.accuracy]) for a in abbrs}
            seeds[method] = len(rs)
        out.append(StudentResults(student, methods, seeds))
    return out


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def parse_pairs(pairs: list[str] | None) -> list[tuple[str, str]] | None:
    """``["zppo:grpo_replay"]`` -> ``[("zppo", "grpo_replay")]``; None/empty = the default pairs."""
    if not pairs:
        return None
    out = []
    for p in pairs:
        a, sep, b = p.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise ValueError(f"bootstrap pair {p!r}: expected METHOD_A:METHOD_B (e.g. zppo:grpo_replay)")
        out.append((a.strip(), b.strip()))
    return out


def report_from_runs(client: Any, run_ids: list[str], *, pairs: list[str] | None = None,
                     resamples: int = PAPER_RESAMPLES, seed: int = 0) -> tuple[PaperReport, list[RunAccuracies]]:
    """Build the report from ``run_ids`` (pipeline runs expand to their children)."""
    accs = [a for r in expand(client, run_ids) if (a := run_accuracies(r)) is not None]
    if not accs:
        raise ValueError(f"none of the MLflow runs {run_ids} has eval/acc/<benchmark> metrics")
    rep = build_report(students_from_runs(accs), pairs=parse_pairs(pairs), resamples=resamples, seed=seed)
    return rep, accs


def write_report(rep: PaperReport, out_dir: str | Path, runs: list[RunAccuracies]) -> list[Path]:
    """``paper_report.md``, ``paper_report.html``, ``bootstrap.json`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, page, boot = out / "paper_report.md", out / "paper_report.html", out / "bootstrap.json"
    md.write_text(rep.markdown)
    page.write_text(rep.html)
    boot.write_text(json.dumps({"runs": [r.__dict__ for r in runs], "bootstrap": rep.bootstrap}, indent=1))
    return [md, page, boot]


def log_files(client: Any, run_id: str, files: list[Path]) -> None:
    for f in files:
        client.log_artifact(run_id, str(f), ARTIFACT_DIR)


__all__ = ["RunAccuracies", "expand", "log_files", "parse_pairs", "report_from_runs", "run_accuracies",
           "students_from_runs", "write_report"]
