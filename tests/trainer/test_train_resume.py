"""Kill-and-resume: the resumed run reaches the same parameters and replay buffer as an
uninterrupted run (same seeds, CPU), without repeating or skipping a step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zppo_core.trainer import train
from zppo_core.trainer.checkpoint import find_latest, read_state


class Killed(RuntimeError):
    pass


def _weights(folder: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _kill_at(step: int):
    def cb(s: int, metrics: dict) -> None:
        if s == step:  # after step `step` is computed and logged, before its checkpoint
            raise Killed(f"killed at step {s}")

    return cb


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(tmp_path, micro_config):
    cfg = micro_config(tmp_path, **{"schedule.total_steps": 3, "zppo.method": "zppo"})
    full = train(cfg, tmp_path / "full", run_id="rid-1")

    with pytest.raises(Killed):
        train(cfg, tmp_path / "resumed", callbacks=[_kill_at(3)], run_id="rid-1")
    assert read_state(find_latest(tmp_path / "resumed"))["step"] == 2
    seen: list[int] = []
    res = train(cfg, tmp_path / "resumed", callbacks=[lambda s, m: seen.append(s)])
    assert seen == [3] and res["steps"] == 3 and res["run_id"] == "rid-1"  # run id read back

    steps = [json.loads(x)["step"] for x in open(res["metrics_path"])]
    assert steps == [1, 2, 3]  # the logged-but-unsaved step 3 row was dropped, then redone once
    a, b = _weights(full["final_model"]), _weights(res["final_model"])
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = read_state(find_latest(tmp_path / "full")), read_state(find_latest(tmp_path / "resumed"))
    assert sa["buffer"] == sb["buffer"] and sa["cursor"] == sb["cursor"]
    assert len(sa["buffer"]["entries"]) > 0
    full_rows = [json.loads(x) for x in open(full["metrics_path"])]
    res_rows = [json.loads(x) for x in open(res["metrics_path"])]
    assert full_rows[2]["reward/plain_mean"] == res_rows[2]["reward/plain_mean"]
    assert full_rows[2]["train/loss"] == res_rows[2]["train/loss"]
    # the audit files: step-3 lines of the killed run dropped on resume, then written once
    for name in ("bcq_debug.jsonl", "ncq_debug.jsonl"):
        assert (tmp_path / "full" / name).read_text() == (tmp_path / "resumed" / name).read_text(), name


def test_resume_at_the_end_does_nothing_and_says_so(tmp_path, micro_config):
    cfg = micro_config(tmp_path, **{"schedule.total_steps": 1, "zppo.method": "grpo"})
    first = train(cfg, tmp_path / "run")
    again = train(cfg, tmp_path / "run")
    assert first["steps"] == again["steps"] == 1 and again["last_metrics"] == {}
    assert [json.loads(x)["step"] for x in open(again["metrics_path"])] == [1]
