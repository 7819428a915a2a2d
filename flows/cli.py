"""``zppo pipeline``: run the ``zppo-full`` flow in Prefect's ephemeral mode (no server needed).

Prefect's home (its SQLite database, settings, result storage) lives inside the run folder
(``<output_dir>/prefect``), not in ``~``; MLflow uses the local store ``<output_dir>/mlruns``
unless ``tracking.tracking_uri`` says otherwise. At the end the result table (base vs methods,
n per cell, Δ vs Base, intervals over seeds), the report folder, the MLflow links (runs table, chart view) and
the command that opens the MLflow UI are printed.

Prefect is imported only after the environment is set, since its settings are read at import.

The run folder is locked for the whole run (:mod:`zppo_core.locks`): a second ``zppo pipeline``
on the same folder is refused at once (exit code 3) with the holder's PID. A benchmark named one
by one in ``--benchmarks`` that had no data makes the run exit 1 after the report.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

#: the run's console output, appended to on every run of the folder
CONSOLE_LOG = "console.log"
#: the traceback of the failure that stopped a pipeline run (the terminal shows one line)
ERROR_FILE = "pipeline_error.txt"
#: seconds Prefect may take to start its temporary (ephemeral) API server
EPHEMERAL_STARTUP_S = 180


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="tiny", help="configs/<profile>.yaml (default: tiny)")
    p.add_argument("--config", default=None, help="a config YAML instead of a profile")
    p.add_argument("--students", default=None, help="comma-separated model specs")
    p.add_argument("--teacher", default=None, help="teacher model spec")
    p.add_argument("--methods", default=None, help="comma-separated methods, e.g. grpo,zppo")
    p.add_argument("--benchmarks", default=None, help="comma-separated benchmarks / families / all / offline")
    p.add_argument("--seeds", default=None, help="comma-separated seeds")
    p.add_argument("--output", default=None, help="run folder (default: the config's output_dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override (YAML value), repeatable: --set schedule.total_steps=2")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (stages, training and evaluation jobs, GPUs, servers, steps) and exit; "
                        "starts and writes nothing")


def _csv(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def prepare_environment(output_dir: Path) -> None:
    """Prefect home + result storage inside the run folder, analytics and telemetry off (Prefect,
    MLflow), hub offline."""
    home = output_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(home / "storage"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the temporary server can take longer than Prefect's 20 s default to start on a busy 2-core box
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_S))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def mlflow_ui_command(tracking_uri: str, output_dir: Path, ui_url: str = "") -> str:
    """How to open the UI the printed links point at: the server, or ``mlflow ui`` serving the
    run folder's local store on the port of ``ui_url`` (``tracking.ui_url``)."""
    from urllib.parse import urlsplit

    from tasks.tracking import ui_base

    if tracking_uri.startswith(("http://", "https://")):
        return f"open {ui_base(tracking_uri, ui_url)}"
    port = urlsplit(ui_base(tracking_uri, ui_url)).port or 5000
    store = shlex.quote(tracking_uri)
    arts = shlex.quote(str(output_dir / "mlruns" / "artifacts"))
    return (f"mlflow ui --backend-store-uri {store} --default-artifact-root {arts} --host 127.0.0.1 --port {port}"
            f"   (or: make mlflow-ui MLFLOW_DIR={shlex.quote(str(output_dir / 'mlruns'))} PORT={port})")


