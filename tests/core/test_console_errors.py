"""One-line errors, ``--version``/``--help`` of every subcommand, progress lines with an ETA."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.zppo_cli import SUBCOMMANDS, main
from zppo_core.console import ProgressLine, eta_seconds, format_duration, progress_text
from zppo_core.errors import format_error, is_expected, looks_like_local_path
from zppo_core.trainer.samples import collapse_runs, sample_rows


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("zppo 0.1")


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_subcommand_has_help_with_an_example(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert SUBCOMMANDS[name].help in out and f"example:\n  {SUBCOMMANDS[name].example}" in out


@pytest.mark.parametrize("argv, message", [
    (["eval", "--model", "/no/such/model", "--benchmarks", "OfflineVLM"],
     "zppo eval: error: --model: local path /no/such/model does not exist"),
    (["eval", "--model", "builtin:nope"], "zppo eval: error: model spec 'builtin:nope': unknown builtin 'nope'"),
    (["train", "--config", "no/such.yaml"], "zppo train: error: config file not found: no/such.yaml"),
    (["curate", "--output", "x", "--vero", "/no/vero"], "zppo curate: error: curation.vero: local path /no/vero does not exist"),
    (["models", "build", "builtin:tiny-qwen9"], "zppo models: error: model spec 'builtin:tiny-qwen9': unknown builtin"),
    (["doctor", "--profile", "nope"], "zppo doctor: error: no profile 'nope'"),
    (["pipeline", "--profile", "tiny", "--set", "algo.itterations=2"], "zppo pipeline: error: "),
    # a key the pipeline sets per run is refused by name, never silently replaced
    (["pipeline", "--profile", "tiny", "--set", "data.train_path=/a.parquet"],
     "zppo pipeline: error: --set data.train_path: the pipeline sets it per run (the curation stage's parquet"),
    (["pipeline", "--profile", "tiny", "--set", "zppo.method=grpo"],
     "zppo pipeline: error: --set zppo.method: the pipeline sets it per run (use --methods or pipeline.methods)"),
])
def test_expected_errors_are_one_line_with_one_prefix(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message), err
    assert "\n" not in err and "Traceback" not in err


def test_error_helpers():
    assert looks_like_local_path("/a") and looks_like_local_path("./a") and looks_like_local_path("runs/a/final")
    assert not looks_like_local_path("Qwen/Qwen3.5-2B") and not looks_like_local_path("builtin:tiny-qwen3")
    assert is_expected(FileNotFoundError("x")) and not is_expected(RuntimeError("x"))
    assert format_error("eval", KeyError("unknown benchmark 'X'")) == "zppo eval: error: unknown benchmark 'X'"


def test_progress_text_and_eta():
    assert format_duration(75) == "1:15" and format_duration(3725) == "1:02:05"
    assert eta_seconds(0, 10, 5.0) is None and eta_seconds(2, 10, 10.0) == 40.0
    assert progress_text("eval[x]", 2, 8, "items", 6.0) == "eval[x]: 2/8 items (25%) · 0:06 elapsed · ETA 0:18"
    assert progress_text("train", 4, 4, "steps", 8.0) == "train: 4/4 steps (100%) · 0:08 elapsed"
    # resumed at step 2: the pace counts only the 2 steps done here
    assert progress_text("train", 4, 6, "steps", 10.0, start=2) == "train: 4/6 steps (66%) · 0:10 elapsed · ETA 0:10"


def test_progress_line_prints_every_tenth_and_the_end():
    out, t = [], [0.0]
    line = ProgressLine("eval", "items", out.append, every=0.25, clock=lambda: t[0])
    for done in range(1, 9):
        t[0] = float(done)
        line.update(done, 8)
    assert [s.split(":")[1].split()[0] for s in out] == ["1/8", "2/8", "4/8", "6/8", "8/8"]


class _R:
    def __init__(self, kind, qid, reward):
        self.kind, self.question_id, self.reward, self.finish_reason = kind, qid, reward, "stop"
        self.prompt_ids, self.response_ids = [1, 2], [3]


def test_sample_rows_take_the_first_of_each_kind():
    rs = [_R("plain", "a", 1.0), _R("plain", "b", 0.0), _R("bcq", "b", 1.0), _R("plain", "c", 0.0), _R("ncq", "b", 0.0)]
    rows = sample_rows(rs, lambda ids: "|".join(map(str, ids)), step=3, per_kind=2, gold={"a": "42"})
    assert [(r["kind"], r["question_id"]) for r in rows] == [("plain", "a"), ("plain", "b"), ("bcq", "b"), ("ncq", "b")]
    assert rows[0] == {"step": 3, "kind": "plain", "reward": 1.0, "gold": "42", "response": "3", "prompt": "1|2",
                       "question_id": "a", "finish_reason": "stop"}
    assert list(rows[0]) == ["step", "kind", "reward", "gold", "response", "prompt", "question_id", "finish_reason"]
    assert rows[1]["gold"] == ""  # not known: empty, never a guess
    assert collapse_runs("a<|image_pad|><|image_pad|><|image_pad|><|image_pad|>b<|x|>") == "a<|image_pad|>×4b<|x|>"


def test_restart_pace_leaves_the_model_build_out_of_the_eta():
    out, t = [], [100.0]  # 100 s of model building before the first step
    line = ProgressLine("train", "steps", out.append, every=0.0, clock=lambda: t[0])
    line.restart_pace(0, 10.0)  # step 1 took 10 s
    line.update(1, 4)
    assert out == ["train: 1/4 steps (25%) · 0:10 elapsed · ETA 0:30"]


def test_zppo_eval_prints_a_progress_line_per_benchmark(tmp_path, capsys):
    rc = main(["eval", "--config", str(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"), "--model", "builtin:tiny-qwen3", "--benchmarks", "OfflineLLM",
               "--max-items", "2",
               "--out", str(tmp_path), "--no-judge", "--set", "eval.sampling.max_new_tokens=8",
               "--set", "eval.batch_size=2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "eval OfflineLLM: 2/2 items (100%)" in out and "(n=2)" in out


def test_every_builtin_model_has_a_description():
    from zppo_core.models import BUILTINS
    from zppo_core.models.cli import listing

    lines = listing().splitlines()
    assert len(lines) == len(BUILTINS)
    assert all(len(ln.split(None, 1)) == 2 for ln in lines), [ln for ln in lines if len(ln.split(None, 1)) < 2]


@pytest.mark.parametrize("command", ["curate", "eval", "report"])
def test_one_output_flag_and_the_old_spelling_with_a_deprecation_line(command, capsys):
    import argparse
    import importlib

    from flows.zppo_cli import SUBCOMMANDS

    p = argparse.ArgumentParser(prog=f"zppo {command}")
    importlib.import_module(SUBCOMMANDS[command].module).add_arguments(p)
    head = ["r1"] if command == "report" else []
    assert p.parse_args([*head, "--output", "o1"]).output == "o1"
    assert capsys.readouterr().err == ""
    assert p.parse_args([*head, "--out", "o2"]).output == "o2"
    assert capsys.readouterr().err == f"zppo {command}: warning: --out is deprecated; use --output\n"
    assert "--out " not in p.format_help() and "--output" in p.format_help()  # the old one is hidden


def test_pipeline_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pipeline", "--profile", "slurm-local", "--output", str(out), "--methods", "zppo",
                 "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "executor: slurm (4 run(s) of the sweep at once)" in text
    assert "trainings: 1 x 4 steps (32 plain rollouts per step, more on hard questions) = 4 steps in all" in text
    jobs = [ln.split(None, 2) for ln in text.splitlines() if ln.startswith("  ") and not ln.strip().startswith("serves")]
    assert jobs == [["eval", "builtin:tiny-qwen3.5-vl/base", "slurm: 2 one-node CPU job(s), one worker each"],
                    ["train", "builtin:tiny-qwen3.5-vl/zppo/s0", "slurm: one job of 2 CPU node(s), one rank each"],
                    ["eval", "builtin:tiny-qwen3.5-vl/zppo/s0", "slurm: 2 one-node CPU job(s), one worker each"]]


def test_the_eval_help_example_runs_on_a_machine_without_vllm(tmp_path, capsys, monkeypatch):
    """`zppo eval --help`'s example with the paper's defaults (student backend vLLM): without
    vLLM it says so in one line and evaluates with transformers; a benchmark-name typo is
    reported first, before any backend question."""
    import shlex

    from flows.zppo_cli import SUBCOMMANDS
    from zppo_core.preflight import Probe

    monkeypatch.setattr(Probe, "has_module", staticmethod(lambda name: name != "vllm"))
    argv = shlex.split(SUBCOMMANDS["eval"].example)[1:]
    argv[argv.index("--output") + 1] = str(tmp_path)
    argv[argv.index("--benchmarks") + 1] = "OfflineLLM"  # one family of the example's, kept small
    assert main([*argv, "--max-items", "2", "--set", "eval.sampling.max_new_tokens=8"]) == 0
    err = capsys.readouterr().err
    assert "zppo eval: note: model.student_backend=vllm but vllm is not importable here" in err
    assert main(["eval", "--model", "builtin:tiny-qwen3", "--benchmarks", "OfflineLLM,Nope"]) == 2
    assert capsys.readouterr().err.startswith("zppo eval: error: unknown benchmark 'Nope'")
