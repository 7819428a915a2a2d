"""``zppo doctor``: the preflight checks of :mod:`zppo_core.preflight`, printed one per line.

    zppo doctor                                   # the tiny profile (what `make demo` runs)
    zppo doctor --config configs/paper.yaml       # the paper's sweep on this host
    zppo doctor --config configs/paper.yaml --scope train --set model.student=Qwen/Qwen3.5-0.8B

Exit status 0 when every check passes; otherwise the first failure is printed as one line,
``zppo doctor: error: preflight failed: <check>: <what is missing>``, with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zppo_core.preflight import SCOPES, run_checks

REPO_ROOT = Path(__file__).resolve().parent.parent


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="config YAML to check (default: the --profile)")
    p.add_argument("--profile", default="tiny", help="configs/<profile>.yaml when --config is not given")
    p.add_argument("--scope", default="pipeline", choices=SCOPES,
                   help="what will run: the whole pipeline, `zppo train` or `zppo eval` (default: pipeline)")
    p.add_argument("--students", default=None, help="comma-separated student specs (default: the config's)")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: the config's)")
    p.add_argument("--output", default=None, help="output folder to check (default: the config's output_dir)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted config override")


def config_path(config: str | None, profile: str) -> Path:
    from zppo_core.errors import MissingPathError

    path = Path(config) if config else REPO_ROOT / "configs" / f"{profile}.yaml"
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    if not path.exists():
        raise MissingPathError(f"config {path} does not exist" if config else f"no profile {profile!r} ({path})")
    return path


def run(args: argparse.Namespace) -> int:
    from zppo_core.config import load_config, parse_overrides

    over = parse_overrides(args.set)
    if args.output:
        over["output_dir"] = args.output
    cfg = load_config(config_path(args.config, args.profile), over)
    csv = lambda s: [x.strip() for x in s.split(",") if x.strip()] if s else None  # noqa: E731
    rep = run_checks(cfg, args.scope, students=csv(args.students), methods=csv(args.methods), config_root=REPO_ROOT)
    print(f"zppo doctor: {cfg.name} ({args.scope})")
    for line in rep.lines():
        print("  " + line)
    rep.raise_for_problem()
    print("all checks passed")
    return 0


__all__ = ["add_arguments", "config_path", "run"]
