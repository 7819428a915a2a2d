"""The miniature: the paper's comparison in small on a CPU (protocol: docs/miniature.md).

1. **Reading gate** (:mod:`benchmarks.miniature_gate`): plain vs BCQ accuracy of the student on
   hard in-family items; printed first; the comparison runs whatever its verdict, and says it.
2. **Comparison**: Base, every RL row (GRPO, GRPO†, GRPO†+BCQ, GRPO†+NCQ, ZPPO) and the
   distillation rows of :data:`DISTILL_METHODS` (Off-/On-Distill(†)) x seeds, each trained by the real
   trainer (``python -m zppo_core.trainer.cli``, same steps and batch for every method) and
   evaluated by the real evaluator (``eval.runner.evaluate``) on MiniAdd (in-family test split)
   and the held-out families MiniMul / MiniSub.
3. **Table**: mean accuracy with a 95 % interval per method and family -- Student t over seeds
   (k >= 2), bootstrap over items with one seed -- plus ZPPO - GRPO† and method - Base.
   Written to ``<out>/results.json`` and ``<out>/table.md``; logged to MLflow (local store in
   ``<out>/mlruns``) with every training step's metrics as learning curves.

    python benchmarks/miniature.py                      # full protocol (make miniature)
    python benchmarks/miniature.py --smoke --out DIR    # 1 seed, 2 steps, 2 methods, small eval

Each (method, seed) job writes ``result.json`` in its folder, stamped (:func:`job_stamp`) with
the fingerprints of the shipped student and teacher, a hash of the code that trains and
evaluates, and the protocol (config, steps, items, overrides); a re-run reuses a finished job
only when its stamp is the current one, and says which part changed otherwise. The gate
(``gate.json``) and the table (``results.json``) carry the stamp too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RL_METHODS = ["grpo", "grpo_replay", "grpo_replay_bcq", "grpo_replay_ncq", "zppo"]
#: the distillation baselines (Off-/On-Distill and their replay-buffer † variants), run and tabulated
#: like the RL rows (same steps, batch and teacher)
DISTILL_METHODS: list[str] = ["off_distill", "off_distill_replay", "on_distill", "on_distill_replay"]
IN_FAMILY = "MiniAdd"
#: the reading gate's items: seed 0's 48 items chose the student's stage-3 length (docs/miniature.md),
#: so the headline is measured on items of another seed, never used to choose anything
GATE_SEED, GATE_ITEMS = 3, 144
#: the code a job's result depends on (trainer, evaluator, world, curation; this script; its config)
STAMPED_CODE = ("zppo_core", "eval", "data_prep", "benchmarks/miniature.py", "benchmarks/miniature_gate.py")


def job_stamp(args: argparse.Namespace) -> dict[str, Any]:
    """What made a result: the shipped models, the code and the protocol (see module docstring)."""
    from tasks.hashing import source_tree_hash
    from zppo_core.models.shipped import fingerprint

    return {"student": fingerprint("mini-student"), "teacher": fingerprint("mini-teacher"),
            "code": source_tree_hash(*STAMPED_CODE),
            "config": hashlib.sha256(Path(args.config).read_bytes()).hexdigest()[:16],
            "steps": args.steps, "eval_size": args.eval_size, "set": sorted(args.set)}


def cached_result(res_path: Path, stamp: dict[str, Any]) -> dict[str, Any] | None:
    """The finished result at ``res_path`` when it was made under ``stamp``, else None (after
    saying which parts of the stamp differ)."""
    if not res_path.exists():
        return None
    res = json.loads(res_path.read_text())
    old = res.get("stamp") or {}
    stale = sorted(k for k in stamp if old.get(k) != stamp[k])
    if not stale:
        return res
    print(f"  {res_path.parent.relative_to(res_path.parents[2])}: stale result ({', '.join(stale)} changed), "
          "running it again", flush=True)
    return None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_job(args: argparse.Namespace, method: str, seed: int, out: Path) -> dict[str, Any]:
    """Train (unless ``base``) and evaluate one (method, seed); result cached in result.json."""
    job = out / method / f"seed{seed}"
    res_path = job / "result.json"
    cached = cached_result(res_path, args.stamp)
    if cached is not None:
        return cached
    job.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--config", args.config, "--job", method, str(seed),
           "--out", str(out), "--steps", str(args.steps), "--eval-size", str(args.eval_size)]
    cmd += [x for s in args.set for x in ("--set", s)]
    t0 = time.perf_counter()
    with (job / "job.log").open("w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)
    if rc != 0 or not res_path.exists():
        raise RuntimeError(f"job {method}/seed{seed} failed (exit {rc}); see {job / 'job.log'}")
    print(f"  {method:<16} seed {seed}: done in {time.perf_counter() - t0:.0f}s", flush=True)
    return json.loads(res_path.read_text())


def _load_cfg(args: argparse.Namespace, method: str, seed: int, out: Path):
    from zppo_core.config import load_config, parse_overrides

    return load_config(args.config, {**parse_overrides(args.set),
        "zppo.method": method if method != "base" else "grpo", "schedule.seed": seed,
        "schedule.total_steps": args.steps, "data.train_path": str(out / "data" / "zppo77k.parquet"),
        "eval.offline_size": args.eval_size, "eval.batch_size": args.eval_size, "eval.seed": seed,
    })


def job_main(args: argparse.Namespace) -> int:
    """Inside the job subprocess: train with the real trainer CLI, then evaluate the final model."""
    method, seed = args.job[0], int(args.job[1])
    out = Path(args.out)
    job = out / method / f"seed{seed}"
    cfg = _load_cfg(args, method, seed, out)
    model = cfg.model.student
    steps_rows: list[dict[str, Any]] = []
    if method != "base":
        sets = [*args.set, f"schedule.seed={seed}", f"schedule.total_steps={args.steps}",
                f"data.train_path={cfg.data.train_path}"]
        cmd = [sys.executable, "-m", "zppo_core.trainer.cli", "--config", args.config, "--method", method,
               "--output", str(job / "train")] + [x for s in sets for x in ("--set", s)]
        subprocess.check_call(cmd, env=_env(), cwd=REPO)
        model = str(job / "train" / "final_model")
        steps_rows = [json.loads(ln) for ln in (job / "train" / "metrics.jsonl").read_text().splitlines() if ln]
    from eval import registry
    from eval.runner import evaluate

    results = {}
    for b in registry.select(cfg.eval.benchmarks):
        r = evaluate(model, b, job / "eval", eval_cfg=cfg.eval, model_cfg=cfg.model)
        import pandas as pd

        recs = pd.read_parquet(r["records"])
        results[b.abbr] = {"accuracy": r["accuracy"] / 100.0, "n": r["n"],
                           "scores": {str(k): float(v) for k, v in zip(recs["item_id"], recs["score"])}}
    (job / "result.json").write_text(json.dumps({"method": method, "seed": seed, "model": model, "stamp": job_stamp(args),
                                                 "eval": results, "steps": steps_rows}))
    return 0


def _ensure_data(args: argparse.Namespace, out: Path) -> None:
    from zppo_core.config import load_config
    from zppo_core.trainer.toy_data import ToySpec, make_toy_dataset

    cfg = load_config(args.config)
    if not (out / "data" / "zppo77k.parquet").exists():
        make_toy_dataset(out / "data", ToySpec(kind=cfg.data.toy_kind, n=cfg.data.toy_size, seed=0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "configs" / "miniature.yaml"))
    p.add_argument("--out", default=None, help="run folder (default: the config's output_dir)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=RL_METHODS + DISTILL_METHODS)
    p.add_argument("--steps", type=int, default=None, help="RL steps per run (default: schedule.total_steps)")
    p.add_argument("--eval-size", type=int, default=None, help="items per test family (default: eval.offline_size)")
    p.add_argument("--gate-items", type=int, default=GATE_ITEMS)
    p.add_argument("--gate-seed", type=int, default=GATE_SEED, help="seed of the gate's items (see GATE_SEED)")
    p.add_argument("--jobs", type=int, default=2, help="jobs at once (each one CPU thread)")
    p.add_argument("--skip-gate", action="store_true")
    p.add_argument("--gate-only", action="store_true")
    p.add_argument("--smoke", action="store_true", help="1 seed, 2 steps, grpo + zppo, 6 items per family")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override for every run (repeatable), e.g. --set optim.lr=1e-5")
    p.add_argument("--job", nargs=2, metavar=("METHOD", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from zppo_core.config import load_config, parse_overrides

    cfg = load_config(args.config, parse_overrides(args.set))
    if args.smoke:
        args.seeds, args.methods, args.steps, args.eval_size, args.gate_items = [0], ["grpo", "zppo"], 2, 6, 4
    args.steps = args.steps or cfg.schedule.total_steps
    args.eval_size = args.eval_size or cfg.eval.offline_size
    out = Path(args.out or cfg.output_dir).resolve()
    if args.job:
        return job_main(args)
    args.stamp = job_stamp(args)
    return orchestrate(args, cfg, out)


def orchestrate(args: argparse.Namespace, cfg: Any, out: Path) -> int:
    from miniature_gate import reading_gate
    from miniature_report import build_report, log_mlflow

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    gate = None
    if not args.skip_gate:
        gate = reading_gate(cfg, args.gate_items, seed=args.gate_seed)
        print("\n".join(gate.lines()), flush=True)
        (out / "gate.json").write_text(json.dumps({**gate.to_dict(), "seed": args.gate_seed, "stamp": args.stamp},
                                                  indent=2))
        if not gate.passed:
            print("  the student does not read its candidates well enough: expect BCQ to add nothing", flush=True)
    if args.gate_only:
        return 0
    _ensure_data(args, out)
    jobs = [("base", s) for s in args.seeds] + [(m, s) for s in args.seeds for m in args.methods]
    print(f"comparison: {len(jobs)} jobs ({len(args.methods)} methods x {len(args.seeds)} seeds + base), "
          f"{args.steps} steps each, {args.eval_size} items per family", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda j: run_job(args, j[0], j[1], out), jobs))
    report = build_report(results, gate.to_dict() if gate else None,
                          {"steps": args.steps, "seeds": args.seeds, "eval_size": args.eval_size,
                           "rollout_batch": cfg.schedule.rollout_batch, "group_size": cfg.rollout.group_size,
                           "wall_s": round(time.perf_counter() - t0, 1), "stamp": args.stamp})
    (out / "results.json").write_text(json.dumps(report["json"], indent=2))
    (out / "table.md").write_text(report["markdown"])
    print(report["markdown"], flush=True)
    uri = log_mlflow(out, cfg, results, report)
    print(f"\nwritten: {out / 'table.md'}, {out / 'results.json'}; MLflow store {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
