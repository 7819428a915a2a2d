"""Runs on each of 2 ranks under ``torchrun`` (gloo): a tiny LM with activation checkpointing,
sharded by FSDP2 exactly as the trainer does, then :func:`iter_full_params` on EVERY rank (the
in-memory weight sync's stream). Each rank saves what it received to OUT/rank{r}.safetensors and
the local shard sizes to OUT/rank{r}.json."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch


def main(out: str) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file

    from zppo_core.trainer.parallel import apply_fsdp2, enable_activation_checkpointing
    from zppo_core.trainer.weight_sync import iter_full_params

    dist.init_process_group("gloo")
    sys.path.insert(0, str(Path(__file__).parent))
    from fsdp2_worker import _tiny_lm

    model = _tiny_lm()
    enable_activation_checkpointing(model)
    apply_fsdp2(model, compute_dtype=torch.float32, device_type="cpu")
    rank = dist.get_rank()
    local = {n: int(p.to_local().numel()) for n, p in model.named_parameters()}
    got = {name: t.contiguous() for name, t in iter_full_params(model, torch.bfloat16)}
    save_file(got, f"{out}/rank{rank}.safetensors")
    Path(f"{out}/rank{rank}.json").write_text(json.dumps({"local": local, "dtypes": sorted({str(t.dtype) for t in got.values()})}))


if __name__ == "__main__":
    from zppo_core.trainer.distributed import finish_rank

    import atexit

    main(sys.argv[1])
    # the test asserts this file is absent: the rank left without the interpreter's teardown
    atexit.register(Path(sys.argv[1], f"teardown_rank{os.environ['RANK']}").write_text, "ran")
    finish_rank(0)  # barrier, destroy, then leave without the runtime's teardown (it aborted a rank once)
