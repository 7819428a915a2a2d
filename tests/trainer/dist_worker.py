"""Run under ``accelerate launch --num_processes 2 --cpu``: trains 1 step and records, per rank,
a digest of the parameters after every step (files owned by the test, not the trainer)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from zppo_core.config import load_config
from zppo_core.trainer import loop, setup


def main(config: str, out: str, data: str) -> None:
    torch.set_num_threads(1)
    cfg = load_config(config, {
        "data.train_path": "", "data.toy_size": 16, "rollout.group_size": 2,
        "rollout.student.max_new_tokens": 8, "rollout.teacher.max_new_tokens": 64,
        "schedule.rollout_batch": 4, "schedule.micro_batch": 4, "schedule.total_steps": 1,
        "zppo.rho_aug": 0.5, "zppo.rho_replay": 0.5, "algo.iterations": 2, "optim.lr": 1.0e-3,
    })
    digests = Path(out).parent / "digests"
    digests.mkdir(parents=True, exist_ok=True)
    original = loop.train_step

    def recording_step(parts, st):
        m = original(parts, st)
        params = torch.cat([p.detach().flatten().double() for p in parts.model.parameters()])
        (digests / f"rank{parts.dist.rank}_step{st.step}.json").write_text(
            json.dumps({"sum": float(params.sum()), "sq": float((params ** 2).sum()),
                        "first": params[:16].tolist(), "local_rollouts_differ": m["rollout/sequences"]}))
        return m

    loop.train_step = recording_step
    setup.train(cfg, out, max_steps=1)


if __name__ == "__main__":
    from zppo_core.trainer.distributed import finish_rank

    main(*sys.argv[1:4])
    finish_rank(0)  # leaves without the runtime's teardown, which can abort a finished gloo rank
