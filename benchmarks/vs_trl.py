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
and where the step goes, timed by wrapping the same kind of function on each side (:data:`PARTS`):
``generate`` (ours ``HFBackend.generate``; TRL ``GenerationMixin.generate``), ``grading`` (our
``Grader``; TRL's ``_calculate_rewards``), ``logprobs`` (no-grad old-log-prob passes: ours
``compute_old_logprobs``, TRL's ``_get_per_token_logps_and_entropies`` without grad; with one
update per step neither side runs one), ``update`` (the loss forward, backward and optimizer: ours
``run_updates``; TRL everything outside ``_prepare_inputs``) and ``rest`` (the step minus those:
data, ZPD/buffer bookkeeping, metrics; TRL's batch preparation).

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
#: TRL's venv: TRL itself, and the libraries both sides share at the versions .venv has (CI's pins)
SHARED_LIBS = ("transformers", "accelerate", "datasets", "tokenizers")
TRL_VERSION = "trl==1.16.0"


def trl_pins() -> list[str]:
    pins = dict(line.strip().split("==", 1) for line in (ROOT / "constraints" / "main.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    return ["torch==2.13.0", TRL_VERSION, *(f"{lib}=={pins[lib]}" for lib in SHARED_LIBS)]
PROMPTS, G, NEW_TOKENS, LR, THREADS = 8, 8, 64, 1e-6, 2
#: seed of the untrained model of the ``full`` workload
FULL_SEED = 1234
WORKLOADS = ("short", "full")


#: where a step's time goes, on both sides (seconds per step; "rest" is the step minus the others)
PARTS = ("generate", "grading", "logprobs", "update", "rest")


class PartTimer:
    """Seconds spent inside wrapped functions, per part, reset at each step's start. A wrapped
    call inside another wrapped call of the same part counts once."""

    def __init__(self) -> None:
        self.now: dict[str, float] = dict.fromkeys(PARTS[:-1], 0.0)
        self.steps: list[dict[str, float]] = []
        self._depth: dict[str, int] = dict.fromkeys(PARTS[:-1], 0)

    def wrap(self, owner, name: str, part: str, when=lambda: True) -> None:
        fn = getattr(owner, name)

        def timed(*a, **k):
            if self._depth[part] or not when():
                return fn(*a, **k)
            self._depth[part] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self._depth[part] -= 1
                self.now[part] += time.perf_counter() - t0

        setattr(owner, name, timed)

    def step_done(self, step_s: float, **minus: float) -> None:
        """Close a step of ``step_s`` seconds; ``minus``: seconds to take out of a part (a wrapped
        span that contains another part)."""
        row = {k: v - minus.get(k, 0.0) for k, v in self.now.items()}
        row["rest"] = step_s - sum(row.values())
        self.steps.append(row)
        self.now = dict.fromkeys(self.now, 0.0)


def ensure_trl_venv() -> Path:
    py, pins = TRL_VENV / "bin" / "python", trl_pins()
    stamp = TRL_VENV / ".pins"
    if not py.exists() or not stamp.exists() or stamp.read_text() != " ".join(pins):
        print(f"creating {TRL_VENV.name} with {' '.join(pins)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(TRL_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *pins], check=True)
        stamp.write_text(" ".join(pins))
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

    import zppo_core.trainer.loop as loop
    import zppo_core.trainer.update as update
    from zppo_core.config import load_config
    from zppo_core.engines.hf import HFBackend
    from zppo_core.trainer import train
    from zppo_core.trainer.build import Grader

    torch.set_num_threads(THREADS)
    timer = PartTimer()
    timer.wrap(HFBackend, "generate", "generate")
    timer.wrap(Grader, "__call__", "grading")
    timer.wrap(update, "compute_old_logprobs", "logprobs")
    timer.wrap(loop, "run_updates", "update")  # minus its old-log-prob pass (below)
    out = work / f"zppo-{time.time_ns()}"
    cfg = load_config(str(ROOT / "configs" / "tiny.yaml"), {
        "model.student": str(model_dir), "zppo.method": "grpo", "rollout.group_size": G, "rollout.student.max_new_tokens": NEW_TOKENS,
        "rollout.student.temperature": 1.0, "algo.iterations": 1, "algo.loss_agg": "token", "optim.lr": LR,
        "schedule.rollout_batch": PROMPTS, "schedule.micro_batch": 8, "schedule.total_steps": steps,
        "schedule.checkpoint_every": 10_000, "data.train_path": str(work / "data" / "zppo77k.parquet"),
    })
    step_fn = loop.train_step

    def timed_step(*a, **k):
        t0 = time.perf_counter()
        try:
            return step_fn(*a, **k)
        finally:
            timer.step_done(time.perf_counter() - t0, update=timer.now["logprobs"])

    loop.train_step = timed_step
    res = train(cfg, out, max_steps=steps)
    rows = [json.loads(x) for x in open(res["metrics_path"])]
    return {"step_s": [r["perf/step_time_s"] for r in rows], "gen_tokens": [r["train/response_tokens"] for r in rows],
            "parts": timer.steps}


def side_trl(work: Path, steps: int, model_dir: Path, prompts: Path) -> dict:
    import torch
    import transformers
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(THREADS)
    timer = PartTimer()
    timer.wrap(transformers.GenerationMixin, "generate", "generate")  # TRL's (non-vLLM) rollouts
    timer.wrap(GRPOTrainer, "_calculate_rewards", "grading")
    timer.wrap(GRPOTrainer, "_get_per_token_logps_and_entropies", "logprobs", when=lambda: not torch.is_grad_enabled())
    prepare = [0.0]  # time in _prepare_inputs: generation, rewards, old log-probs and their bookkeeping
    prepare_fn = GRPOTrainer._prepare_inputs

    def timed_prepare(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return prepare_fn(self, *a, **k)
        finally:
            prepare[0] += time.perf_counter() - t0

    GRPOTrainer._prepare_inputs = timed_prepare
    rows = [json.loads(x) for x in prompts.open()]
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": r["text"]}], "answer": r["answer"]} for r in rows])

    def reward(completions, answer, **_):
        return [float(a in c[0]["content"]) for c, a in zip(completions, answer)]

    class Timer(TrainerCallback):
        def __init__(self):
            self.t0, self.step_s, self.gen_tokens = 0.0, [], []

        def on_step_begin(self, *a, **k):
            self.t0, prepare[0] = time.perf_counter(), 0.0

        def on_step_end(self, *a, **k):
            step_s = time.perf_counter() - self.t0
            self.step_s.append(step_s)
            # the update: everything outside _prepare_inputs (loss forward, backward, optimizer)
            timer.now["update"] = step_s - prepare[0]
            timer.step_done(step_s)

        def on_log(self, args, state, control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                self.gen_tokens.append(logs["completions/mean_length"] * PROMPTS * G)

    args = GRPOConfig(
        output_dir=str(work / f"trl-{time.time_ns()}"), per_device_train_batch_size=8, gradient_accumulation_steps=8,
        num_generations=G, max_completion_length=NEW_TOKENS, temperature=1.0, top_p=1.0, learning_rate=LR,
        loss_type="dapo", beta=0.0, num_iterations=1, max_steps=steps, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, bf16=False, seed=0, dataloader_num_workers=0,
    )
    timer_cb = Timer()
    trainer = GRPOTrainer(model=str(model_dir), reward_funcs=reward, args=args, train_dataset=ds, callbacks=[timer_cb])
    trainer.train()
    return {"step_s": timer_cb.step_s, "gen_tokens": timer_cb.gen_tokens, "parts": timer.steps}


def _one_run(side: str, work: Path, steps: int, model_dir: Path, prompts: Path, trl_py: Path) -> dict:
    py = str(trl_py) if side == "trl" else sys.executable
    out = work / f"{side}-result.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(THREADS), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="")
    cmd = [py, __file__, "--side", side, "--work", str(work), "--steps", str(steps), "--model-dir", str(model_dir),
           "--prompts", str(prompts), "--out", str(out)]
    subprocess.run(cmd, check=True, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL)
    res = json.loads(out.read_text())

    def med(vals: list[float]) -> float:
        vals = vals[1:] or vals  # step 1 carries warm-up
        return statistics.median(vals) if vals else float("nan")

    toks = res["gen_tokens"][1:] or res["gen_tokens"]
    return {"step_s": med(res["step_s"]), "gen_tokens": statistics.mean(toks) if toks else float("nan"),
            **{part: med([row[part] for row in res["parts"]]) for part in PARTS}}


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
                    print(f"run {i + 1} {w:5s} {side:4s} step {r['step_s']:.2f}s (generate {r['generate']:.2f}s, "
                          f"update {r['update']:.2f}s)  gen tokens/step {r['gen_tokens']:.0f}  "
                          f"(load avg {os.getloadavg()[0]:.1f})", flush=True)
    for w in workloads:
        print(summary_line(w, res[w], a.runs, a.steps))


def summary_line(workload: str, res: dict[str, list[dict]], runs: int, steps: int) -> str:
    """Medians over runs per side: the step and its parts; the ratio and the tokens."""
    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in res[side])

    def parts(side: str) -> str:
        return ", ".join(f"{p} {med(side, p):.3f}" for p in PARTS)

    ours, trl = med("zppo", "step_s"), med("trl", "step_s")
    return (f"{workload}: ours {ours:.3f} s/step ({parts('zppo')}; {med('zppo', 'gen_tokens'):.0f} gen tokens/step)  "
            f"TRL {trl:.3f} s/step ({parts('trl')}; {med('trl', 'gen_tokens'):.0f} gen tokens/step)  "
            f"ratio ours/TRL {ours / trl:.2f}  (median of {runs} alternating runs each, {steps} steps per run)")


if __name__ == "__main__":
    main()
