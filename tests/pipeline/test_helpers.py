"""Fast tests of the pipeline's helpers: cache keys, MLflow naming/masking/dedup, retry
classification, launcher commands, plots, seed averaging. No Prefect engine, no servers."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tasks import hashing, plots
from tasks.launch import build_command
from tasks.report import mean_over_seeds, paper_size
from tasks.retry import InjectedFault, TransientStageError, classify_log, is_transient
from tasks.tracking import Tracker, is_secret_key, numeric_metrics, read_jsonl, safe_params, sanitize_key


# -- cache keys -------------------------------------------------------------------------------
def test_stage_key_changes_with_config_inputs_and_code(tmp_path, monkeypatch):
    base = hashing.stage_key("train", config={"a": 1}, inputs={"d": "x"}, packages=("tasks",))
    assert base == hashing.stage_key("train", config={"a": 1}, inputs={"d": "x"}, packages=("tasks",))
    assert base.startswith("train-")
    assert base != hashing.stage_key("train", config={"a": 2}, inputs={"d": "x"}, packages=("tasks",))
    assert base != hashing.stage_key("train", config={"a": 1}, inputs={"d": "y"}, packages=("tasks",))
    monkeypatch.setattr(hashing, "code_version", lambda *p: "9.9.9+other")
    assert base != hashing.stage_key("train", config={"a": 1}, inputs={"d": "x"}, packages=("tasks",))


def test_stage_keys_ignore_sweep_only_settings(tmp_path):
    """Adding a benchmark or a method to the sweep, or pointing MLflow elsewhere, must not re-run
    finished training / evaluation stages; a training hyperparameter must."""
    from tasks.evaluate import eval_key
    from tasks.train import train_key
    from zppo_core.config import Config, replace

    def keys(cfg):
        d = cfg.to_dict()
        t = train_key(None, {"cfg": d, "data_hash": "h", "train_dir": str(tmp_path / "t")})
        e = eval_key(None, {"cfg": d, "benchmark": "AI2D", "model": "m", "out_dir": str(tmp_path / "e")})
        return t, e

    base = keys(Config())
    assert keys(replace(Config(), **{"eval.benchmarks": ["AI2D", "MMLU"], "pipeline.methods": ["zppo"],
                                      "tracking.tracking_uri": "http://127.0.0.1:5000",
                                      "curation.synthetic_scale": 7})) == base
    assert keys(replace(Config(), **{"algo.clip_high": 0.3}))[0] != base[0]
    assert keys(replace(Config(), **{"eval.sampling.temperature": 0.0}))[1] != base[1]


def test_source_tree_hash_sees_edits(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text("x = 1\n")
    monkeypatch.setattr(hashing, "REPO_ROOT", tmp_path)
    h1 = hashing.source_tree_hash.__wrapped__("pkg")
    (pkg / "m.py").write_text("x = 2\n")
    h2 = hashing.source_tree_hash.__wrapped__("pkg")
    (pkg / "notes.txt").write_text("not code")
    assert h1 != h2 == hashing.source_tree_hash.__wrapped__("pkg")


def test_path_fingerprint_file_folder_and_spec(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "a.bin").write_bytes(b"12")
    f1 = hashing.path_fingerprint(d)
    (d / "b.bin").write_bytes(b"3")
    assert hashing.path_fingerprint(d) != f1
    assert hashing.path_fingerprint("Qwen/Qwen3.5-2B") == hashing.stable_hash({"spec": "Qwen/Qwen3.5-2B"})


# -- MLflow naming ----------------------------------------------------------------------------
def test_sanitize_and_numeric_metrics():
    assert sanitize_key("acc@1 (val)") == "acc_at_1 _val_"
    assert sanitize_key("reward/plain_mean") == "reward/plain_mean"
    got = numeric_metrics({"a": 1, "b": True, "c": "text", "d": float("nan"), "e": [1, 2, 6], "f@x": 2.5})
    assert got == {"a": 1.0, "b": 1.0, "e/min": 1.0, "e/max": 6.0, "e/mean": 3.0, "f_at_x": 2.5}


@pytest.mark.parametrize("key,secret", [
    ("model.hf_token", True), ("HF_TOKEN", True), ("tracking.api_key", True), ("db.password", True),
    ("x.client_secret", True), ("rollout.student.max_new_tokens", False), ("zppo.compression_max_tokens", False),
    ("curation.tokenizer", False), ("model.teacher", False),
])
def test_secret_keys(key, secret):
    assert is_secret_key(key) is secret


def test_safe_params_masks_secrets_and_url_credentials():
    got = safe_params({"model.hf_token": "hf_abc", "model.teacher_url": "http://me:pw@host:8000/v1",
                       "eval.benchmarks": ["AI2D", "MMLU"], "rollout.student.max_new_tokens": 48})
    assert got == {"model.hf_token": "***", "model.teacher_url": "http://***@host:8000/v1",
                   "eval.benchmarks": '["AI2D", "MMLU"]', "rollout.student.max_new_tokens": "48"}


def test_read_jsonl_tolerates_a_half_written_last_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1, "x": 1}\n{"step": 2, "x"')
    assert read_jsonl(p) == [{"step": 1, "x": 1}]
    p.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_jsonl(p)


def test_tracker_resume_logs_each_step_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    t = Tracker(uri, "exp", (tmp_path / "art").as_uri())
    parent = t.open_run("p", "pipeline", {"teacher": "T"})
    rid = t.open_run("k", "child", {"method": "zppo"}, parent)
    rows = [{"step": 1, "reward/plain_mean": 0.25}, {"step": 2, "reward/plain_mean": 0.5}]
    assert t.log_step_rows(rid, rows) == 2
    # a resumed stage re-reads metrics.jsonl (with a re-run step 2) and logs only what is new
    assert t.log_step_rows(rid, rows + [{"step": 2, "reward/plain_mean": 0.5}, {"step": 3, "reward/plain_mean": 1.0}]) == 1
    hist = t.client.get_metric_history(rid, "reward/plain_mean")
    assert [(m.step, m.value) for m in hist] == [(1, 0.25), (2, 0.5), (3, 1.0)]
    assert t.open_run("k", "child", {"method": "zppo"}, parent) == rid
    run = t.client.get_run(rid)
    assert run.data.tags["mlflow.parentRunId"] == parent and run.data.tags["method"] == "zppo"
    t.log_summary(rid, {"eval/family_avg/VLM": 50.0})
    t.log_summary(rid, {"eval/family_avg/VLM": 50.0})
    assert len(t.client.get_metric_history(rid, "eval/family_avg/VLM")) == 1


# -- retries ----------------------------------------------------------------------------------
def test_transient_classification():
    assert is_transient(TimeoutError("judge"))
    assert is_transient(OSError(errno.EADDRINUSE, "Address already in use"))
    assert is_transient(TransientStageError("port clash"))
    wrapped = RuntimeError("stage failed")
    wrapped.__cause__ = ConnectionRefusedError()
    assert is_transient(wrapped)
    assert not is_transient(ValueError("bad config"))
    assert not is_transient(FileNotFoundError("x.parquet"))
    assert not is_transient(InjectedFault("on purpose"))
    assert classify_log("RuntimeError: The server socket has failed to listen: Address already in use")
    assert not classify_log("torch.OutOfMemoryError: CUDA out of memory; timed out")
    assert not classify_log("ValueError: zppo.method: unknown method")


# -- launcher ---------------------------------------------------------------------------------
def test_build_command_python_and_accelerate(tmp_path):
    cmd = build_command("c.yaml", "out", launcher="python", python="py")
    assert cmd == ["py", "-m", "zppo_core.trainer.cli", "--config", "c.yaml", "--output", "out"]
    assert build_command("c.yaml", "out", launcher="python", python="py", run_id="r1")[-2:] == ["--run-id", "r1"]
    acc = tmp_path / "acc.yaml"
    acc.write_text("num_processes: 2\n")
    cmd = build_command("c.yaml", "out", launcher="accelerate", accelerate_config=str(acc), python="py")
    assert cmd == ["py", "-m", "accelerate.commands.launch", "--config_file", str(acc), "-m",
                   "zppo_core.trainer.cli", "--config", "c.yaml", "--output", "out"]
    with pytest.raises(ValueError, match="pipeline.launcher"):
        build_command("c.yaml", "out", launcher="torchrun")
    with pytest.raises(FileNotFoundError, match="accelerate_config"):
        build_command("c.yaml", "out", launcher="accelerate", accelerate_config=str(tmp_path / "none.yaml"))


# -- report helpers ---------------------------------------------------------------------------
def test_mean_over_seeds_and_paper_size():
    per_seed = {"0": {"A": {"family": "VLM", "accuracy": 40.0, "skipped": None}},
                "1": {"A": {"family": "VLM", "accuracy": 60.0, "skipped": None}}}
    got = mean_over_seeds(per_seed)
    assert got["A"]["accuracy"] == 50.0 and got["A"]["seeds"] == 2
    skipped = mean_over_seeds({"0": {"V": {"family": "Video", "accuracy": None, "skipped": "no decoder"}}})
    assert skipped["V"]["accuracy"] is None and skipped["V"]["skipped"] == "no decoder"
    assert paper_size("Qwen/Qwen3.5-0.8B") == "0.8B"
    assert paper_size("Qwen/Qwen3.5-27B-FP8") is None
    assert paper_size("builtin:tiny-qwen3") is None


def test_plots_render(tmp_path):
    runs = {"tiny/grpo": [{"step": 1, "reward/plain_mean": 0.1, "buffer/size": 0}],
            "tiny/zppo": [{"step": 1, "reward/plain_mean": 0.2, "buffer/size": 3},
                          {"step": 2, "reward/plain_mean": 0.3, "buffer/size": 2, "buffer/graduations": 1}]}
    fig = plots.reward_curves(runs)
    assert [ax.get_title() for ax in fig.axes] == ["reward/plain_mean"]
    plots.close(fig)
    fig = plots.buffer_curves(runs)
    assert [ax.get_title() for ax in fig.axes] == ["buffer/size", "buffer/graduations"]
    fig.savefig(tmp_path / "b.png")
    plots.close(fig)
    fig = plots.family_bars({"base": {"VLM": 10.0, "LLM": 20.0}, "zppo": {"VLM": 30.0}}, "t")
    assert len(fig.axes[0].patches) == 4
    plots.close(fig)
    assert (tmp_path / "b.png").stat().st_size > 0


def test_retry_condition_on_prefect_states():
    from prefect.states import Completed, Failed

    from tasks.retry import retry_transient

    assert retry_transient(None, None, Failed(data=TimeoutError("judge timed out")))
    assert not retry_transient(None, None, Failed(data=ValueError("zppo.method: unknown")))
    assert not retry_transient(None, None, Failed(data=InjectedFault("on purpose")))
    assert not retry_transient(None, None, Completed(data=1))


def test_tracker_opens_on_runs_and_keeps_artifacts_beside_its_store(tmp_path, monkeypatch):
    """The experiment is a model-training one (MLflow 3's UI opens it on its runs); a sqlite
    store without an artifact root keeps artifacts beside its database, never in ./mlruns of
    the working folder."""
    from tasks.tracking import EXPERIMENT_KIND_TAG, MODEL_TRAINING

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    t = Tracker(uri, "exp")
    exp = t.client.get_experiment(t.experiment_id)
    assert exp.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING == "custom_model_development"
    assert exp.artifact_location == (tmp_path / "store" / "artifacts").as_uri()
    rid = t.open_run("k", "r", {})
    (tmp_path / "a.txt").write_text("x")
    t.log_artifact(rid, str(tmp_path / "a.txt"), "files")
    assert not (cwd / "mlruns").exists() and list((tmp_path / "store" / "artifacts").rglob("a.txt"))
    t.client.delete_experiment_tag(t.experiment_id, EXPERIMENT_KIND_TAG)  # an experiment from before
    assert Tracker(uri, "exp").client.get_experiment(t.experiment_id).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING


def test_every_deployment_names_a_config_that_exists():
    import yaml

    repo = Path(__file__).resolve().parents[2]
    deps = {d["name"]: d["parameters"] for d in yaml.safe_load((repo / "prefect.yaml").read_text())["deployments"]}
    assert {"qwen-sweep", "tiny", "miniature"} <= set(deps)
    for name, params in deps.items():
        path = repo / (params.get("config") or f"configs/{params['profile']}.yaml")
        assert path.exists(), f"deployment {name}: {path} missing"
