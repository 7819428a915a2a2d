"""The ``zppo`` console script. Each subcommand lives in the package that owns it and is
imported lazily, so ``zppo --help`` stays fast and a missing optional dependency of one
stage never breaks another. It sits on the top floor (beside the flows) because it reaches
every floor: the library (``zppo_core``), curation, evaluation, tasks and flows.

Every subcommand reports an expected error (config, model spec, missing path, data, hub or
server unreachable, failed preflight) as one line, ``zppo <command>: error: ...``, with exit
status 2 (:mod:`zppo_core.errors`); ``-v/--verbose`` keeps third-party progress bars and warnings.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Subcommand:
    module: str  # has ``add_arguments(parser)`` and ``run(args) -> int``
    help: str
    example: str


SUBCOMMANDS: dict[str, Subcommand] = {
    "doctor": Subcommand("zppo_core.doctor", "check in seconds what a config needs (GPUs, vLLM, servers, hub, paths)",
                         "zppo doctor --config configs/paper.yaml"),
    "curate": Subcommand("data_prep.cli", "build ZPPO-77K with DuckDB (real sources or offline synthetic)",
                         "zppo curate --synthetic --scale 2000 --output runs/curation"),
    "train": Subcommand("zppo_core.trainer.cli", "run the ZPPO / GRPO trainer (Algorithm 1) in this process",
                        "zppo train --config configs/tiny.yaml --method zppo --output runs/tiny/train"),
    "eval": Subcommand("eval.cli", "evaluate a model on the benchmark suite",
                       "zppo eval --model builtin:tiny-qwen3.5-vl --benchmarks offline --no-judge --output runs/eval"),
    "models": Subcommand("zppo_core.models.cli", "list the builtin offline models or build one into the cache",
                         "zppo models build builtin:tiny-qwen3.5-vl"),
    "pipeline": Subcommand("flows.cli", "run the full Prefect pipeline (curate -> train -> eval -> report)",
                           "zppo pipeline --profile tiny --methods grpo,zppo"),
    "report": Subcommand("tasks.report_cli",
                         "paper tables (Tabs. 1, 2, 4, 10, 11) + Tab. 14 bootstrap from MLflow runs",
                         "zppo report <pipeline-run-id> --run-folder runs/tiny --pair zppo:grpo_replay"),
    "core-demo": Subcommand("zppo_core.demo", "show the algorithm core on a built-in example",
                            "zppo core-demo --seed 0"),
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("zppo")
    except PackageNotFoundError:
        from zppo_core import __version__

        return __version__


def _parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="zppo", description="ZPPO: RL post-training with the teacher in the prompt, never in the gradient.",
        epilog="Run `zppo COMMAND --help` for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"zppo {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser, sub


def main(argv: list[str] | None = None) -> int:
    from zppo_core.errors import EXIT_USER_ERROR, format_error, is_expected

    parser, sub = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, sc in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=sc.help, description=sc.help, epilog=f"example:\n  {sc.example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == chosen:
            mod = importlib.import_module(sc.module)
            mod.add_arguments(p)
            if not any("--verbose" in a.option_strings for a in p._actions):
                p.add_argument("-v", "--verbose", action="store_true",
                               help="show third-party progress bars and warnings")
            p.set_defaults(_run=mod.run, _kept=getattr(mod, "INTERRUPT_KEPT", "what finished is kept"))
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    from zppo_core import console
    from zppo_core.interrupt import EXIT_INTERRUPTED, interrupt_line, terminate_as_interrupt

    console.configure(verbose=bool(getattr(args, "verbose", False)) or None)
    terminate_as_interrupt()  # SIGTERM cleans up like Ctrl-C (`zppo pipeline` installs its own)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(interrupt_line(args.command, getattr(args, "_kept", "what finished is kept")), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - expected errors become one line, the rest keep their trace
        if not is_expected(e):
            raise
        print(format_error(args.command, e), file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
