"""FSDP2 on two CPU ranks (gloo), launched as users launch it (`accelerate launch` with
configs/accelerate/fsdp2_cpu.yaml): the parameters are really sharded, the sharded update is
the single-process update, collectives stay matched with uneven shards, and a crashed run
resumes to the uninterrupted result. Every launch has a timeout, and so has every test, so a
collective mismatch (a hang) fails instead of blocking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "trainer" / "fsdp2_worker.py"
LAUNCH_TIMEOUT = 600
#: odd |X_new| (3 + 2 questions on the two ranks), replay on, BCQ + NCQ on rank 0 only: uneven shards
UNEVEN = {"schedule.rollout_batch": 5, "zppo.rho_aug": 0.4, "zppo.rho_replay": 0.4, "data.toy_size": 16,
          "rollout.group_size": 2, "rollout.student.max_new_tokens": 8, "rollout.teacher.max_new_tokens": 64,
          "schedule.micro_batch": 3, "schedule.total_steps": 2, "schedule.checkpoint_every": 1,
          "algo.iterations": 2, "optim.lr": 1.0e-3}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _launch(args: list[str], port: int, module: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
               PYTHONFAULTHANDLER="1")  # a crashing rank prints every thread's Python stack
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "configs" / "accelerate" / "fsdp2_cpu.yaml"), "--main_process_port", str(port)]
    cmd += (["-m"] if module else []) + args
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT, cwd=ROOT)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_sharded_update_equals_single_process_update(tmp_path, dist):
    """Same rollouts, one SGD update: FSDP2 over 2 uneven ranks vs one process. SGD (not AdamW)
    so the parameters move by lr * gradient: a wrong token normaliser or a per-rank clip shows."""
    sys.path.insert(0, str(WORKER.parent))
    from fsdp2_worker import CASES, update_case

    _ok(_launch([str(WORKER), "update", str(tmp_path)], 29621))
    sharded_m = json.loads((tmp_path / "metrics.json").read_text())
    for name in CASES:
        # the reference is always the plain single-process path: "ac_chunk" runs FSDP2 with
        # activation checkpointing and chunked log-probs and must still give the same update
        model, m = update_case(dist, CASES[name][0], micro_batch=3, lr=0.5)
        got = load_file(str(tmp_path / f"{name}.safetensors"))
        want = model.state_dict()
        assert got.keys() == want.keys()
        for k in want:
            # fp32; the two runs sum the same terms in a different order: tolerance 1e-6 abs
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-6)
        for k in ("train/grad_norm", "train/loss", "train/response_tokens"):
            assert abs(sharded_m[name][k] - m[k]) <= 1e-5 * max(1.0, abs(m[k])), (name, k, sharded_m[name][k], m[k])
        moved = max(float((model.get_parameter(k).detach() - _initial(k)).abs().max()) for k in want if "weight" in k)
        assert moved > 1e-4  # the update really moved the weights (the comparison is not vacuous)
    assert sharded_m["clip"]["train/grad_norm"] > 1e-2  # the clip was active in the clip case


def _initial(name: str) -> torch.Tensor:
    sys.path.insert(0, str(WORKER.parent))
    from fsdp2_worker import _tiny_lm

    return _tiny_lm().state_dict()[name]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_readme_command_shards_and_a_crashed_run_resumes_to_the_same_state(tmp_path):
    over = dict(UNEVEN, **{"data.train_path": ""})  # toy data, generated (identically) in each run folder
    sets = [a for k, v in over.items() for a in ("--set", f"{k}={v}" if v != "" else f"{k}=''")]
    cli = ["zppo_core.trainer.cli", "--config", str(ROOT / "configs" / "tiny.yaml"), "--method", "zppo",
           "--max-steps", "2"]
    # the docs/gpu.md command, uninterrupted
    full = tmp_path / "full"
    _ok(_launch(cli + ["--output", str(full)] + sets, 29622, module=True))
    # the same run crashing after step 2 was logged (every rank exits before its checkpoint)
    crashed = tmp_path / "crashed"
    proc = _launch([str(WORKER), "train", str(ROOT / "configs" / "tiny.yaml"), str(crashed),
                    json.dumps(dict(over, **{"zppo.method": "zppo"})), "2", "2"], 29623)
    assert proc.returncode != 0
    layout = [json.loads((tmp_path / "layout" / f"rank{r}_step2.json").read_text()) for r in (0, 1)]
    # uneven shards really happened: 3 + 2 new questions x G_S=2 plain rollouts (+ replay, BCQ, NCQ)
    assert [rec_kinds.count("plain") for rec_kinds in (r["local_kinds"] for r in layout)] == [6, 4]
    # BCQ and NCQ groups on one rank only: cap 2 keeps the globally first hard question's BCQ + NCQ
    # (every toy question is hard for the 8-token student; ties go by global order, and question 0
    # is rank 0's), so rank 1 runs its update, log-prob passes and gathers with no guided rollouts
    assert [[k for k in r["local_kinds"] if k in ("bcq", "ncq")] for r in layout] == [["bcq", "bcq", "ncq", "ncq"], []]
    for rec in layout:  # really sharded: DTensor parameters of an FSDP module, half each, fp32 masters
        assert rec["sharded"] and rec["dtensor_params"] == rec["params"] > 0
        assert rec["param_dtypes"] == ["torch.float32"]
    assert layout[0]["local_numel"] + layout[1]["local_numel"] >= layout[0]["full_numel"]
    assert max(r["local_numel"] for r in layout) < layout[0]["full_numel"]
    assert sorted(p.name for p in (crashed / "checkpoints").iterdir()) == ["step_000001"]
    assert [json.loads(x)["step"] for x in (crashed / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    # resume with the docs/gpu.md command
    _ok(_launch(cli + ["--output", str(crashed)] + sets, 29624, module=True))

    rows = [json.loads(x) for x in (crashed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # the logged-but-unsaved row replaced, not repeated
    full_rows = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    assert full_rows[1]["train/loss"] == rows[1]["train/loss"]
    assert full_rows[0]["rollout/new_questions"] == 5.0
    a, b = full / "checkpoints" / "step_000002", crashed / "checkpoints" / "step_000002"
    wa, wb = _weights(a / "model"), _weights(b / "model")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    oa, ob = load_file(str(a / "optimizer.safetensors")), load_file(str(b / "optimizer.safetensors"))
    assert oa.keys() == ob.keys() and len(oa) > 0
    for k in oa:
        assert oa[k].dtype == torch.float32 and torch.equal(oa[k], ob[k]), k
    sa, sb = (json.loads((p / "trainer_state.json").read_text()) for p in (a, b))
    assert sa["buffer"] == sb["buffer"] and sa["cursor"] == sb["cursor"]
    assert sa["parallel"] == {"strategy": "fsdp2", "world_size": 2} == sb["parallel"]
    # the saved model folder is a plain HF folder (class name without FSDP's prefix)
    assert json.loads((a / "model" / "config.json").read_text())["architectures"] == ["Qwen3ForCausalLM"]

    # a checkpoint written by 2 ranks is refused by 1 process, with the reason
    from zppo_core.config import load_config
    from zppo_core.trainer import train

    cfg = load_config(ROOT / "configs" / "tiny.yaml", dict(over, **{"schedule.total_steps": 3}))
    with pytest.raises(RuntimeError, match="written by 2 processes, this run has 1"):
        train(cfg, full, max_steps=3)


def test_vlm_step_under_fsdp2_with_memory_switches(tmp_path):
    """The tiny Qwen3.5-VL student (images on some prompts only) trains a step sharded over 2
    ranks with activation checkpointing and chunked log-probs. Without the image filler row
    (engine.matched_micros) the root unit's reduce-scatter differs in size between a rank with an
    image and one without (a gloo size mismatch); without gathering the root around generate(),
    HF's image-feature pass meets sharded weights."""
    over = {"data.train_path": "''", "model.student": "builtin:tiny-qwen3.5-vl", "data.toy_images": "true",
            "data.toy_size": 16, "schedule.rollout_batch": 5, "rollout.student.max_new_tokens": 8,
            "parallel.activation_checkpointing": "true", "parallel.logprob_chunk": 4}
    sets = [a for k, v in over.items() for a in ("--set", f"{k}={v}")]
    out = tmp_path / "run"
    _ok(_launch(["zppo_core.trainer.cli", "--config", str(ROOT / "configs" / "tiny.yaml"), "--method", "zppo",
                 "--max-steps", "1", "--output", str(out)] + sets, 29625, module=True))
    state = json.loads((out / "checkpoints" / "step_000001" / "trainer_state.json").read_text())
    assert state["parallel"] == {"strategy": "fsdp2", "world_size": 2}
    archs = json.loads((out / "final_model" / "config.json").read_text())["architectures"]
    assert archs == ["Qwen3_5ForConditionalGeneration"]