def format_summary(result: dict[str, Any], out: Path, by: str = "family") -> str:
    """The end of a pipeline run: the result table (columns ``by`` family or benchmark), where
    the report is, how to compare runs."""
    from tasks.summary import summary_text

    lines = ["", "=" * 80, "ZPPO pipeline finished", "=" * 80, "", summary_text(result, by), ""]
    lines.append(f"Report (tables beside the paper's numbers, plots): {out / 'report'}")
    if result.get("runs_url"):
        lines.append(f"Runs in MLflow (method, student, seed, accuracies): {result['runs_url']}")
    if result.get("compare_url"):
        lines.append(f"Compare runs in MLflow (accuracy by method, rewards): {result['compare_url']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Expected errors (config, model spec, failed preflight) raise and become one line
    (``zppo pipeline: error: ...``) without a resume hint: nothing ran. A stage that fails later
    is reported in one line plus the hint, since completed stages are cached."""
    from zppo_core.config import parse_overrides

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    overrides = parse_overrides(args.set)
    if args.output:
        overrides["output_dir"] = args.output
    from flows.profiles import refuse_per_lane_overrides, resolve_config

    refuse_per_lane_overrides(overrides)  # before anything starts
    cfg = resolve_config(args.config, None if args.config else args.profile, overrides)
    if args.dry_run:
        print(dry_run(args, cfg))
        return 0
    out = Path(cfg.output_dir).resolve()
    from zppo_core.locks import FolderBusy, folder_lock

    try:
        with folder_lock(out, "zppo pipeline"):
            return _run_locked(args, overrides, out, cfg.pipeline.summary_columns,
                               interrupt_kept(out, cfg.cluster.executor))
    except FolderBusy as e:
        print(f"zppo pipeline: {e}", file=sys.stderr)
        return 3


def dry_run(args: argparse.Namespace, cfg: Any) -> str:
    """The plan of the run these arguments describe (:mod:`flows.plan`)."""
    from flows.plan import build_plan, format_plan
    from flows.profiles import sweep_benchmarks, sweep_of
    from zppo_core.config import replace

    extra = {k: v for k, v in (("model.teacher", args.teacher), ("eval.benchmarks", _csv(args.benchmarks))) if v}
    cfg = replace(cfg, **extra) if extra else cfg
    st, me, se = sweep_of(cfg, _csv(args.students), _csv(args.methods), [int(s) for s in _csv(args.seeds) or []] or None)
    sweep = {"students": st, "methods": me, "seeds": se, "benchmarks": sweep_benchmarks(cfg)}
    return f"zppo pipeline --dry-run: {cfg.name} -> {cfg.output_dir}\n" + format_plan(build_plan(cfg, sweep))


def _preflight_first(args: argparse.Namespace, overrides: dict[str, Any], out: Path) -> str | None:
    """The flow's preflight, run by the command before Prefect starts: its problem, or None.
    (The flow runs it again: a deployment run has no command in front of it.)"""
    from flows.zppo_full import resolve_run
    from tasks.hashing import REPO_ROOT
    from zppo_core.preflight import run_checks

    cfg, sweep = resolve_run(args.config, None if args.config else args.profile, _csv(args.students), args.teacher,
                             _csv(args.methods), _csv(args.benchmarks),
                             [int(s) for s in _csv(args.seeds) or []] or None, None, overrides)
    if not cfg.pipeline.preflight:
        return None
    rep = run_checks(cfg, "pipeline", students=sweep["students"], methods=sweep["methods"], output_dir=str(out),
                     config_root=REPO_ROOT)
    return None if rep.ok else f"preflight failed: {rep.problem}"


def interrupt_kept(out: Path, executor: str) -> str:
    """What an interrupted pipeline leaves, for the one line it prints."""
    kept = f"completed stages are cached and the last checkpoints kept in {out}"
    return kept + (" (its Slurm jobs keep running: the re-run attaches to them)" if executor == "slurm" else "")


def _run_locked(args: argparse.Namespace, overrides: dict[str, Any], out: Path, summary_by: str = "family",
                kept: str = "") -> int:
    from zppo_core.errors import format_error, is_expected
    from zppo_core.redact import SECRETS_ENV, install_log_redaction, masked_values, redact

    prepare_environment(out)
    from zppo_core.console import keep_console

    keep_console(out / CONSOLE_LOG)  # what the terminal shows, kept in the run folder
    install_log_redaction()
    from zppo_core.interrupt import exit_on_interrupt

    # Ctrl-C / SIGTERM: children stopped, one line, exit 130 in seconds (not the engine's shutdown)
    exit_on_interrupt("pipeline", kept)
    from flows.zppo_full import zppo_full
    from tasks.common import quiet_repeated_failures

    problem = _preflight_first(args, overrides, out)
    if problem:  # in seconds, before the Prefect server starts
        print(format_error("pipeline", problem), file=sys.stderr)
        return 2
    quiet_repeated_failures()  # a failing stage is printed once, below, not by every engine level
    # flow parameters are stored in the Prefect database: credentials travel by environment
    os.environ[SECRETS_ENV] = json.dumps(masked_values(overrides))
    overrides = redact(overrides)

    try:
        result = zppo_full(config=args.config, profile=None if args.config else args.profile,
                           students=_csv(args.students), teacher=args.teacher, methods=_csv(args.methods),
                           benchmarks=_csv(args.benchmarks), seeds=[int(s) for s in _csv(args.seeds) or []] or None,
                           overrides=overrides)
    except Exception as e:  # noqa: BLE001 - report any stage failure the same way
        if is_expected(e):
            raise
        print(format_error("pipeline", f"{type(e).__name__}: {one_line_of(e)}"), file=sys.stderr)
        (out / ERROR_FILE).write_text("".join(traceback.format_exception(e)))
        print(f"Traceback: {out / ERROR_FILE}; logs: {out}/train/*/*/*/train.log. Completed stages are cached: "
              "fix the cause and run the same command again to resume.", file=sys.stderr)
        return 1
    print(format_summary(result, out, summary_by))
    (out / "report" / "pipeline_result.json").write_text(json.dumps(redact(result), indent=1, default=str))
    print(f"\nRun folder: {out}   (console log: {out / CONSOLE_LOG}; summary: {out / 'report' / 'summary.md'})")
    print(f"MLflow UI:  {mlflow_ui_command(result['tracking_uri'], out, result.get('ui_url', ''))}")
    missing = missing_data(result, args.benchmarks)
    if missing:
        print(format_error("pipeline", f"no data for the requested benchmark(s) {', '.join(missing)}"), file=sys.stderr)
        return 1
    return 0


def missing_data(result: dict[str, Any], requested: str | None) -> list[str]:
    """Benchmarks named one by one in ``--benchmarks`` that some evaluation skipped for lack of data."""
    if not requested:
        return []
    from eval.cli import explicit_names

    named = set(explicit_names(requested))
    found = {abbr for by_method in result["evals"].values() for by_seed in by_method.values()
             for res in by_seed.values() for abbr, r in res.items()
             if abbr in named and r.get("skip_kind") == "data"}
    return sorted(found)


def one_line_of(exc: BaseException) -> str:
    from zppo_core.errors import one_line

    return one_line(exc)


__all__ = ["add_arguments", "format_summary", "missing_data", "mlflow_ui_command", "one_line_of",
           "prepare_environment", "run"]
