"""One-GPU check of the GPU path in two tiers, offline, models built locally. Prints ``PASS`` /
``FAIL`` / ``SKIP`` per item with its figures, and a JSON summary (``--json PATH`` writes it too).

    python benchmarks/gpu_check.py --tier torch              # torch + transformers only, <= 8 min
    python benchmarks/gpu_check.py                           # vLLM tier (the `gpu` extra), <= 10 min
    python benchmarks/gpu_check.py --only sync               # one item (names: --list [--tier T])
    python benchmarks/gpu_check.py --tier torch --device cpu --tiny   # the CPU smoke run of CI

Torch tier (``--tier torch``; :mod:`benchmarks.gpu_torch_tier`): needs only torch, transformers
and accelerate (plus the wheels of ``benchmarks/gpu_carry.txt`` when carried); imports nothing
of vLLM, Prefect, MLflow or DuckDB. Items: ``env``, ``update``, ``gdn``,
``sharded_equals_single``, ``hf_generate`` (see that module).

vLLM tier items (each runs in its own process, with its own timeout, so one failure cannot hide another):

- ``versions``: vLLM version in the supported range; ``Worker.reload_weights`` takes
  ``weights_iterator`` and ``weights_path``; ``LLM.sleep`` / ``wake_up``; Qwen3.5 (+VL)
  registered; flash-linear-attention, causal-conv1d, flash-attn importable.
- ``render``: the tiny Qwen3.5-VL through the vLLM backend: prompt token ids equal the trainer's
  rendering for images below, inside and above the pixel limits; the VLM's weights streamed in
  memory: perturbed -> greedy output changes, original -> exact restore (names vLLM accepts).
- ``sync``: in-memory weight sync into an ``external_launcher`` engine: same weights -> same greedy
  output, perturbed -> changed, original -> exact restore; the same through disk.
- ``sync_speed``: memory vs disk sync seconds for a model of ``--sync-shape`` (default ~2B-shaped,
  Qwen3-1.7B-like), free GPU memory awake / asleep (level 1) / woken, and a generation after
  every wake-up and sync.
- ``update_memory``: the trainer's update (``run_updates``, FSDP2, bf16 over fp32 masters) on a
  Qwen3.5-0.8B-shaped model at paper.yaml's micro-batch and lengths, with and without
  activation checkpointing + log-prob chunking (the torch tier's ``update`` item).
- ``eval_workers``: two evaluation workers (:mod:`eval.worker`) on one GPU, the second started
  once the first's engine is up (two engines profiling one GPU at once misread its memory).
- ``train_resume``: a 2-step ``train()`` with a vLLM student (colocated, sleep mode, memory sync):
  step 2 rolls out after step 1's in-memory sync; then a fresh process resumes to step 3.
Without CUDA (and without ``--device cpu``) it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ITEMS = ("versions", "render", "sync", "sync_speed", "update_memory", "eval_workers", "train_resume")
#: seconds allowed per vLLM-tier item (sum 555 s: <= 10 min with start-up)
TIMEOUT_S = {"versions": 30, "render": 75, "sync": 60, "sync_speed": 90, "update_memory": 60,
             "eval_workers": 90, "train_resume": 150}
TORCH_ITEMS = ("env", "update", "gdn", "sharded_equals_single", "hf_generate")
#: seconds allowed per torch-tier item (sum 435 s: <= 8 min with start-up)
TORCH_TIMEOUT_S = {"env": 30, "update": 240, "gdn": 45, "sharded_equals_single": 60, "hf_generate": 60}
TIERS = ("vllm", "torch")


def _gib(n: float) -> float:
    return round(n / 2**30, 2)


def _dist_env() -> None:
    from zppo_core.trainer.build import single_process_dist_env

    single_process_dist_env()


def _tiny(name: str, work: Path) -> str:
    from zppo_core.models import resolve

    return resolve(f"builtin:{name}?warmstart=0", cache_dir=str(work / "models"))


def check_versions(work: Path, args: argparse.Namespace) -> dict:
    import importlib
    import inspect

    from zppo_core.engines.vllm_engine import check_version, vllm_version

    version = vllm_version()
    check_version(version)
    from vllm import LLM, ModelRegistry
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    params = set(inspect.signature(GPUModelRunner.reload_weights).parameters)
    archs = set(ModelRegistry.get_supported_archs())
    kernels = {}
    for mod in ("fla", "causal_conv1d", "flash_attn"):
        try:
            kernels[mod] = getattr(importlib.import_module(mod), "__version__", "present")
        except Exception as e:  # noqa: BLE001 - reported
            kernels[mod] = f"missing: {type(e).__name__}"
    ok = ({"weights_iterator", "weights_path"} <= params and hasattr(LLM, "sleep") and hasattr(LLM, "wake_up")
          and {"Qwen3_5ForConditionalGeneration", "Qwen3_5ForCausalLM"} <= archs
          and not any(str(v).startswith("missing") for v in kernels.values()))
    return {"ok": ok, "vllm": version, "reload_weights_params": sorted(params - {"self"}), "kernels": kernels}


def check_render(work: Path, args: argparse.Namespace) -> dict:
    from PIL import Image

    from zppo_core.config import Config
    from zppo_core.engines.base import GenerationRequest, SamplingParams
    from zppo_core.engines.render import render_prompt
    from zppo_core.engines.vllm_engine import VLLMBackend
    from zppo_core.models.processor import load_processor

    import torch
    from transformers import AutoModelForImageTextToText

    from zppo_core.engines.vllm_engine import colocate_kwargs
    from zppo_core.trainer.weight_sync import iter_full_params

    _dist_env()
    m = Config().model
    model = _tiny("tiny-qwen3.5-vl", work)
    proc = load_processor(model)
    kw = colocate_kwargs(rank=0, world=1, seed=0, max_model_len=8192, max_num_batched_tokens=8192, in_process=True,
                         min_pixels=m.min_pixels, max_pixels=m.max_pixels)
    be = VLLMBackend(model, gpu_memory_utilization=0.25, enforce_eager=True, **kw)
    sizes = {"below": (64, 64), "inside": (640, 640), "above": (2048, 2048)}
    got = {}
    for label, (w, h) in sizes.items():
        req = GenerationRequest([{"role": "user", "content": "Describe the image."}], images=[Image.new("RGB", (w, h), "red")])
        sample = be.generate([req], 1, SamplingParams(temperature=0.0, max_new_tokens=1))[0][0]
        want = render_prompt(proc, req, min_pixels=m.min_pixels, max_pixels=m.max_pixels).input_ids
        got[label] = {"equal": sample.prompt_ids == want, "vllm_len": len(sample.prompt_ids), "trainer_len": len(want)}
    # the VLM's live state dict streams into the engine under names it accepts: same output after
    req = GenerationRequest([{"role": "user", "content": "Describe the image."}], images=[Image.new("RGB", (640, 640))])
    greedy = SamplingParams(temperature=0.0, max_new_tokens=16)
    out = lambda: be.generate([req], 1, greedy)[0][0].token_ids  # noqa: E731
    before = out()
    orig = AutoModelForImageTextToText.from_pretrained(model)
    pert = AutoModelForImageTextToText.from_pretrained(model)
    _perturb(pert)
    be.load_weights(iter_full_params(pert, torch.bfloat16))
    got["vlm_perturbed_changes"] = out() != before
    be.load_weights(iter_full_params(orig, torch.bfloat16))
    got["vlm_restored"] = out() == before
    return {"ok": all(v["equal"] for k, v in got.items() if isinstance(v, dict))
            and got["vlm_perturbed_changes"] and got["vlm_restored"], **got}


def _perturb(mdl) -> None:
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        for p in mdl.parameters():
            p.add_(torch.randn_like(p) * 0.5)


def _perturbed_copy(model_dir: str, out: Path) -> Path:
    from transformers import AutoModelForCausalLM

    mdl = AutoModelForCausalLM.from_pretrained(model_dir)
    _perturb(mdl)
    mdl.save_pretrained(out, safe_serialization=True)
    return out


def check_sync(work: Path, args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from zppo_core.engines.base import GenerationRequest, SamplingParams
    from zppo_core.engines.vllm_engine import VLLMBackend, colocate_kwargs
    from zppo_core.trainer.weight_sync import iter_full_params

    _dist_env()
    model = _tiny("tiny-qwen3", work)
    pert_dir = _perturbed_copy(model, work / "perturbed")
    kw = colocate_kwargs(rank=0, world=1, seed=0, max_model_len=512, max_num_batched_tokens=512, in_process=True)
    be = VLLMBackend(model, gpu_memory_utilization=0.2, enforce_eager=True, **kw)
    reqs = [GenerationRequest([{"role": "user", "content": f"What is {a} + 4?"}]) for a in range(4)]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=16)
    outs = lambda: [s.token_ids for x in be.generate(reqs, 1, greedy) for s in x]  # noqa: E731
    orig, pert = (AutoModelForCausalLM.from_pretrained(d) for d in (model, pert_dir))
    before = outs()
    be.load_weights(iter_full_params(orig, torch.bfloat16))
    same = outs()
    be.load_weights(iter_full_params(pert, torch.bfloat16))
    changed = outs()
    be.load_weights(iter_full_params(orig, torch.bfloat16))
    restored = outs()
    be.update_weights(str(pert_dir))
    disk_changed = outs()
    be.update_weights(model)
    disk_restored = outs()
    res = {"same": same == before, "perturbed_changes": changed != before, "restored": restored == before,
           "disk_changes": disk_changed == changed, "disk_restored": disk_restored == before}
    return {"ok": all(res.values()), **res}


def _shaped_model(work: Path, shape: str):
    """A randomly initialised Qwen3 decoder of ``shape`` = hidden,intermediate,layers,heads,kv_heads,head_dim."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    h, i, n_l, n_h, n_kv, hd = (int(x) for x in shape.split(","))
    cfg = Qwen3Config(vocab_size=151_936, hidden_size=h, intermediate_size=i, num_hidden_layers=n_l,
                      num_attention_heads=n_h, num_key_value_heads=n_kv, head_dim=hd, max_position_embeddings=4096,
                      tie_word_embeddings=True, torch_dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16)
    out = work / "shaped"
    model.save_pretrained(out, safe_serialization=True)
    tok_src = _tiny("tiny-qwen3", work)
    for f in Path(tok_src).glob("*token*"):
        (out / f.name).write_bytes(f.read_bytes())
    return model, out


