"""Report stage: eval tables (ours beside the paper's, via :func:`eval.report.family_table`), raw
results JSON, plots, all logged to the pipeline's parent MLflow run and summarised as a Prefect
markdown artifact (stable key ``zppo-eval-summary``, versioned across runs in the Prefect UI).

Several seeds of one (student, method) are averaged per benchmark before the table is built.
Not cached: it is cheap and should reflect every re-run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prefect import task

from tasks import plots
from tasks.common import TrackCtx, slug, stage_logger
from tasks.tracking import read_jsonl
from zppo_core.redact import redact

SUMMARY_KEY = "zppo-eval-summary"
#: student sizes the paper reports (its tables' rows)
PAPER_SIZES = ("0.8B", "2B", "4B", "9B")


def mean_over_seeds(per_seed: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{seed: {abbr: result}}`` -> ``{abbr: result}`` with accuracy averaged over the seeds."""
    out: dict[str, dict[str, Any]] = {}
    for results in per_seed.values():
        for abbr, r in results.items():
            agg = out.setdefault(abbr, {**r, "_accs": []})
            if not r.get("skipped") and r.get("accuracy") is not None:
                agg["_accs"].append(float(r["accuracy"]))
    for r in out.values():
        accs = r.pop("_accs")
        r["accuracy"] = sum(accs) / len(accs) if accs else None
        r["seeds"] = len(accs)
    return out


def paper_size(student: str) -> str | None:
    """The paper's student size a spec names (``Qwen/Qwen3.5-2B`` -> ``2B``), else None."""
    m = re.search(r"(\d+(?:\.\d+)?)B\b", student)
    return f"{m.group(1)}B" if m and f"{m.group(1)}B" in PAPER_SIZES else None


def _all_offline(merged: dict[str, dict[str, Any]]) -> bool:
    from eval.registry import get

    abbrs = {a for r in merged.values() for a in r}
    return bool(abbrs) and all(get(a).offline for a in abbrs)


