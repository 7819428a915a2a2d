"""Time one training step of GRPO and of ZPPO on configs/tiny.yaml (a script, not a test).

GRPO and ZPPO runs alternate (``--runs`` each, same process). Prints, per run and method, the mean
over steps 2..N of the step time, its rollout / teacher / update split and tokens/s, then ZPPO's
overhead over GRPO excluding the extra rollouts, i.e. (ZPPO - GRPO) wall time minus the extra
student-generation, teacher and compression time -- the cost of the ZPD bookkeeping and of updating
on the extra BCQ/NCQ groups -- as the median over runs (target: <= 5 % of a GRPO step).

    python benchmarks/train_step.py [--config configs/tiny.yaml] [--steps 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

KEYS = ("perf/step_time_s", "perf/rollout_time_s", "perf/teacher_time_s", "perf/update_time_s",
        "perf/tokens_per_s", "perf/gen_tokens_per_s", "rollout/sequences", "zppo/bcq_count", "zppo/ncq_count")


def run(config: str, method: str, steps: int, work: Path, out: Path) -> dict[str, float]:
    from zppo_core.config import load_config
    from zppo_core.trainer import train

    # toy data (train_path ''), written into each run's folder from the same seed
    cfg = load_config(config, {"zppo.method": method, "schedule.total_steps": steps, "data.train_path": ""})
    res = train(cfg, out, max_steps=steps)
    rows = [json.loads(x) for x in open(res["metrics_path"])]
    timed = rows[1:] or rows  # step 1 carries warm-up (first forward, allocator)
    return {k: sum(float(r[k]) for r in timed) / len(timed) for k in KEYS}


def overhead(g: dict[str, float], z: dict[str, float]) -> float:
    """ZPPO - GRPO step time minus ZPPO's extra student-generation and teacher/compression time."""
    extra_gen = (z["perf/rollout_time_s"] - g["perf/rollout_time_s"]) + z["perf/teacher_time_s"]
    return (z["perf/step_time_s"] - g["perf/step_time_s"]) - extra_gen


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/tiny.yaml")
    p.add_argument("--steps", type=int, default=4, help="steps per method; steps 2.. are averaged")
    p.add_argument("--runs", type=int, default=3, help="alternating runs per method")
    args = p.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    over: list[float] = []
    grpo_steps: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.runs):
            res = {m: run(args.config, m, args.steps, Path(d), Path(d) / f"{m}-{i}") for m in ("grpo", "zppo")}
            for m, r in res.items():
                print(f"run {i + 1} {m:5s} step {r['perf/step_time_s']:7.2f}s  rollout {r['perf/rollout_time_s']:6.2f}s  "
                      f"teacher {r['perf/teacher_time_s']:6.2f}s  update {r['perf/update_time_s']:6.2f}s  "
                      f"{r['perf/tokens_per_s']:8.1f} tok/s  gen {r['perf/gen_tokens_per_s']:7.1f} tok/s  "
                      f"seqs {r['rollout/sequences']:.0f} (bcq {r['zppo/bcq_count']:.0f}, "
                      f"ncq {r['zppo/ncq_count']:.0f})", flush=True)
            over.append(overhead(res["grpo"], res["zppo"]))
            grpo_steps.append(res["grpo"]["perf/step_time_s"])
    o, g = statistics.median(over), statistics.median(grpo_steps)
    print(f"ZPPO overhead over GRPO excluding extra rollouts/teacher: {o:+.2f}s per step "
          f"({100 * o / g:+.1f}% of a median GRPO step of {g:.2f}s; median of {args.runs} alternating runs; "
          f"load avg {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
