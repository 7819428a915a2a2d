"""Our GRPO step against TRL's GRPOTrainer on the identical CPU workload (a script, not a test).

Workload (both sides): the builtin tiny Qwen3 (fp32, built from its config), 8 prompts x G = 8
completions per step, at most 64 new tokens, temperature 1.0, top-p 1, no top-k, token-level loss
(TRL ``loss_type="dapo"``), no KL, lr 1e-6, one optimizer update per step (64 completions: TRL
``per_device_train_batch_size=8, gradient_accumulation_steps=8``; ours ``micro_batch=8``,
``algo.iterations=1``), 2 threads. The prompts are the same rows of the generated arithmetic set,
rendered with the same user text (question + the RL closer) through the same chat template.
The reward is exact answer match on both sides (it only shapes advantages; nothing is skipped).

Each run is a fresh subprocess; ours and TRL's alternate (``--runs`` each), in the same process
tree and time window. A run's step time is the median over its steps 2..N (step 1 carries
warm-up); the script prints the median over runs of each side, the ratio ours / TRL, and the
generated (completion) tokens per step on each side so equal work is visible.

TRL is a benchmark-only dependency: it lives in its own venv (``.venv-trl``, made on first use
with pinned versions); nothing in the product imports it.

    python benchmarks/vs_trl.py [--runs 3] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRL_VENV = ROOT / ".venv-trl"
TRL_PINS = ["torch==2.13.0", "trl==1.16.0", "transformers==5.23.0", "accelerate==1.15.0", "datasets==5.2.0",
            "tokenizers==0.23.3"]
PROMPTS, G, NEW_TOKENS, LR, THREADS = 8, 8, 64, 1e-6, 2


def ensure_trl_venv() -> Path:
    py = TRL_VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {TRL_VENV.name} with {' '.join(TRL_PINS)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TRL_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *TRL_PINS], check=True)
    return py


def prepare(work: Path) -> tuple[Path, Path]:
    """The model folder and a JSONL of the prompts (user text + answer), shared by both sides."""
    from zppo_core.models import resolve
    from zppo_core.prompts import build_plain
    from zppo_core.trainer.toy_data import make_toy_dataset

    model_dir = Path(resolve("builtin:tiny-qwen3"))
    data = make_toy_dataset(work / "data")  # the trainer's offline default set (configs/tiny.yaml)
    import pandas as pd

    rows = pd.read_parquet(data)
    prompts = work / "prompts.jsonl"
    with prompts.open("w") as f:
        for q, a in zip(rows["question"], rows["answer"]):
            f.write(json.dumps({"text": build_plain(q), "answer": str(a)}) + "\n")
    return model_dir, prompts


def side_zppo(work: Path, steps: int, model_dir: Path) -> dict:
    import torch

    from zppo_core.config import load_config
    from zppo_core.trainer import train

    torch.set_num_threads(THREADS)
    out = work / f"zppo-{time.time_ns()}"
    cfg = load_config(str(ROOT / "configs" / "tiny.yaml"), {
        "model.student": str(model_dir), "zppo.method": "grpo", "rollout.group_size": G, "rollout.student.max_new_tokens": NEW_TOKENS,
        "rollout.student.temperature": 1.0, "algo.iterations": 1, "algo.loss_agg": "token", "optim.lr": LR,
        "schedule.rollout_batch": PROMPTS, "schedule.micro_batch": 8, "schedule.total_steps": steps,
        "schedule.checkpoint_every": 10_000, "data.train_path": str(work / "data" / "zppo77k.parquet"),
    })
    res = train(cfg, out, max_steps=steps)
    rows = [json.loads(x) for x in open(res["metrics_path"])]
    return {"step_s": [r["perf/step_time_s"] for r in rows], "gen_tokens": [r["train/response_tokens"] for r in rows]}


def side_trl(work: Path, steps: int, model_dir: Path, prompts: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(THREADS)
    rows = [json.loads(x) for x in prompts.open()]
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": r["text"]}], "answer": r["answer"]} for r in rows])

    def reward(completions, answer, **_):
        return [float(a in c[0]["content"]) for c, a in zip(completions, answer)]

    class Timer(TrainerCallback):
        def __init__(self):
            self.t0, self.step_s, self.gen_tokens = 0.0, [], []

        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.step_s.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                self.gen_tokens.append(logs["completions/mean_length"] * PROMPTS * G)

    args = GRPOConfig(
        output_dir=str(work / f"trl-{time.time_ns()}"), per_device_train_batch_size=8, gradient_accumulation_steps=8,
        num_generations=G, max_completion_length=NEW_TOKENS, temperature=1.0, top_p=1.0, learning_rate=LR,
        loss_type="dapo", beta=0.0, num_iterations=1, max_steps=steps, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, bf16=False, seed=0, dataloader_num_workers=0,
    )
    timer = Timer()
    trainer = GRPOTrainer(model=str(model_dir), reward_funcs=reward, args=args, train_dataset=ds, callbacks=[timer])
    trainer.train()
    return {"step_s": timer.step_s, "gen_tokens": timer.gen_tokens}


def _one_run(side: str, work: Path, steps: int, model_dir: Path, prompts: Path, trl_py: Path) -> dict:
    py = str(trl_py) if side == "trl" else sys.executable
    out = work / f"{side}-result.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="")
    cmd = [py, __file__, "--side", side, "--work", str(work), "--steps", str(steps), "--model-dir", str(model_dir),
           "--prompts", str(prompts), "--out", str(out)]
    subprocess.run(cmd, check=True, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL)
    res = json.loads(out.read_text())
    timed = res["step_s"][1:] or res["step_s"]
    toks = res["gen_tokens"][1:] or res["gen_tokens"]
    return {"step_s": statistics.median(timed), "gen_tokens": statistics.mean(toks) if toks else float("nan")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="runs per side, alternating")
    p.add_argument("--steps", type=int, default=6, help="steps per run; steps 2.. are timed")
    p.add_argument("--side", choices=["zppo", "trl"], help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--prompts", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.side:  # a child run
        fn = side_zppo if a.side == "zppo" else side_trl
        extra = (Path(a.model_dir),) if a.side == "zppo" else (Path(a.model_dir), Path(a.prompts))
        Path(a.out).write_text(json.dumps(fn(Path(a.work), a.steps, *extra)))
        return
    trl_py = ensure_trl_venv()
    res: dict[str, list[dict]] = {"zppo": [], "trl": []}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        model_dir, prompts = prepare(work)
        for i in range(a.runs):
            for side in ("zppo", "trl"):
                r = _one_run(side, work, a.steps, model_dir, prompts, trl_py)
                res[side].append(r)
                print(f"run {i + 1} {side:4s} step {r['step_s']:.2f}s  gen tokens/step {r['gen_tokens']:.0f}  "
                      f"(load avg {os.getloadavg()[0]:.1f})", flush=True)
    med = {s: statistics.median(r["step_s"] for r in rs) for s, rs in res.items()}
    tok = {s: statistics.median(r["gen_tokens"] for r in rs) for s, rs in res.items()}
    print(f"ours {med['zppo']:.2f} s/step ({tok['zppo']:.0f} gen tokens/step)  TRL {med['trl']:.2f} s/step "
          f"({tok['trl']:.0f} gen tokens/step)  ratio ours/TRL {med['zppo'] / med['trl']:.2f}  "
          f"(median of {a.runs} alternating runs each, {a.steps} steps per run)")


if __name__ == "__main__":
    main()
