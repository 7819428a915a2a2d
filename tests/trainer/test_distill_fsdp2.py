"""Off-Distill† on two CPU ranks under FSDP2 (`accelerate launch`, configs/accelerate/fsdp2_cpu.yaml):
the in-process teacher is sharded like the student (DTensor parameters, part of them per rank,
frozen), uneven shards keep the teacher's collectives matched (no hang), and the JSD update runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "trainer" / "distill_fsdp2_worker.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _reference_teacher() -> tuple[float, float]:
    """Sum of the tiny profile's teacher weights and rotary buffers, loaded whole on CPU."""
    from transformers import AutoModelForCausalLM

    from zppo_core.config import load_config
    from zppo_core.models import resolve

    m = AutoModelForCausalLM.from_pretrained(resolve(load_config(ROOT / "configs" / "tiny.yaml").model.teacher))
    return (float(sum(p.detach().double().sum() for p in m.parameters())),
            float(sum(b.double().sum() for n, b in m.named_buffers() if "inv_freq" in n)))


def test_off_distill_teacher_is_sharded_and_the_update_runs(tmp_path):
    over = {"data.train_path": "", "data.toy_size": 16,  # toy data, generated in the run folder
            "schedule.rollout_batch": 5, "zppo.rho_replay": 0.4, "rollout.group_size": 2,
            "rollout.teacher_group_size": 2, "rollout.student.max_new_tokens": 8, "rollout.teacher.max_new_tokens": 64,
            "schedule.micro_batch": 1, "schedule.total_steps": 2, "schedule.checkpoint_every": 1,
            "optim.lr": 1.0e-3, "zppo.method": "off_distill_replay"}
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
               PYTHONFAULTHANDLER="1")  # a crashing rank prints every thread's Python stack
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "configs" / "accelerate" / "fsdp2_cpu.yaml"), "--main_process_port", "29641",
           str(WORKER), str(ROOT / "configs" / "tiny.yaml"), str(tmp_path / "run"), json.dumps(over), "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ref_sum, ref_rope = _reference_teacher()
    for step in (1, 2):
        recs = [json.loads((tmp_path / "layout" / f"rank{r}_step{step}.json").read_text()) for r in (0, 1)]
        for rec in recs:
            assert rec["student_sharded"] and rec["teacher_sharded"] and rec["teacher_trainable"] == 0
            assert 0 < rec["teacher_local_numel"] < rec["teacher_full_numel"]
        assert recs[0]["teacher_local_numel"] + recs[1]["teacher_local_numel"] >= recs[0]["teacher_full_numel"]
        # built on meta, sharded, shards broadcast from rank 0: the checkpoint's weights and rotary
        # buffers on every rank, in the compute dtype (tiny profile: float32)
        for rec in recs:
            assert rec["teacher_dtypes"] == ["torch.float32"]
            assert rec["teacher_checksum"] == pytest.approx(ref_sum, rel=1e-9, abs=1e-6)
            assert rec["teacher_rope"] == pytest.approx(ref_rope, rel=1e-9)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert r["train/updates"] == 1 and r["distill/jsd"] > 0 and r["distill/tokens"] == r["train/response_tokens"] > 0
        assert r["zppo/teacher_rollouts"] == 2 * (5 + r["rollout/replay_questions"])