def check_sync_speed(work: Path, args: argparse.Namespace) -> dict:
    import torch

    from zppo_core.engines.vllm_engine import VLLMBackend, colocate_kwargs
    from zppo_core.trainer.weight_sync import iter_full_params

    _dist_env()
    model, folder = _shaped_model(work, args.sync_shape)
    n_params = sum(p.numel() for p in model.parameters())
    kw = colocate_kwargs(rank=0, world=1, seed=0, max_model_len=1024, max_num_batched_tokens=1024, in_process=True)
    be = VLLMBackend(str(folder), gpu_memory_utilization=0.35, enable_sleep_mode=True, sleep_level=1,
                     enforce_eager=True, **kw)
    from zppo_core.engines.base import GenerationRequest, SamplingParams

    free = lambda: torch.cuda.mem_get_info()[0]  # noqa: E731
    req = [GenerationRequest(messages=[], prompt_ids=list(range(10, 42)))]
    gen = lambda: len(be.generate(req, 1, SamplingParams(temperature=0.0, max_new_tokens=8, ignore_eos=True))[0][0].token_ids)  # noqa: E731
    awake = free()
    be.sleep()
    asleep = free()
    be.wake_up()
    gens = {"after_wake": gen()}
    be.sleep()
    t0 = time.perf_counter()
    be.load_weights(iter_full_params(model, torch.bfloat16))  # wakes weights, loads, wakes KV
    torch.cuda.synchronize()
    mem_s = time.perf_counter() - t0
    woken = free()
    gens["after_memory_sync"] = gen()
    t0 = time.perf_counter()
    model.save_pretrained(work / "sync_disk", safe_serialization=True)
    be.update_weights(str(work / "sync_disk"))
    disk_s = time.perf_counter() - t0
    gens["after_disk_sync"] = gen()
    return {"ok": asleep > awake + 2**30 and mem_s < disk_s and set(gens.values()) == {8},
            "tokens_generated": gens, "params_b": round(n_params / 1e9, 2),
            "memory_sync_s": round(mem_s, 2), "disk_sync_s": round(disk_s, 2),
            "free_gib_awake": _gib(awake), "free_gib_asleep": _gib(asleep), "free_gib_woken": _gib(woken)}


