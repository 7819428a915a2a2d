"""Safe stored state and complete cache keys: skipped evaluations never cached, task results
stored as JSON, credentials masked in artifacts, run keys that survive quotes in paths, cache keys
that see every input, one pipeline per run folder."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tasks import hashing
from tasks.evaluate import eval_key
from tasks.train import train_key
from zppo_core.config import Config, dump_config, replace
from zppo_core.redact import redact

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lock_holder import lock_held  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


# -- cache keys -------------------------------------------------------------------------------
def _train_key(cfg: Config, tmp_path: Path) -> str:
    return train_key(None, {"cfg": cfg.to_dict(), "data_hash": "h", "train_dir": str(tmp_path / "t")})


def _eval_key(cfg: Config, tmp_path: Path) -> str:
    return eval_key(None, {"cfg": cfg.to_dict(), "benchmark": "AI2D", "model": "m", "out_dir": str(tmp_path / "e")})


def test_train_key_sees_launcher_accelerate_config_models_and_libraries(tmp_path, monkeypatch) -> None:
    acc = tmp_path / "acc.yaml"
    acc.write_text("num_processes: 2\n")
    student = tmp_path / "student"
    student.mkdir()
    (student / "model.safetensors").write_bytes(b"a")
    cfg = replace(Config(), **{"pipeline.accelerate_config": str(acc), "model.student": str(student)})
    base = _train_key(cfg, tmp_path)
    acc.write_text("num_processes: 4\n")  # more processes: other numbers
    k_acc = _train_key(cfg, tmp_path)
    (student / "model.safetensors").write_bytes(b"bb")  # another warm start
    k_student = _train_key(cfg, tmp_path)
    k_launcher = _train_key(replace(cfg, **{"pipeline.launcher": "python"}), tmp_path)
    monkeypatch.setattr(hashing, "library_versions", lambda: {"torch": "0.0.1"})
    k_libs = _train_key(cfg, tmp_path)
    assert len({base, k_acc, k_student, k_launcher, k_libs}) == 5


def test_eval_key_sees_local_data_and_judge_prompts(tmp_path) -> None:
    data, prompts = tmp_path / "data", tmp_path / "prompts"
    (data / "AI2D").mkdir(parents=True)
    prompts.mkdir()
    (data / "AI2D" / "test.parquet").write_bytes(b"v1")
    cfg = replace(Config(), **{"eval.data_root": str(data), "eval.judge_prompt_dir": str(prompts)})
    base = _eval_key(cfg, tmp_path)
    (data / "AI2D" / "test.parquet").write_bytes(b"v22")
    k_data = _eval_key(cfg, tmp_path)
    (prompts / "shared.jinja").write_text("judge {{ x }}")
    assert len({base, k_data, _eval_key(cfg, tmp_path)}) == 3


# -- skipped evaluations are not results --------------------------------------------------------
def test_evaluate_task_keeps_a_skip_out_of_the_cache(tmp_path, monkeypatch) -> None:
    import tasks.evaluate as te
    from tasks.common import TrackCtx
    from tasks.tracking import default_tracking_uri

    calls = []
    monkeypatch.setattr(te, "do_not_cache", lambda: calls.append(1))
    track = TrackCtx(default_tracking_uri(tmp_path), "x", (tmp_path / "art").as_uri(), "").to_dict()
    (tmp_path / "mlruns").mkdir()
    cfg = replace(Config(), **{"eval.use_judge": False}).to_dict()
    res = te.evaluate_benchmark.fn("m", "AI2D", str(tmp_path / "e"), cfg, track, None, 
                                   {"student": "s", "method": "base", "seed": ""})
    assert res["skipped"].startswith("data unavailable") and calls == [1]


_FLOW = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from prefect import flow, task
    from tasks.evaluate import do_not_cache

    work = Path(sys.argv[1])

    @task(cache_key_fn=lambda ctx, p: "key-" + p["name"], persist_result=True, result_serializer="json")
    def bench(name: str, skip: bool) -> dict:
        with (work / "calls.txt").open("a") as f:
            f.write(name + "\\n")
        if skip:
            do_not_cache()
        return {"benchmark": name, "skipped": "data unavailable: hub unreachable" if skip else None}

    @flow
    def sweep() -> list:
        return [bench.submit("done", False).result(), bench.submit("skipped", True).result()]

    sweep()
    sweep()  # the re-run: "done" is Cached, "skipped" is tried again
''')


@pytest.mark.slow
def test_skipped_result_is_retried_by_a_rerun_and_results_are_json(tmp_path) -> None:
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "home"),
           "PREFECT_LOCAL_STORAGE_PATH": str(store), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    script = tmp_path / "flow.py"
    script.write_text(_FLOW)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "calls.txt").read_text().split() == ["done", "skipped", "skipped"]
    assert sorted(p.name for p in store.iterdir()) == ["key-done"]
    stored = json.loads((store / "key-done").read_text())  # JSON, not a pickle
    assert stored["metadata"]["serializer"]["type"] == "json"
    assert json.loads(stored["result"]) == {"benchmark": "done", "skipped": None}


def test_stage_tasks_store_results_as_json() -> None:
    from tasks.curate import curate
    from tasks.evaluate import evaluate_benchmark
    from tasks.report import report
    from tasks.train import train

    for t in (curate, train, evaluate_benchmark, report):
        assert t.result_serializer == "json", t.name


# -- credentials and quotes ---------------------------------------------------------------------
def test_resolved_config_artifact_masks_url_credentials() -> None:
    cfg = replace(Config(), **{"model.judge_url": "http://alice:s3cret@judge.example:8000/v1",
                               "tracking.tracking_uri": "https://bob:pw@mlflow.example"})
    text = dump_config(cfg, redacted=True)
    assert "s3cret" not in text and "bob:pw" not in text
    assert "http://***@judge.example:8000/v1" in text and "https://***@mlflow.example" in text
    assert "s3cret" in dump_config(cfg)  # the trainer's own input keeps what it needs
    nested = redact({"a": [{"url": "postgresql://u:p@db/x"}], "hf_token": "hf_abc", "n": 3})
    assert nested == {"a": [{"url": "postgresql://***@db/x"}], "hf_token": "***", "n": 3}


def test_tracker_finds_runs_whose_keys_hold_quotes(tmp_path) -> None:
    from tasks.tracking import Tracker, default_tracking_uri

    out = tmp_path / "it's a \"run\""
    out.mkdir()
    tracker = Tracker(default_tracking_uri(out), "exp", (out / "art").as_uri())
    key = f"train:{out}/train/seed0"
    rid = tracker.open_run(key, "train", {"stage": "train"})
    tracker.finish(rid)
    assert tracker.find_run(key) == rid
    assert tracker.open_run(key, "train", {"stage": "train"}) == rid  # continued, not a new run
    assert tracker.client.get_run(rid).data.tags["zppo.key_text"] == key


# -- one pipeline per folder -------------------------------------------------------------------
def test_pipeline_refuses_a_run_folder_in_use(tmp_path, capsys) -> None:
    from flows.cli import add_arguments, run

    p = argparse.ArgumentParser()
    add_arguments(p)
    with lock_held(tmp_path) as pid:
        rc = run(p.parse_args(["--output", str(tmp_path)]))
    assert rc == 3 and f"PID {pid}" in capsys.readouterr().err
    assert not (tmp_path / "prefect").exists()  # refused before anything was written


def test_a_failed_stage_is_one_line_and_the_resume_hint(tmp_path, monkeypatch, capsys) -> None:
    import flows.zppo_full
    from flows.cli import add_arguments, run

    def failing_flow(**kw):
        raise RuntimeError("stage train failed\nsecond line")

    monkeypatch.setattr(flows.zppo_full, "zppo_full", failing_flow)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))  # prepare_environment only fills unset keys
    p = argparse.ArgumentParser()
    add_arguments(p)
    rc = run(p.parse_args(["--output", str(tmp_path / "run")]))
    err = capsys.readouterr().err
    assert rc == 1
    assert "RuntimeError: stage train failed" in err and "second line" not in err
    assert "Completed stages are cached" in err


def test_training_stage_config_file_is_masked_and_the_trainer_gets_the_real_values(tmp_path, monkeypatch):
    from zppo_core.config import load_config
    from zppo_core.redact import SECRETS_ENV, masked_values
    from zppo_core.trainer import cli

    real = "http://alice:s3cret@judge.example:8000/v1"
    cfg = replace(Config(), **{"model.judge_url": real})
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(cfg, redacted=True))  # what tasks.train writes into the run folder
    assert "s3cret" not in path.read_text()
    secrets = masked_values(cfg.flatten())
    assert secrets == {"model.judge_url": real}
    monkeypatch.setenv(SECRETS_ENV, json.dumps(secrets))  # what tasks.train hands the trainer
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    got = load_config(path, cli._overrides(p.parse_args(["--config", str(path)])))
    assert got.model.judge_url == real and got.hash() == cfg.hash()


def test_pipeline_names_requested_benchmarks_without_data() -> None:
    from flows.cli import missing_data

    ok = {"accuracy": 50.0, "skipped": None}
    nodata = {"accuracy": None, "skipped": "data unavailable: AI2D", "skip_kind": "data"}
    nodecoder = {"accuracy": None, "skipped": "no video decoder", "skip_kind": "video_decoder"}
    result = {"evals": {"s": {"base": {"-": {"AI2D": nodata, "VMME": nodecoder, "MMLU": nodata}},
                              "zppo": {"0": {"AI2D": ok}}}}}
    assert missing_data(result, "AI2D,VMME,LLM") == ["AI2D"]  # MMLU came in through its family only
    assert missing_data(result, None) == []
