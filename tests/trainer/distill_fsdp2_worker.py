"""Worker of tests/trainer/test_distill_fsdp2.py, run under `accelerate launch` (2 CPU ranks,
FSDP2): trains a distillation row and records, per rank and step, how the student and the
in-process teacher are laid out (proof that the sharded teacher path ran)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def main(config: str, out: str, overrides: str, max_steps: str) -> None:
    from torch.distributed.tensor import DTensor

    from zppo_core.config import load_config
    from zppo_core.trainer import loop, setup
    from zppo_core.trainer.parallel import is_sharded

    torch.set_num_threads(1)
    cfg = load_config(config, json.loads(overrides))
    record = Path(out).parent / "layout"
    record.mkdir(parents=True, exist_ok=True)
    original_step = loop.train_step

    def recording_step(parts, st):
        m = original_step(parts, st)
        tparams = list(parts.teacher.parameters())
        (record / f"rank{parts.dist.rank}_step{st.step}.json").write_text(json.dumps({
            "student_sharded": is_sharded(parts.model), "teacher_sharded": is_sharded(parts.teacher),
            "teacher_local_numel": sum(p.to_local().numel() for p in tparams if isinstance(p, DTensor)),
            "teacher_full_numel": sum(p.numel() for p in tparams),
            "teacher_trainable": sum(p.requires_grad for p in tparams),
            "teacher_dtypes": sorted({str(p.dtype) for p in tparams}),
            # a collective (every rank, same order): the gathered weights, against the checkpoint
            "teacher_checksum": float(sum(p.full_tensor().double().sum() for p in tparams)),
            "teacher_rope": float(sum(b.double().sum() for n, b in parts.teacher.named_buffers() if "inv_freq" in n)),
        }))
        return m

    loop.train_step = recording_step
    setup.train(cfg, out, max_steps=int(max_steps))


if __name__ == "__main__":
    from zppo_core.trainer.distributed import finish_rank

    main(*sys.argv[1:5])
    finish_rank(0)  # leaves without the runtime's teardown, which can abort a finished gloo rank