def check_update_memory(work: Path, args: argparse.Namespace) -> dict:
    """The torch tier's update measurement (the trainer's run_updates) on the 0.8B shape."""
    import torch

    import gpu_torch_tier as tt
    from zppo_core.config import Config

    cfg = Config()
    lengths = (cfg.rollout.max_prompt_tokens, cfg.rollout.student.max_new_tokens)
    dev = torch.device("cuda")
    a = tt.measure_update(tt.SHAPES["qwen3.5-0.8b"], tt.UpdateSetting(), dev, cfg.schedule.micro_batch, lengths)
    b = tt.measure_update(tt.SHAPES["qwen3.5-0.8b"], tt.UpdateSetting(activation_checkpointing=False, logprob_chunk=0),
                          dev, cfg.schedule.micro_batch, lengths)
    ok = not a["oom"] and (b["oom"] or a["peak_gib"] < b["peak_gib"])
    return {"ok": ok, "ac_and_chunk": a, "neither": b, "micro_batch": cfg.schedule.micro_batch, "lengths": lengths}


def check_eval_workers(work: Path, args: argparse.Namespace) -> dict:
    from zppo_core.config import dump_config, load_config

    cfg = load_config(ROOT / "configs" / "tiny.yaml", {
        "model.student_backend": "vllm", "eval.use_judge": False, "eval.offline_size": 8,
        "eval.max_model_len": 2048, "eval.gpu_memory_utilization": 0.6, "eval.sampling.max_new_tokens": 16})
    cfg_path = work / "eval.yaml"
    cfg_path.write_text(dump_config(cfg))
    model = _tiny("tiny-qwen3", work)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0],
               PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    start = lambda w: subprocess.Popen([sys.executable, "-m", "eval.worker", "--config", str(cfg_path), "--model", model,  # noqa: E731
                                        "--benchmarks", "OfflineLLM", "--out", str(work / "eval"), "--shard", f"{w}/2",
                                        "--gpu-share", "2"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
    first = start(0)
    # staggered: the second engine starts once the first has finished profiling (its first output
    # line, or its end), so the two never measure the GPU's free memory at the same time
    head = first.stdout.readline()
    procs = [first, start(1)]
    outs = [p.communicate(timeout=TIMEOUT_S["eval_workers"] - 10)[0] for p in procs]
    outs[0] = head + outs[0]
    done = [json.loads(ln)["done"]["OfflineLLM"] for o in outs for ln in o.splitlines() if ln.startswith('{"shard"')]
    return {"ok": [p.returncode for p in procs] == [0, 0] and sum(done) == 8, "items_per_worker": done,
            "tail": "" if done else outs[-1][-800:]}


def check_train_resume(work: Path, args: argparse.Namespace) -> dict:
    """A 2-step ``train()`` in this process (step 2 rolls out after step 1's in-memory sync), then a
    fresh process resumes to step 3 from the step-2 checkpoint."""
    from zppo_core.config import load_config
    from zppo_core.trainer.setup import train

    over = {"model.student_backend": "vllm", "model.dtype": "bfloat16", "model.weight_sync": "memory",
            "rollout.gpu_memory_utilization": 0.3, "schedule.total_steps": 3, "schedule.checkpoint_every": 1,
            "data.train_path": ""}
    cfg = load_config(ROOT / "configs" / "tiny.yaml", over)
    out = work / "train"
    first = train(cfg, out, max_steps=2)
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    code = ("import json,sys; from zppo_core.config import load_config; from zppo_core.trainer.setup import train; "
            f"r = train(load_config({str(ROOT / 'configs' / 'tiny.yaml')!r}, json.loads(sys.argv[1])), {str(out)!r}); "
            "print('RESUMED ' + json.dumps({'steps': r['steps'], 'diff': r['last_metrics'].get('train/sampler_logprob_diff')}))")
    p = subprocess.run([sys.executable, "-c", code, json.dumps(over)], capture_output=True, text=True, cwd=ROOT,
                       timeout=TIMEOUT_S["train_resume"] // 2, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    got = [json.loads(ln[8:]) for ln in p.stdout.splitlines() if ln.startswith("RESUMED ")]
    diffs = [r.get("train/sampler_logprob_diff") for r in rows]
    ok = (first["steps"] == 2 and len(rows) == 2 and all(d is not None and d < 0.1 for d in diffs)
          and bool(got) and got[0]["steps"] == 3 and got[0]["diff"] is not None and got[0]["diff"] < 0.1)
    return {"ok": ok, "in_process_steps": first["steps"], "sampler_logprob_diff_steps_1_2": diffs,
            "resumed": got[0] if got else {"error": (p.stderr or p.stdout)[-800:]}}


CHECKS = {name: globals()[f"check_{name}"] for name in ITEMS}


def run_one(name: str, work: Path, args: argparse.Namespace) -> dict:
    """Run one item in a child process (own CUDA context, own timeout); returns its result."""
    limit = (TORCH_TIMEOUT_S if args.tier == "torch" else TIMEOUT_S)[name]
    cmd = [sys.executable, __file__, "--tier", args.tier, "--only-in-process", name, "--work", str(work),
           "--sync-shape", args.sync_shape, "--device", args.device] + (["--tiny"] if args.tiny else [])
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false"))
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timeout after {limit} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    res = json.loads(lines[-1][7:]) if lines else {"ok": False, "error": (p.stderr or p.stdout)[-1500:]}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def in_process(name: str, args: argparse.Namespace) -> dict:
    """One item in this process (the child of :func:`run_one`)."""
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if args.tier == "torch":
        import gpu_torch_tier

        return gpu_torch_tier.run_items([name], args.device, args.tiny)[name]
    return CHECKS[name](Path(args.work), args)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tier", choices=TIERS, default="vllm",
                   help="vllm (default; the `gpu` extra) or torch (torch + transformers only)")
    p.add_argument("--only", action="append", choices=ITEMS + TORCH_ITEMS, help="run only these items (repeatable)")
    p.add_argument("--list", action="store_true", help="list the tier's items and exit")
    p.add_argument("--work", default="", help="scratch folder (default: a temporary one)")
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument("--device", default="cuda", help="torch tier: cuda (default) or cpu (with --tiny: the CI smoke run)")
    p.add_argument("--tiny", action="store_true", help="torch tier: tiny shapes and lengths instead of Qwen3.5's")
    p.add_argument("--sync-shape", default="2048,6144,28,16,8,128",
                   help="hidden,intermediate,layers,heads,kv_heads,head_dim of the sync model (~2B)")
    p.add_argument("--only-in-process", choices=ITEMS + TORCH_ITEMS, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    tier_items = TORCH_ITEMS if args.tier == "torch" else ITEMS
    if args.list:
        print("\n".join(tier_items))
        return 0
    if args.only_in_process:
        print("RESULT " + json.dumps(in_process(args.only_in_process, args), default=str), flush=True)
        return 0
    wrong = [n for n in args.only or () if n not in tier_items]
    if wrong:
        print(f"gpu_check: error: {wrong} not items of the {args.tier} tier (--list --tier {args.tier})")
        return 2
    if args.device == "cpu" and args.tier != "torch":
        print("gpu_check: error: --device cpu runs only the torch tier (--tier torch --device cpu --tiny)")
        return 2
    if args.device != "cpu":
        try:
            import torch

            has_cuda = torch.cuda.is_available()
        except ImportError:
            has_cuda = False
        if not has_cuda:
            print("SKIP gpu_check: no CUDA device visible (this check needs one GPU; the vLLM tier also the `gpu` "
                  "extra); nothing run")
            return 0
    names = list(args.only or (("env", "update", "sharded_equals_single") if args.device == "cpu" else tier_items))
    work = Path(args.work or tempfile.mkdtemp(prefix="zppo-gpu-check-"))
    results = {}
    for name in names:
        res = run_one(name, work / name, args)
        results[name] = res
        figs = {k: v for k, v in res.items() if k != "ok"}
        print(f"{'PASS' if res.get('ok') else 'FAIL'} {name}: {json.dumps(figs, default=str)}", flush=True)
    summary = {"tier": args.tier, "device": args.device, "tiny": args.tiny,
               "passed": sum(bool(r.get("ok")) for r in results.values()), "total": len(results), "items": results}
    print(json.dumps(summary, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))
    return 0 if summary["passed"] == summary["total"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
