"""Our GRPO step against TRL's GRPOTrainer on identical CPU workloads (a script, not a test).

Two workloads, each run by both sides: ``short``, the builtin tiny Qwen3 (warm-started: it stops
after ~17 tokens); ``full``, an untrained tiny Qwen3 of the same shape and tokenizer, initialised
from a fixed seed, which writes the whole 64-token budget. Otherwise the same (both sides,
both workloads): fp32, 8 prompts x G = 8
completions per step, at most 64 new tokens, temperature 1.0, top-p 1, no top-k, token-level loss
(TRL ``loss_type="dapo"``), no KL, lr 1e-6, one optimizer update per step (64 completions: TRL
``per_device_train_batch_size=8, gradient_accumulation_steps=8``; ours ``micro_batch=8``,
``algo.iterations=1``), 2 threads. The prompts are the same rows of the generated arithmetic set,
rendered with the same user text (question + the RL closer) through the same chat template.
The reward is exact answer match on both sides (it only shapes advantages; nothing is skipped).

Each run is a fresh subprocess; ours and TRL's alternate (``--runs`` each per workload), in the
same process tree and time window. A run's step time is the median over its steps 2..N (step 1
carries warm-up); the script prints per workload the median over runs of each side, the ratio
ours / TRL, the generated (completion) tokens per step on each side so equal work is visible,
and where the step goes: generation (ours ``perf/rollout_time_s``; TRL: time inside
``generate``), the update (ours ``perf/update_time_s``: log-probs, loss, backward, optimizer) and
the rest (grading, ZPD/buffer bookkeeping, data, logging; for TRL everything outside
``generate``: log-probs, loss, backward, optimizer and rewards together).

TRL is a benchmark-only dependency: it lives in its own venv (``.venv-trl``, made on first use
with pinned versions); nothing in the product imports it.

    python benchmarks/vs_trl.py [--runs 5] [--steps 6] [--workload short|full|both]
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
#: seed of the untrained model of the ``full`` workload
FULL_SEED = 1234
WORKLOADS = ("short", "full")


def ensure_trl_venv() -> Path:
    py = TRL_VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {TRL_VENV.name} with {' '.join(TRL_PINS)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TRL_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *TRL_PINS], check=True)
    return py


def untrained_copy(src: Path, dst: Path, seed: int) -> Path:
    """``src`` (an HF folder) with its weights replaced by a fresh initialisation from ``seed``:
    the same shape, tokenizer and chat template, an untrained model that rarely stops early."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    shutil.copytree(src, dst)
    for f in dst.glob("*.safetensors"):
        f.unlink()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(dst)).to(torch.float32)
    model.save_pretrained(dst, safe_serialization=True)
    return dst


def prepare(work: Path, workload: str) -> tuple[Path, Path]:
    """The model folder of ``workload`` and a JSONL of the prompts (user text + answer), shared by
    both sides."""
    from zppo_core.models import resolve
    from zppo_core.prompts import build_plain
    from zppo_core.trainer.toy_data import make_toy_dataset

    model_dir = Path(resolve("builtin:tiny-qwen3"))
    if workload == "full":
        model_dir = untrained_copy(model_dir, work / "untrained-tiny-qwen3", FULL_SEED)
    data = make_toy_dataset(work / "data") if not (work / "data" / "zppo77k.parquet").exists() else \
        work / "data" / "zppo77k.parquet"  # the trainer's offline default set (configs/tiny.yaml)
    import pandas as pd

    rows = pd.read_parquet(data)
    prompts = work / f"prompts-{workload}.jsonl"
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
    return {"step_s": [r["perf/step_time_s"] for r in rows], "gen_tokens": [r["train/response_tokens"] for r in rows],
            "gen_s": [r["perf/rollout_time_s"] for r in rows], "update_s": [r["perf/update_time_s"] for r in rows]}


