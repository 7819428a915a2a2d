"""Resume tied to what produced it, one writer per run folder, durable checkpoints, explicit toy
data: the trainer refuses another run's checkpoint (``--force-new`` starts over, keeping the old
outputs), skips an unreadable newest checkpoint by name, tolerates a torn last metrics line,
cleans temp folders of killed runs and fsyncs before every rename."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from flows.zppo_cli import main
from zppo_core.config import replace
from zppo_core.trainer import checkpoint as ck
from zppo_core.trainer import resume, train
from zppo_core.trainer.data import DataError
from zppo_core.trainer.setup import training_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lock_holder import lock_held  # noqa: E402

TINY = str(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml")
FAST = ["--set", "data.toy_size=8", "--set", "schedule.rollout_batch=2", "--set", "rollout.student.max_new_tokens=8",
        "--set", "algo.iterations=1", "--set", "schedule.checkpoint_every=1"]


def _cli(out: Path, method: str, *extra: str) -> int:
    return main(["train", "--config", TINY, "--method", method, "--max-steps", "1", "--output", str(out), *FAST,
                 *extra])


@pytest.mark.slow
def test_other_method_refused_then_force_new_starts_over_keeping_the_old_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert _cli(out, "grpo") == 0
    capsys.readouterr()
    assert _cli(out, "zppo") == 2  # before: "nothing to do" and the grpo model handed back as zppo's
    err = capsys.readouterr().err
    assert "made by method 'grpo'" in err and "this run is method 'zppo'" in err and "--force-new" in err
    assert "zppo.method" in err  # the differing setting is named
    assert _cli(out, "zppo", "--force-new") == 0
    state = ck.read_state(ck.find_latest(out))
    assert state["method"] == "zppo" and state["step"] == 1
    old = list(out.glob("superseded-*"))
    assert len(old) == 1 and ck.read_state(ck.find_latest(old[0]))["method"] == "grpo"
    assert [json.loads(x)["step"] for x in open(out / "metrics.jsonl")] == [1]


def test_trainer_refuses_a_folder_in_use(tmp_path, capsys):
    with lock_held(tmp_path / "run") as pid:
        assert _cli(tmp_path / "run", "grpo") == 3
    assert f"PID {pid}" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_unreadable_newest_checkpoint_torn_metrics_and_leftovers(tmp_path, micro_config, caplog):
    cfg = micro_config(tmp_path, **{"schedule.total_steps": 2, "zppo.method": "grpo", "algo.iterations": 1})
    out = tmp_path / "run"
    train(cfg, out)
    newest = ck.find_latest(out)
    assert newest.name == "step_000002"
    weights = next((newest / ck.MODEL_DIR).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated by a crash
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "reward/pla')  # torn last line
    (out / ".final_model.tmp-4242").mkdir()  # temp folder of a killed run
    with caplog.at_level(logging.WARNING, logger="zppo.trainer"):
        res = train(cfg, out)
    warned = [r.getMessage() for r in caplog.records]
    assert any("step_000002 is unreadable" in m and "falling back to" in m and "step_000001" in m for m in warned)
    assert any("torn last line" in m for m in warned)
    assert res["steps"] == 2  # step 2 recomputed from step 1's checkpoint
    assert [json.loads(x)["step"] for x in open(out / "metrics.jsonl")] == [1, 2]
    assert ck.checkpoint_problem(ck.find_latest(out)) is None
    assert not list(out.glob(".final_model.*"))


def test_resume_identity_rules(tmp_path, micro_config):
    cfg = micro_config(tmp_path)
    state = resume.identity(cfg)
    ckpt = tmp_path / "checkpoints" / "step_000001"
    resume.check(state, cfg, ckpt)  # itself
    # may change: how long, how often to save, where to log and evaluate, server addresses
    resume.check(state, replace(cfg, **{"schedule.total_steps": 99, "eval.batch_size": 3,
                                        "model.teacher_url": "http://127.0.0.1:9/v1"}), ckpt)
    with pytest.raises(resume.ResumeMismatch, match=r"differing settings: optim.lr"):
        resume.check(state, replace(cfg, **{"optim.lr": 0.5}), ckpt)
    warm = replace(cfg, **{"optim.warmup_ratio": 0.5})  # then the lr schedule depends on total_steps
    with pytest.raises(resume.ResumeMismatch, match="schedule.total_steps"):
        resume.check(resume.identity(warm), replace(warm, **{"schedule.total_steps": 99}), ckpt)
    legacy = {"method": state["method"], "config_hash": cfg.hash()}  # written before resume hashes
    resume.check(legacy, cfg, ckpt)
    with pytest.raises(resume.ResumeMismatch):
        resume.check(legacy, replace(cfg, **{"schedule.total_steps": 99}), ckpt)


def test_missing_train_path_is_an_error_toy_data_only_when_asked(tmp_path, micro_config):
    cfg = micro_config(tmp_path)
    with pytest.raises(DataError, match="training data not found: .*nope.parquet"):
        training_file(replace(cfg, **{"data.train_path": str(tmp_path / "nope.parquet")}), tmp_path)
    with pytest.raises(DataError, match="data.train_path is empty"):
        training_file(replace(cfg, **{"data.toy_kind": ""}), tmp_path)
    assert training_file(cfg, tmp_path / "run") == tmp_path / "run" / "toy_data" / "zppo77k.parquet"


def test_checkpoint_files_and_folders_fsynced_before_the_rename(tmp_path, monkeypatch):
    from zppo_core import durable

    events: list[str] = []
    real_open, real_replace = os.open, os.replace

    def spy_open(path, flags, *a):
        fd = real_open(path, flags, *a)
        events.append(f"open {os.path.relpath(path, tmp_path)}")
        return fd

    monkeypatch.setattr(durable.os, "open", spy_open)
    monkeypatch.setattr(durable.os, "fsync", lambda fd: events.append("fsync"))
    monkeypatch.setattr(durable.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))

    def saver(d: Path) -> None:
        d.mkdir()
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"x")

    ck.save_checkpoint(tmp_path, 1, save_model=saver, optimizer_state=None, trainer_state={}, keep=2)
    before = events[: events.index("replace")]
    tmp = f"checkpoints/.tmp-step_000001-{os.getpid()}"
    for name in ("model/config.json", "model/model.safetensors", ck.STATE_FILE, "model", ""):
        opened = f"open {os.path.normpath(os.path.join(tmp, name))}"
        assert opened in before and before[before.index(opened) + 1] == "fsync", name
    assert events[events.index("replace") + 1:] == ["open checkpoints", "fsync"]  # the rename made durable
