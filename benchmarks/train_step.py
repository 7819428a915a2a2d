"""Time one training step of GRPO and of ZPPO on configs/tiny.yaml (a script, not a test).

GRPO and ZPPO runs alternate (``--runs`` each, same process). Prints, per run and method, the mean
over steps 2..N of the step time, its rollout / teacher / update split and tokens/s, then, as
medians over runs:

* **ZPPO's overhead over GRPO excluding the extra rollouts** (target: <= 5 % of a GRPO step):
  the time ZPPO adds outside generation and outside the update, i.e.
  ``(step - rollout - teacher - update)`` of ZPPO minus the same of GRPO -- ZPD selection,
  prompt building, the replay buffer, the extra gathers and metrics. The extra rollouts are
  the method's own work: generating them (student and teacher) and training on them.
* **update cost per token**, ZPPO / GRPO: seconds of the update per 1k tokens through it, so the
  training on the extra (long-prompt) BCQ/NCQ groups is shown to cost what GRPO's tokens cost
  and not hidden by the definition above.
* the raw step times and sequence counts, for the whole picture.

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


def outside(r: dict[str, float]) -> float:
    """Seconds of a step spent outside generation (student, teacher) and the update."""
    return r["perf/step_time_s"] - r["perf/rollout_time_s"] - r["perf/teacher_time_s"] - r["perf/update_time_s"]


def overhead(g: dict[str, float], z: dict[str, float]) -> float:
    """ZPPO's added time outside generation and the update (see module docstring)."""
    return outside(z) - outside(g)


def update_s_per_ktok(r: dict[str, float]) -> float:
    """Update seconds per 1000 tokens (prompt + response) through it."""
    return 1000.0 * r["perf/update_time_s"] / max(r["perf/tokens_per_s"] * r["perf/step_time_s"], 1.0)


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
    zppo_steps: list[float] = []
    per_tok: list[float] = []
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
            zppo_steps.append(res["zppo"]["perf/step_time_s"])
            per_tok.append(update_s_per_ktok(res["zppo"]) / update_s_per_ktok(res["grpo"]))
    o, g, z = statistics.median(over), statistics.median(grpo_steps), statistics.median(zppo_steps)
    print(f"ZPPO overhead over GRPO excluding the extra rollouts: {o:+.3f}s per step "
          f"({100 * o / g:+.1f}% of a median GRPO step of {g:.2f}s; target <= 5%)")
    print(f"update cost per token, ZPPO / GRPO: {statistics.median(per_tok):.2f}")
    print(f"whole step: ZPPO {z:.2f}s vs GRPO {g:.2f}s (ZPPO also generates and trains on its BCQ/NCQ groups); "
          f"medians of {args.runs} alternating runs; load avg {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
