"""``zppo report RUN [RUN...]``: the paper's tables (Tabs. 1, 2, 4, 10, 11) and the Tab. 14
bootstrap from MLflow runs, written as Markdown + HTML and logged to MLflow.

RUN: MLflow run ids of (student, method[, seed]) runs with ``eval/acc/<benchmark>`` metrics,
or of a pipeline run (its child runs are used). The report is logged to a new ``report`` run of
the first run's experiment (nested under the pipeline run when one was named), unless
``--no-log``.
"""

from __future__ import annotations

import argparse
import os
import sys

from eval.bootstrap import PAPER_RESAMPLES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="MLflow run ids (a pipeline run stands for its children)")
    p.add_argument("--tracking-uri", default="",
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the store of --run-folder)")
    from zppo_core.cli_args import add_output, add_renamed

    add_renamed(p, "--run-folder", ("--output-dir",), default="",
                help="a pipeline run folder whose local store (mlruns/) to read")
    p.add_argument("--pair", action="append", default=[], metavar="A:B",
                   help="bootstrap A - B (method names, e.g. zppo:grpo_replay); repeatable; "
                        "default: ZPPO against every other method")
    p.add_argument("--resamples", type=int, default=PAPER_RESAMPLES, help="bootstrap resamples (paper: 10,000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap RNG seed")
    add_output(p, "folder for paper_report.md / .html / bootstrap.json (default: report)", default="report")
    p.add_argument("--no-log", action="store_true", help="write the files only, log nothing to MLflow")


def _tracking_uri(args: argparse.Namespace) -> str:
    from tasks.tracking import default_tracking_uri

    if args.tracking_uri:
        return args.tracking_uri
    if args.run_folder:
        return default_tracking_uri(args.run_folder)
    env = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not env:
        raise ValueError("no MLflow store: pass --tracking-uri or --run-folder (or set MLFLOW_TRACKING_URI)")
    return env


def log_report_run(client, first_run_id: str, files, run_ids: list[str]) -> str:
    """A ``report`` run in the experiment of ``first_run_id`` holding the files; returns its id."""
    from tasks.paper_report import log_files

    first = client.get_run(first_run_id)
    tags = {"stage": "report", "zppo.report_runs": ",".join(run_ids)}
    if first.data.tags.get("stage") == "pipeline":
        tags["mlflow.parentRunId"] = first_run_id
    rid = client.create_run(first.info.experiment_id, tags=tags, run_name="report").info.run_id
    log_files(client, rid, files)
    client.set_terminated(rid, "FINISHED")
    return rid


def run(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from tasks.paper_report import report_from_runs, write_report

    try:
        client = MlflowClient(tracking_uri=_tracking_uri(args))
        rep, accs = report_from_runs(client, list(args.runs), pairs=args.pair, resamples=args.resamples,
                                     seed=args.seed)
    except (ValueError, KeyError) as e:
        print(f"zppo report: {e}", file=sys.stderr)
        return 2
    files = write_report(rep, args.output, accs)
    print(rep.markdown)
    for f in files:
        print(f"wrote {f}", file=sys.stderr)
    if not args.no_log:
        rid = log_report_run(client, args.runs[0], files, list(args.runs))
        print(f"logged to MLflow run {rid} (artifacts: report/)", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "log_report_run", "run"]