def _family_acc(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    from tasks.evaluate import family_averages

    return family_averages({k: v for k, v in results.items() if v.get("accuracy") is not None})


@task(name="report", result_serializer="json")
def report(evals: dict[str, dict[str, dict[str, dict[str, Any]]]], trainings: dict[str, dict[str, Any]],
           out_dir: str, track: dict[str, Any], paper: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build tables and plots.

    ``evals[student][method][seed] = {abbr: eval result}`` (``method`` includes ``base``);
    ``trainings["<student>/<method>/seed<s>"]`` = the train stage's result dict; ``paper``: options
    of the paper-table report (``pairs``, ``resamples``, ``seed``; :mod:`tasks.paper_report`),
    built from the pipeline's MLflow runs and added to the summary.
    Returns ``{"tables": {student: markdown}, "families": {student: {method: {family: acc}}}, "files": [...],
    "paper_report": markdown}``.
    """
    from eval.report import family_table

    log = stage_logger()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = TrackCtx.from_dict(track)
    tracker = ctx.tracker()
    files: list[Path] = []
    tables: dict[str, str] = {}
    families: dict[str, dict[str, dict[str, float]]] = {}
    for student, by_method in evals.items():
        merged = {m: mean_over_seeds(per_seed) for m, per_seed in by_method.items()}
        table = family_table(merged, paper_size=paper_size(student), offline=_all_offline(merged))
        tables[student] = table if isinstance(table, str) else str(table)
        path = out / f"table_{slug(student)}.md"
        path.write_text(f"# {student}\n\n{tables[student]}\n")
        files.append(path)
        families[student] = {m: _family_acc(r) for m, r in merged.items()}
        fig = plots.family_bars(families[student], f"Accuracy by family — {student}", _intervals(by_method))
        files.append(_save(fig, out / f"accuracy_by_family_{slug(student)}.png"))
    curves = {label: read_jsonl(t["metrics_path"]) for label, t in trainings.items() if t.get("metrics_path")}
    if curves:
        files.append(_save(plots.reward_curves(curves), out / "reward_curves.png"))
        files.append(_save(plots.buffer_curves(curves), out / "replay_buffer.png"))
    raw = out / "results.json"
    raw.write_text(json.dumps(redact({"evals": evals, "trainings": trainings, "families": families}), indent=1))
    files.append(raw)
    for f in files:
        tracker.log_artifact(ctx.parent_run_id, f, "report")
    paper_md = _paper_report(tracker, ctx.parent_run_id, out, paper or {})
    summary_md = _write_summary(tracker, ctx.parent_run_id, out, evals, [f.name for f in files if f.suffix == ".png"])
    files += [out / "summary.md", out / "summary.json"]
    _prefect_artifact(summary_md + ("\n\n" + paper_md if paper_md else ""))
    log.info("report written to %s (summary: %s)", out, out / "summary.md")
    return {"tables": tables, "families": families, "files": [str(f) for f in files], "paper_report": paper_md,
            "summary": str(out / "summary.md")}


#: MLflow's run description (the "Description" box of a run's page) is this tag's Markdown
NOTE_TAG = "mlflow.note.content"


def _write_summary(tracker: Any, parent_run_id: str, out: Path, evals: dict[str, Any], plots_: list[str]) -> str:
    """``summary.md`` / ``summary.json`` (:func:`tasks.summary.summary_markdown`) in the report
    folder, logged on the parent run as artifacts, its description, and ``summary/*`` metrics."""
    from tasks.summary import summary_json, summary_markdown

    md = summary_markdown(evals, plots_)
    (out / "summary.md").write_text(md)
    data = summary_json(evals)
    (out / "summary.json").write_text(json.dumps(data, indent=1))
    for name in ("summary.md", "summary.json"):
        tracker.log_artifact(parent_run_id, out / name, "report")
    tracker.client.set_tag(parent_run_id, NOTE_TAG, md[:SUMMARY_NOTE_CHARS])
    tracker.log_summary(parent_run_id, summary_metrics(data))
    return md


#: longest description MLflow keeps in a tag (the file has it all)
SUMMARY_NOTE_CHARS = 5000


def summary_metrics(data: dict[str, Any]) -> dict[str, float]:
    """The parent run's headline numbers (its row in the run list): per student, method and
    family ``summary/<student>/<method>/<family>`` (accuracy %) and ``.../delta/<family>``."""
    out: dict[str, float] = {}
    for student, by in data.items():
        for method, groups in by["family"].items():
            for fam, cell in groups.items():
                out[f"summary/{slug(student)}/{method}/{fam}"] = float(cell["mean"])
                if cell["delta"] is not None:
                    out[f"summary/{slug(student)}/{method}/delta/{fam}"] = float(cell["delta"]["mean"])
    return out


def _paper_report(tracker: Any, parent_run_id: str, out: Path, opts: dict[str, Any]) -> str:
    """The paper tables + bootstrap from the pipeline run's children, logged under ``report/``."""
    from tasks.paper_report import log_files, report_from_runs, write_report

    try:
        rep, accs = report_from_runs(tracker.client, [parent_run_id], pairs=opts.get("pairs"),
                                     resamples=int(opts.get("resamples", 10_000)), seed=int(opts.get("seed", 0)))
    except ValueError as e:  # no evaluated run yet: nothing to tabulate
        stage_logger().warning("paper report skipped: %s", e)
        return ""
    log_files(tracker.client, parent_run_id, write_report(rep, out, accs))
    return rep.markdown


def _intervals(by_method: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, tuple[float, float]]]:
    """95 % intervals over seeds of each method's family averages (methods with 2+ seeds)."""
    from tasks.summary import cells

    out: dict[str, dict[str, tuple[float, float]]] = {}
    for method, per_seed in by_method.items():
        iv = {fam: c.interval for fam, c in cells(per_seed).items() if c.interval}
        if iv:
            out[method] = iv
    return out


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    plots.close(fig)
    return path


def _prefect_artifact(markdown: str) -> None:
    try:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(markdown=markdown, key=SUMMARY_KEY, description="ZPPO evaluation summary")
    except Exception as e:  # noqa: BLE001 - an artifact is a convenience, never fail the report for it
        stage_logger().warning("could not create the Prefect artifact: %s", e)


__all__ = ["NOTE_TAG", "SUMMARY_KEY", "mean_over_seeds", "report", "summary_metrics"]
