"""Kill-and-resume: the resumed run reaches the same parameters and replay buffer as an
uninterrupted run (same seeds, CPU), without repeating or skipping a step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zppo_core.trainer import train
from zppo_core.trainer.checkpoint import find_latest, list_checkpoints, read_state


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


@pytest.mark.slow
def test_resume_with_keep_1_keeps_its_start_point_and_ends_like_an_uninterrupted_run(tmp_path, micro_config):
    over = {"schedule.total_steps": 3, "schedule.checkpoint_every": 1, "schedule.keep_checkpoints": 1,
            "zppo.method": "grpo"}
    cfg = micro_config(tmp_path, **over)
    full = train(cfg, tmp_path / "full", run_id="rid-1")
    train(cfg, tmp_path / "resumed", max_steps=1, run_id="rid-1")
    res = train(cfg, tmp_path / "resumed")  # writes steps 2 and 3: more than keep_checkpoints
    assert res["steps"] == 3
    names = [p.name for _, p in list_checkpoints(tmp_path / "full")]
    assert names == [p.name for _, p in list_checkpoints(tmp_path / "resumed")] == ["step_000003"]
    a, b = _weights(full["final_model"]), _weights(res["final_model"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [json.loads(x)["step"] for x in open(res["metrics_path"])] == [1, 2, 3]


def test_a_damaged_newer_checkpoint_is_not_published_nor_kept(tmp_path, micro_config, caplog):
    cfg = micro_config(tmp_path, **{"schedule.total_steps": 2, "zppo.method": "grpo"})
    out = tmp_path / "run"
    train(cfg, out)
    good = find_latest(out)
    bad = good.with_name("step_000003")
    shutil.copytree(good, bad)
    (bad / "model" / "model.safetensors").write_bytes(b"\x00" * 8)  # truncated weights
    res = train(cfg, out)
    assert res["steps"] == 2
    a, b = _weights(str(good / "model")), _weights(res["final_model"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [p.name for _, p in list_checkpoints(out)] == ["step_000001", "step_000002"]
    assert "step_000003 is unusable" in caplog.text


@pytest.mark.slow
def test_samples_once_per_step_after_a_resume_and_moved_aside_by_force_new(tmp_path, micro_config):
    cfg = micro_config(tmp_path, **{"schedule.total_steps": 2, "zppo.method": "grpo",
                                    "tracking.samples_per_kind": 1})
    out = tmp_path / "run"
    with pytest.raises(Killed):
        train(cfg, out, callbacks=[_kill_at(2)])  # step 2's samples written, its checkpoint not
    train(cfg, out)
    steps = [json.loads(x)["step"] for x in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted(set(steps)) == [1, 2] and steps == sorted(steps)
    assert steps.count(2) == steps.count(1)  # step 2 written once, not twice
    train(cfg, out, force_new=True, max_steps=1)
    moved = [p for p in out.iterdir() if p.name.startswith("superseded-")]
    assert len(moved) == 1 and (moved[0] / "samples.jsonl").exists()
    assert {json.loads(x)["step"] for x in (out / "samples.jsonl").read_text().splitlines()} == {1}


def test_training_data_replaced_at_the_same_path_is_not_resumed(tmp_path, micro_config):
    import pandas as pd

    from zppo_core.trainer.resume import ResumeMismatch

    cfg = micro_config(tmp_path, **{"schedule.total_steps": 1, "zppo.method": "grpo"})
    out = tmp_path / "run"
    train(cfg, out)
    data = out / "toy_data" / "zppo77k.parquet"
    df = pd.read_parquet(data)
    df.loc[0, "answer"] = df.loc[0, "answer"] + "0"
    df.to_parquet(data)
    longer = micro_config(tmp_path, **{"schedule.total_steps": 2, "zppo.method": "grpo"})
    with pytest.raises(ResumeMismatch, match=r"was trained on other data than .*zppo77k.parquet holds now"):
        train(longer, out)
