"""Runs on each rank under ``accelerate launch --config_file configs/accelerate/fsdp2_cpu.yaml``.

``update OUT``: one sharded update (FSDP2, 2 ranks, deliberately uneven rollouts) of a seeded
tiny model; rank 0 writes the gathered parameters and metrics to OUT for comparison with the
single-process update (tests/trainer/test_fsdp2.py).

``train CONFIG OUT OVERRIDES_JSON MAX_STEPS KILL_STEP``: ``setup.train``, recording per rank
whether the live student is sharded (DTensor parameters of an FSDPModule) and how many
parameter elements this rank holds; with KILL_STEP > 0 every rank exits right after step
KILL_STEP was computed and logged, before its checkpoint (a crash)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def _tiny_lm():
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen3Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
                      tie_word_embeddings=False)
    return Qwen3ForCausalLM(cfg).float()


def rollouts():
    """3 groups of 4 rollouts with varied lengths and rewards (shared with the test)."""
    from zppo_core.trainer.batch import Rollout

    g = torch.Generator().manual_seed(1)
    out = []
    for q in range(3):
        for i in range(4):
            p = torch.randint(1, 64, (3 + q,), generator=g).tolist()
            r = torch.randint(1, 64, (2 + (i + q) % 4,), generator=g).tolist()
            out.append(Rollout(uid=f"q{q}", kind="plain", question_id=f"q{q}", prompt_ids=p, response_ids=r,
                               reward=float((i + q) % 2)))
    return out


#: name -> (grad_clip, activation checkpointing, logprob_chunk)
CASES = {"noclip": (1.0e9, False, 0), "clip": (1.0e-2, False, 0), "ac_chunk": (1.0e9, True, 2)}


def update_case(dist, grad_clip: float, micro_batch: int, lr: float, ac: bool = False, chunk: int = 0):
    """(model, metrics) after one SGD update of this rank's share: rank 0 holds groups q0 q1
    (8 rollouts), rank 1 group q2 (4): uneven micro-batch counts on purpose."""
    from zppo_core.config import AlgoConfig
    from zppo_core.trainer.parallel import apply_fsdp2, enable_activation_checkpointing
    from zppo_core.trainer.state import UpdateContext
    from zppo_core.trainer.update import run_updates

    model = _tiny_lm()
    if ac:
        enable_activation_checkpointing(model)
    if dist.is_fsdp:
        apply_fsdp2(model, compute_dtype=torch.float32, device_type="cpu")
    rs = rollouts()
    mine = rs if dist.world == 1 else [r for r in rs if (r.uid == "q2") == (dist.rank == 1)]
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    ctx = UpdateContext(model=model, optimizer=opt, algo=AlgoConfig(iterations=1), micro_batch=micro_batch,
                        grad_clip=grad_clip, temperature=1.0, pad_id=0, vision_ids=set(), dist=dist,
                        logprob_chunk=chunk)
    return model, run_updates(ctx, mine, seed=0)


def run_update(out: str) -> None:
    from accelerate import Accelerator
    from safetensors.torch import save_file

    from zppo_core.trainer.distributed import Dist
    from zppo_core.trainer.parallel import full_model_state_dict, is_sharded

    dist = Dist(Accelerator(cpu=True), "fsdp2")
    res = {}
    for name, (clip, ac, chunk) in CASES.items():
        model, m = update_case(dist, clip, micro_batch=3, lr=0.5, ac=ac, chunk=chunk)
        assert is_sharded(model)
        sd = full_model_state_dict(model)  # every rank calls it
        if dist.is_main:
            save_file({k: v.contiguous() for k, v in sd.items()}, str(Path(out) / f"{name}.safetensors"))
        res[name] = m
    if dist.is_main:
        (Path(out) / "metrics.json").write_text(json.dumps(res))


def run_train(config: str, out: str, overrides: str, max_steps: str, kill_step: str) -> None:
    from torch.distributed.tensor import DTensor

    from zppo_core.config import load_config
    from zppo_core.trainer import checkpoint, loop, setup
    from zppo_core.trainer.parallel import is_sharded

    torch.set_num_threads(1)
    cfg = load_config(config, json.loads(overrides))
    record = Path(out).parent / "layout"
    record.mkdir(parents=True, exist_ok=True)
    original_step, original_save, original_updates = loop.train_step, checkpoint.save, loop.run_updates
    local: dict[str, list[str]] = {}

    def recording_updates(ctx, rollouts, **kw):
        local["kinds"] = [f"{r.kind}{'/replay' if r.is_replay else ''}" for r in rollouts]  # this rank's share
        return original_updates(ctx, rollouts, **kw)

    def recording_step(parts, st):
        m = original_step(parts, st)
        params = list(parts.model.parameters())
        (record / f"rank{parts.dist.rank}_step{st.step}.json").write_text(json.dumps({
            "sharded": is_sharded(parts.model),
            "dtensor_params": sum(isinstance(p, DTensor) for p in params), "params": len(params),
            "local_numel": sum(p.to_local().numel() for p in params if isinstance(p, DTensor)),
            "full_numel": sum(p.numel() for p in params),
            "param_dtypes": sorted({str(p.dtype) for p in params}),
            "rollouts": m["rollout/sequences"], "local_kinds": local["kinds"],
        }))
        return m

    def crashing_save(parts, st):
        if st.step == int(kill_step):
            raise SystemExit(3)  # every rank: step computed and logged, never checkpointed
        return original_save(parts, st)

    loop.train_step, checkpoint.save, loop.run_updates = recording_step, crashing_save, recording_updates
    setup.train(cfg, out, max_steps=int(max_steps))


if __name__ == "__main__":
    from zppo_core.trainer.distributed import finish_rank

    if sys.argv[1] == "update":
        run_update(sys.argv[2])
    else:
        run_train(*sys.argv[2:7])
    finish_rank(0)  # leaves without the runtime's teardown, which can abort a finished gloo rank
