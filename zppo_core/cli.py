"""The ``zppo`` console script. Each subcommand lives in the package that owns it and is
imported lazily, so ``zppo --help`` stays fast and a missing optional dependency of one
stage never breaks another."""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module with ``add_arguments(parser)`` and ``run(args) -> int``, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "curate": ("data_prep.cli", "build ZPPO-77K with DuckDB (real sources or offline synthetic)"),
    "train": ("zppo_core.trainer.cli", "run the ZPPO / GRPO trainer (Algorithm 1)"),
    "eval": ("eval.cli", "evaluate a model on the benchmark suite"),
    "models": ("zppo_core.models.cli", "build tiny offline models / convert SmolLM2"),
    "pipeline": ("flows.cli", "run the full Prefect pipeline (curate -> train -> eval -> report)"),
    "report": ("tasks.report_cli", "paper tables (Tabs. 1, 2, 4, 10, 11) + Tab. 14 bootstrap from MLflow runs"),
    "core-demo": ("zppo_core.demo", "show the algorithm core on a built-in example"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zppo", description="ZPPO pipeline command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == chosen:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
