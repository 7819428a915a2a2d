"""Benchmark: cost of running the grader's symbolic steps in a killable worker process.

    python benchmarks/grading_worker.py [--rounds 5] [--copies 4]

Grades a fixed set of rollout-like (response, gold) pairs with :func:`zppo_core.grading.reward`
two ways, alternating, in this one process: ``worker`` (the default: sympy in a worker process
that is killed at the budget) and ``in_process`` (the earlier alarm/thread bound, reached by
making the worker unavailable). Prints per-answer medians over ``--rounds`` rounds, the ratio
worker / in-process, and how many pairs take each path (fast path = decided before sympy).
The worker's one-time start is excluded (it is started before timing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zppo_core import grading, symbolic_worker  # noqa: E402

#: (boxed answer, gold): exact / numeric (fast path), wrong numbers, equivalent and wrong
#: expressions, MC letters, words (symbolic path) — the mix a math-heavy RL step grades.
PAIRS: list[tuple[str, str]] = [
    ("12", "12"), ("0.5", "\\frac{1}{2}"), ("1,000", "1000"), ("B", "B"), ("(C)", "B"),
    ("13", "12"), ("7", "12"), ("2.5", "3"), ("-4", "4"), ("100", "10"),
    ("\\sqrt{18}", "3\\sqrt{2}"), ("\\frac{\\pi}{2}", "90^\\circ"), ("x^2+2x+1", "(x+1)^2"),
    ("2\\sqrt{3}", "\\sqrt{12}"), ("\\frac{3}{4}", "0.7"), ("x=5", "5"), ("(1,2)", "(1, 2)"),
    ("\\sqrt{2}", "1.41"), ("cat", "dog"), ("blue", "\\text{blue}"), ("30\\%", "0.3"),
]


def _grade_all(copies: int) -> float:
    """Seconds per answer over ``copies`` passes of PAIRS."""
    start = time.perf_counter()
    for _ in range(copies):
        for pred, gold in PAIRS:
            grading.reward(f"<think>...</think> so \\boxed{{{pred}}}.", gold)
    return (time.perf_counter() - start) / (copies * len(PAIRS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--copies", type=int, default=4)
    args = ap.parse_args()
    real_compare = symbolic_worker.compare
    assert real_compare("1", "1", 120.0) is True  # start the worker outside the timing
    before = grading.grading_stats()
    times: dict[str, list[float]] = {"worker": [], "in_process": []}
    for _ in range(args.rounds):
        for mode in ("worker", "in_process"):
            symbolic_worker.compare = real_compare if mode == "worker" else (lambda *a: symbolic_worker.UNAVAILABLE)
            times[mode].append(_grade_all(args.copies))
    symbolic_worker.compare = real_compare
    after = grading.grading_stats()
    symbolic = (after["in_process"] - before["in_process"]) // (args.rounds * args.copies)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "pairs": len(PAIRS), "symbolic_path_pairs": symbolic, "rounds": args.rounds,
        "ms_per_answer_median": {k: round(v * 1e3, 3) for k, v in med.items()},
        "ratio_worker_over_in_process": round(med["worker"] / med["in_process"], 3),
        "timeouts": after["timeouts"] - before["timeouts"],
    }, indent=1))
    symbolic_worker.shutdown()


if __name__ == "__main__":
    main()
