"""``zppo pipeline``: run the ``zppo-full`` flow in Prefect's ephemeral mode (no server needed).

Prefect's home (its SQLite database, settings, result storage) lives inside the run folder
(``<output_dir>/prefect``), not in ``~``; MLflow uses the local store ``<output_dir>/mlruns``
unless ``tracking.tracking_uri`` says otherwise. At the end the result table (base vs methods)
and the command that opens the MLflow UI are printed.

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
from pathlib import Path
from typing import Any

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


def _csv(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def prepare_environment(output_dir: Path) -> None:
    """Prefect home + result storage inside the run folder, analytics off, hub offline."""
    home = output_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(home / "storage"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the temporary server can take longer than Prefect's 20 s default to start on a busy 2-core box
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_S))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def mlflow_ui_command(tracking_uri: str, output_dir: Path) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    store = shlex.quote(tracking_uri)
    arts = shlex.quote(str(output_dir / "mlruns" / "artifacts"))
    return (f"mlflow ui --backend-store-uri {store} --default-artifact-root {arts} --host 127.0.0.1 --port 5000"
            f"   (or: make mlflow-ui MLFLOW_DIR={shlex.quote(str(output_dir / 'mlruns'))})")


def format_summary(result: dict[str, Any]) -> str:
    lines = ["", "=" * 80, "ZPPO pipeline finished", "=" * 80]
    for student, table in result["report"]["tables"].items():
        lines += [f"\n## {student}\n", table]
    lines += ["", "Family averages (ours):"]
    for student, fams in result["report"]["families"].items():
        for method, acc in fams.items():
            lines.append(f"  {student:<28} {method:<16} " + "  ".join(f"{f}={v:.1f}" for f, v in sorted(acc.items())))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from zppo_core.config import ConfigError, parse_overrides

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        overrides = parse_overrides(args.set)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.output:
        overrides["output_dir"] = args.output
    try:
        from flows.profiles import resolve_config

        cfg = resolve_config(args.config, None if args.config else args.profile, overrides)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(cfg.output_dir).resolve()
    from zppo_core.locks import FolderBusy, folder_lock

    try:
        with folder_lock(out, "zppo pipeline"):
            return _run_locked(args, overrides, out)
    except FolderBusy as e:
        print(f"zppo pipeline: {e}", file=sys.stderr)
        return 3


def _run_locked(args: argparse.Namespace, overrides: dict[str, Any], out: Path) -> int:
    from zppo_core.redact import redact

    prepare_environment(out)
    from flows.zppo_full import zppo_full

    try:
        result = zppo_full(config=args.config, profile=None if args.config else args.profile,
                           students=_csv(args.students), teacher=args.teacher, methods=_csv(args.methods),
                           benchmarks=_csv(args.benchmarks), seeds=[int(s) for s in _csv(args.seeds) or []] or None,
                           overrides=overrides)
    except Exception as e:  # noqa: BLE001 - report any stage failure the same way
        print(f"\nzppo pipeline failed: {type(e).__name__}: {e}", file=sys.stderr)
        print("Completed stages are cached: run the same command again to resume.", file=sys.stderr)
        return 1
    print(format_summary(result))
    (out / "report" / "pipeline_result.json").write_text(json.dumps(redact(result), indent=1, default=str))
    print(f"\nRun folder: {out}")
    print(f"MLflow UI:  {mlflow_ui_command(result['tracking_uri'], out)}")
    missing = missing_data(result, args.benchmarks)
    if missing:
        print(f"zppo pipeline: no data for the requested benchmark(s) {', '.join(missing)}", file=sys.stderr)
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


__all__ = ["add_arguments", "format_summary", "missing_data", "mlflow_ui_command", "prepare_environment", "run"]