def side_trl(work: Path, steps: int, model_dir: Path, prompts: Path) -> dict:
    import torch
    import transformers
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(THREADS)
    in_generate = [0.0]
    generate = transformers.GenerationMixin.generate

    def timed_generate(self, *a, **k):  # TRL's (non-vLLM) rollouts go through generate
        t0 = time.perf_counter()
        try:
            return generate(self, *a, **k)
        finally:
            in_generate[0] += time.perf_counter() - t0

    transformers.GenerationMixin.generate = timed_generate
    rows = [json.loads(x) for x in prompts.open()]
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": r["text"]}], "answer": r["answer"]} for r in rows])

    def reward(completions, answer, **_):
        return [float(a in c[0]["content"]) for c, a in zip(completions, answer)]

    class Timer(TrainerCallback):
        def __init__(self):
            self.t0, self.step_s, self.gen_tokens, self.gen_s = 0.0, [], [], []

        def on_step_begin(self, *a, **k):
            self.t0, in_generate[0] = time.perf_counter(), 0.0

        def on_step_end(self, *a, **k):
            self.step_s.append(time.perf_counter() - self.t0)
            self.gen_s.append(in_generate[0])

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
    return {"step_s": timer.step_s, "gen_tokens": timer.gen_tokens, "gen_s": timer.gen_s}


def _one_run(side: str, work: Path, steps: int, model_dir: Path, prompts: Path, trl_py: Path) -> dict:
    py = str(trl_py) if side == "trl" else sys.executable
    out = work / f"{side}-result.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="")
    cmd = [py, __file__, "--side", side, "--work", str(work), "--steps", str(steps), "--model-dir", str(model_dir),
           "--prompts", str(prompts), "--out", str(out)]
    subprocess.run(cmd, check=True, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL)
    res = json.loads(out.read_text())

    def med(key: str) -> float:
        vals = res.get(key) or []
        vals = vals[1:] or vals  # step 1 carries warm-up
        return statistics.median(vals) if vals else float("nan")

    toks = res["gen_tokens"][1:] or res["gen_tokens"]
    return {"step_s": med("step_s"), "gen_s": med("gen_s"), "update_s": med("update_s"),
            "gen_tokens": statistics.mean(toks) if toks else float("nan")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="runs per side and workload, alternating")
    p.add_argument("--workload", choices=[*WORKLOADS, "both"], default="both")
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
    workloads = WORKLOADS if a.workload == "both" else (a.workload,)
    res: dict[str, dict[str, list[dict]]] = {w: {"zppo": [], "trl": []} for w in workloads}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        inputs = {w: prepare(work, w) for w in workloads}
        for i in range(a.runs):
            for w in workloads:
                for side in ("zppo", "trl"):
                    r = _one_run(side, work, a.steps, *inputs[w], trl_py)
                    res[w][side].append(r)
                    print(f"run {i + 1} {w:5s} {side:4s} step {r['step_s']:.2f}s (generate {r['gen_s']:.2f}s)  "
                          f"gen tokens/step {r['gen_tokens']:.0f}  (load avg {os.getloadavg()[0]:.1f})", flush=True)
    for w in workloads:
        print(summary_line(w, res[w], a.runs, a.steps))


def summary_line(workload: str, res: dict[str, list[dict]], runs: int, steps: int) -> str:
    """Medians over runs per side: step, generation, update, the rest; ratio and tokens."""
    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in res[side])

    ours, trl = med("zppo", "step_s"), med("trl", "step_s")
    og, ou, tg = med("zppo", "gen_s"), med("zppo", "update_s"), med("trl", "gen_s")
    return (f"{workload}: ours {ours:.2f} s/step (generate {og:.2f}, update {ou:.2f}, rest {ours - og - ou:.2f}; "
            f"{med('zppo', 'gen_tokens'):.0f} gen tokens/step)  TRL {trl:.2f} s/step (generate {tg:.2f}, "
            f"rest {trl - tg:.2f}; {med('trl', 'gen_tokens'):.0f} gen tokens/step)  ratio ours/TRL {ours / trl:.2f}  "
            f"(median of {runs} alternating runs each, {steps} steps per run)")

if __name__ == "__main__":
    main()
