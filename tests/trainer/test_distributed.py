"""Two CPU processes under `accelerate launch` (gloo): both ranks hold identical parameters
after a step, and only rank 0 writes checkpoints and metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_rank_step_keeps_ranks_identical_and_rank0_writes(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
               PYTHONFAULTHANDLER="1")  # a crashing rank prints every thread's Python stack
    # `accelerate launch --multi_gpu` starts the ranks through torch's elastic launcher; with no
    # GPU the trainer's Accelerator runs DDP over gloo on CPU (`--cpu` would start a single
    # process: accelerate's multi-CPU path needs MPI). On GPUs the same command takes the
    # FSDP config of configs/accelerate/.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", "29533",
           str(ROOT / "tests" / "trainer" / "dist_worker.py"),
           str(ROOT / "configs" / "tiny.yaml"), str(out), str(tmp_path / "data" / "zppo77k.parquet")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    d0 = json.loads((tmp_path / "digests" / "rank0_step1.json").read_text())
    d1 = json.loads((tmp_path / "digests" / "rank1_step1.json").read_text())
    assert d0["first"] == d1["first"] and d0["sum"] == d1["sum"] and d0["sq"] == d1["sq"]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]  # one row per step: rank 1 never appends
    assert rows[0]["rollout/new_questions"] == 4  # global |X_new|, sharded 2 + 2
    for kind in ("bcq", "ncq"):  # audit records of both ranks, written once by rank 0
        path = out / f"{kind}_debug.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        assert len(lines) == min(rows[0][f"audit/{kind}_rollouts"], 16), kind
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step_000001"]  # no temp folder of another rank left behind
    state = json.loads((out / "checkpoints" / "step_000001" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and len(state["rng"]) == 2


def test_finish_rank_in_one_process_returns_and_closes_a_world_one_group(tmp_path):
    """finish_rank only leaves with os._exit in a launched run (world > 1): here it must return the
    code (twice: without a group, then with a world-1 gloo group, which it destroys)."""
    import torch.distributed as td

    from zppo_core.trainer.distributed import finish_rank

    assert not td.is_initialized()
    assert finish_rank(5) == 5
    td.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert td.is_initialized()
    assert finish_rank(0) == 0
    assert not td.is_initialized()
