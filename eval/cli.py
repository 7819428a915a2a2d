"""``zppo eval``: list the registry or evaluate one model on benchmarks.

    zppo eval --list
    zppo eval --model builtin:tiny-qwen3.5-vl --benchmarks OfflineVLM,OfflineVideo --output runs/eval \\
        [--max-items N] [--config configs/tiny.yaml] [--set eval.batch_size=8 ...] [--data-dir DIR]

Exit codes: 0 done; 1 a benchmark named one by one had no data; 2 bad arguments or config; 3 the
output folder is in use by another writer (its PID is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", action="store_true", help="print the benchmark registry and exit")
    p.add_argument("--model", help="model spec (builtin:..., HF id or local folder)")
    p.add_argument("--benchmarks", default="", help="comma list: abbreviations, VLM/LLM/Video, all, offline "
                                                    "(default: eval.benchmarks of the config)")
    from zppo_core.cli_args import add_output

    add_output(p, "output folder (default: runs/eval)", default="runs/eval")
    p.add_argument("--max-items", type=int, default=None, help="first N items per benchmark")
    p.add_argument("--config", default=None, help="YAML config (paper defaults when omitted)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override, e.g. eval.sampling.max_new_tokens=64 (repeatable)")
    p.add_argument("--data-dir", default=None, help="local copy of the (single) benchmark's data")
    p.add_argument("--no-judge", action="store_true", help="do not build a judge (eval.use_judge=false)")


def run(args: argparse.Namespace) -> int:
    """Expected errors (config, model spec, missing path, unknown benchmark) raise; ``zppo``
    prints them as one line (``zppo eval: error: ...``)."""
    from eval import registry
    from zppo_core.errors import UserError, check_local_path, format_error

    if args.list:
        print(registry.listing())
        return 0
    if not args.model:
        raise UserError("--model is required (or use --list)")
    from zppo_core.config import Config, config_from_dict, load_config, parse_overrides
    from zppo_core.preflight import PreflightError, Probe, check_vllm, spec_problem

    over = parse_overrides(args.set)
    if args.no_judge:
        over["eval.use_judge"] = False
    cfg = load_config(args.config, over) if args.config else config_from_dict(Config().to_dict(), over)
    names = args.benchmarks or cfg.eval.benchmarks
    try:  # a typo in a benchmark name is the first thing to hear about
        benches = registry.select(names)
    except KeyError as e:
        raise UserError(e.args[0]) from None
    why = spec_problem(args.model, "--model", Probe())
    if why:
        raise PreflightError(why)
    vllm = check_vllm(cfg, "eval", Probe())
    if not vllm.ok and not args.config and "model.student_backend" not in over:
        # the paper's default backend is vLLM; a laptop without it evaluates with transformers
        print(f"zppo eval: note: {vllm.detail}; evaluating with the transformers backend instead "
              "(--set model.student_backend=vllm to require vLLM)", file=sys.stderr)
        cfg = config_from_dict(cfg.to_dict(), {"model.student_backend": "transformers"})
        vllm = check_vllm(cfg, "eval", Probe())
    if not vllm.ok:
        raise PreflightError(f"vllm: {vllm.detail} (or --set model.student_backend=transformers)")
    if args.data_dir:
        check_local_path(args.data_dir if args.data_dir.startswith((".", "/", "~")) else "./" + args.data_dir,
                         "--data-dir")
    if args.data_dir and len(benches) != 1:
        raise UserError("--data-dir needs exactly one benchmark")
    from zppo_core.locks import FolderBusy, folder_lock

    try:
        with folder_lock(args.output, "zppo eval"):
            results = _evaluate_all(args, cfg, benches)
    except FolderBusy as e:
        print(format_error("eval", e))
        return 3
    missing = [a for a in explicit_names(names) if results[a].get("skip_kind") == "data"]
    if missing:
        print(format_error("eval", f"no data for the requested benchmark(s) {', '.join(missing)} "
                                   "(see the reasons above)"))
        return 1
    return 0


def explicit_names(names: list[str] | str) -> list[str]:
    """Abbreviations named one by one in a selection (not through ``all``, ``offline`` or a family)."""
    from eval import registry

    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return [registry.get(n).abbr for n in names if n.lower() not in ("all", "offline") and n not in registry.FAMILIES]


def _evaluate_all(args: argparse.Namespace, cfg: Any, benches: list[Any]) -> dict[str, dict[str, Any]]:
    from eval.report import family_table
    from eval.runner import evaluate
    from zppo_core.console import ProgressLine
    from zppo_core.redact import redact

    results = {}
    for b in benches:
        line = ProgressLine(f"eval {b.abbr}", "items", lambda t: print(t, flush=True))
        r = evaluate(args.model, b, args.output, eval_cfg=cfg.eval, model_cfg=cfg.model, max_items=args.max_items,
                     data_dir=args.data_dir, progress=line.update)
        results[b.abbr] = r
        acc = "skipped: " + r["skipped"] if r["skipped"] else f"{r['accuracy']:.1f} (n={r['n']})"
        print(f"{b.abbr:<12} {acc}")
    (Path(args.output) / "summary.json").write_text(json.dumps(redact(results), indent=2, default=str))
    offline = all(b.offline for b in benches)
    print(family_table({"model": results}, offline=offline))
    return results
