"""Preflight checks (``zppo doctor`` and the flow's first task) on exact fake probes."""

from __future__ import annotations

from pathlib import Path

import pytest

from zppo_core.config import Config, config_from_dict, load_config
from zppo_core.preflight import PreflightError, Probe, accelerate_processes, run_checks, spec_problem

ROOT = Path(__file__).resolve().parents[2]


def _probe(gpus=0, modules=(), served=None, hub_missing=()):
    def served_models(url, timeout):
        if served is None:
            raise ConnectionError("refused")
        return served

    return Probe(gpu_count=lambda: gpus, has_module=lambda n: n in modules, served_models=served_models,
                 hub_lookup=lambda repo, kind, t: "not found on the hub" if repo in hub_missing else None)


def _paper(tmp_path, **over):
    return load_config(ROOT / "configs" / "paper.yaml", {"output_dir": str(tmp_path / "out"), **over})


def test_tiny_profile_passes_without_gpus_servers_or_hub(tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", {"output_dir": str(tmp_path / "out")})
    rep = run_checks(cfg, "pipeline", probe=_probe(), config_root=ROOT)
    assert rep.ok and rep.problem == ""
    assert [c.name for c in rep.checks] == ["output", "gpus", "vllm", "models", "datasets"]


def test_paper_sweep_without_gpus_names_the_gpus_first(tmp_path):
    rep = run_checks(_paper(tmp_path), "pipeline", probe=_probe(gpus=0, modules=("vllm",), served=[]),
                     config_root=ROOT)
    assert not rep.ok
    assert rep.problem.startswith("gpus: 8 training processes per machine (fsdp_full_shard_bf16.yaml) need 8 GPUs, "
                                  "this host sees 0")
    with pytest.raises(PreflightError, match="^preflight failed: gpus: 8 training processes"):
        rep.raise_for_problem()


def test_paper_sweep_with_everything_present_passes(tmp_path):
    rep = run_checks(_paper(tmp_path), "pipeline",
                     probe=_probe(gpus=8, modules=("vllm",), served=["Qwen/Qwen3.5-27B-FP8"]), config_root=ROOT)
    assert rep.ok, rep.lines()
    assert [c.name for c in rep.checks] == ["output", "gpus", "vllm", "models", "teacher", "judge", "datasets"]


@pytest.mark.parametrize("probe_kw, problem", [
    ({"gpus": 8, "modules": ()}, "vllm: model.student_backend=vllm but vllm is not importable here"),
    ({"gpus": 8, "modules": ("vllm",), "served": ["other"]},
     "teacher: teacher server http://127.0.0.1:8000/v1 serves ['other'], not model.teacher=Qwen/Qwen3.5-27B-FP8"),
    ({"gpus": 8, "modules": ("vllm",), "served": ["Qwen/Qwen3.5-27B-FP8"], "hub_missing": ("Qwen/Qwen3.5-2B",)},
     "models: student: hub model Qwen/Qwen3.5-2B not found on the hub"),
    ({"gpus": 8, "modules": ("vllm",), "served": ["Qwen/Qwen3.5-27B-FP8"],
      "hub_missing": ("zlab-princeton/Vero-600k",)},
     "datasets: curation.vero: hub dataset zlab-princeton/Vero-600k not found on the hub"),
])
def test_first_failure_is_one_line_naming_the_missing_thing(tmp_path, probe_kw, problem):
    rep = run_checks(_paper(tmp_path), "pipeline", probe=_probe(**probe_kw), config_root=ROOT)
    assert rep.problem.startswith(problem), rep.problem
    assert "\n" not in rep.problem


def test_a_server_the_stage_starts_need_not_answer_yet(tmp_path):
    """paper.yaml names the teacher/judge GPUs ([6, 7]) of a loopback URL: nothing answering is
    fine (the training stage starts it), a model spec that does not resolve is not."""
    probe = _probe(gpus=8, modules=("vllm",), served=None)
    rep = run_checks(_paper(tmp_path), "pipeline", probe=probe, config_root=ROOT)
    assert rep.ok, rep.lines()
    teacher = next(c for c in rep.checks if c.name == "teacher")
    assert teacher.detail == ("nothing answers http://127.0.0.1:8000/v1 yet: the stage starts vllm serve "
                              "Qwen/Qwen3.5-27B-FP8 on GPUs [6, 7]")
    missing = _probe(gpus=8, modules=("vllm",), served=None, hub_missing=("Qwen/Qwen3.5-27B-FP8",))
    assert run_checks(_paper(tmp_path), "pipeline", probe=missing, config_root=ROOT).problem == (
        "teacher: model.teacher: hub model Qwen/Qwen3.5-27B-FP8 not found on the hub")


def test_a_server_nobody_starts_must_answer(tmp_path):
    cfg = _paper(tmp_path, **{"model.teacher_gpus": [], "model.judge_gpus": []})
    rep = run_checks(cfg, "pipeline", probe=_probe(gpus=8, modules=("vllm",), served=None), config_root=ROOT)
    assert rep.problem == ("teacher: teacher server http://127.0.0.1:8000/v1 unreachable (ConnectionError); start "
                           "it: vllm serve Qwen/Qwen3.5-27B-FP8 --host 127.0.0.1 --port 8000 (or name "
                           "model.teacher_gpus to let the stage start it)")


def test_grpo_only_needs_no_teacher_server(tmp_path):
    cfg = _paper(tmp_path, **{"eval.use_judge": False, "zppo.judge_rewards": False})
    rep = run_checks(cfg, "pipeline", methods=["grpo"], probe=_probe(gpus=8, modules=("vllm",), served=None),
                     config_root=ROOT)
    assert rep.ok, rep.lines()
    assert "teacher" not in [c.name for c in rep.checks]


def test_model_specs(tmp_path):
    p = _probe()
    assert spec_problem("builtin:tiny-qwen3", "student", p) is None
    assert "unknown builtin 'nope'" in spec_problem("builtin:nope", "student", p)
    assert spec_problem(str(tmp_path / "missing"), "student", p) == f"student: local path {tmp_path / 'missing'} does not exist"
    assert spec_problem(str(tmp_path), "student", p) is None
    assert spec_problem("./runs/x/final_model", "student", p) == "student: local path ./runs/x/final_model does not exist"
    assert "neither a builtin" in spec_problem("justaname", "student", p)
    assert spec_problem("Qwen/Qwen3.5-2B", "student", p) is None


def test_unknown_student_in_the_sweep_fails_before_anything_runs(tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", {"output_dir": str(tmp_path / "out")})
    rep = run_checks(cfg, "pipeline", students=["builtin:tiny-qwen3.5-vl", "builtin:tiny-qwen9"], probe=_probe())
    assert rep.problem.startswith("models: model spec 'builtin:tiny-qwen9': unknown builtin")


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = config_from_dict(Config().to_dict(), {"output_dir": str(blocker / "sub")})
    rep = run_checks(cfg, "eval", probe=_probe())
    assert rep.problem.startswith(f"output: output folder {blocker / 'sub'} is not writable")


def test_accelerate_processes_per_machine(tmp_path):
    assert accelerate_processes(ROOT / "configs" / "accelerate" / "fsdp_full_shard_bf16.yaml") == (8, False)
    y = tmp_path / "a.yaml"
    y.write_text("num_processes: 16\nnum_machines: 2\nuse_cpu: true\n")
    assert accelerate_processes(y) == (8, True)


def test_the_output_check_creates_nothing(tmp_path):
    out = tmp_path / "runs" / "tiny"
    cfg = config_from_dict(Config().to_dict(), {"output_dir": str(out)})
    check = next(c for c in run_checks(cfg, "eval", probe=_probe()).checks if c.name == "output")
    assert check.ok and check.detail.endswith("(created by the run)")
    assert list(tmp_path.iterdir()) == []  # `zppo doctor` leaves no runs/<profile>/ behind
