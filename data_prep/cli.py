"""``zppo curate``: build ZPPO-77K with DuckDB from real sources or the offline generator.

    zppo curate --out DIR [--vero PATH_OR_ID] [--mmfr PATH_OR_ID] [--synthetic --scale N]
                [--seed S] [--config configs/paper.yaml] [--tokenizer SPEC]

Writes ``DIR/curation.duckdb``, ``DIR/zppo77k.parquet``, ``DIR/images/`` and
``DIR/report.{json,md}``. With ``--synthetic`` both sources are first generated under
``DIR/sources`` (N rows of Vero and the matching share of MMFineReason) and curated from there.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from data_prep.synthetic import with_synthetic_sources
from zppo_core.config import SYNTHETIC_WORLDS, CurationConfig, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from zppo_core.cli_args import add_output

    add_output(parser, "output folder (required)")
    parser.add_argument("--vero", help="Vero-600k: local folder/file of parquet or hub id")
    parser.add_argument("--mmfr", help="MMFineReason-SFT-586K: local folder/file of parquet or hub id")
    parser.add_argument("--synthetic", action="store_true", help="generate both sources offline first")
    parser.add_argument("--scale", type=int, help="synthetic Vero rows (MMFineReason scaled alike)")
    parser.add_argument("--world", choices=SYNTHETIC_WORLDS,
                        help="what --synthetic rows hold: figures (image VQA, default) or miniature (text-only "
                             "additions; implies keeping rows without an image)")
    parser.add_argument("--seed", type=int, help="sampling (and generation) seed")
    parser.add_argument("--config", help="YAML config; its `curation` section is used")
    parser.add_argument("--tokenizer", help="prompt-token counter: tokenizer folder, hub id or builtin:qwen3.5")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def resolve_config(args: argparse.Namespace) -> CurationConfig:
    cfg = load_config(args.config).curation if args.config else CurationConfig()
    changes = {}
    for name in ("vero", "mmfr", "seed", "tokenizer"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.synthetic:
        changes["synthetic"] = True
    if args.scale is not None:
        changes["synthetic_scale"] = args.scale
    if args.world is not None:
        changes["synthetic_world"] = args.world
        if args.world == "miniature":
            changes["require_images"] = False
    return dataclasses.replace(cfg, **changes)


class _RichProgress:
    """Adapts the library's ``progress(stage, done, total)`` callback to rich progress bars."""

    def __init__(self) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn())
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)


def run(args: argparse.Namespace) -> int:
    from data_prep.curate import run_curation

    cfg = resolve_config(args)
    if not args.output:
        from zppo_core.errors import UserError

        raise UserError("--output FOLDER is required (where zppo77k.parquet and the report go)")
    out = Path(args.output)
    progress = None if args.quiet else _RichProgress()
    ctx = progress.bar if progress else _Null()
    from zppo_core.errors import check_local_path

    for key in ("vero", "mmfr", "tokenizer"):
        value = getattr(cfg, key)
        if value and (key == "tokenizer" or not cfg.synthetic):
            check_local_path(value, f"curation.{key}")
    with ctx:
        if cfg.synthetic:
            cfg = with_synthetic_sources(cfg, out / "sources", progress=progress)
        result = run_curation(cfg, out, progress=progress)
    for source, c in result["counts"].items():
        print(f"{source}: {c['in']} in, {c['kept']} kept, {c['rejected']} rejected")
    print(f"wrote {result['parquet']} (content hash {result['content_hash'][:16]}), report {result['report_md']}")
    return 0


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
