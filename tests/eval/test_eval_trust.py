"""Evaluation results tied to what produced them: records stamped with the model fingerprint and
the evaluation-config hash (reused only when both match), non-results that exit non-zero, one
writer per output folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from eval_helpers import ScriptedBackend, write_rows

from eval.cli import add_arguments, explicit_names, run as cli_run
from eval.runner import evaluate
from zppo_core.config import Config, replace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lock_holder import lock_held  # noqa: E402

ROWS = [{"question": f"Q{i}?", "answer": str(i)} for i in range(6)]


def _cfg(**over):
    return replace(Config(), **{"eval.use_judge": False, "eval.batch_size": 2, **over})


class Crash(Exception):
    pass


def _crash_after(n: int, answer: str):
    seen: list[str] = []

    def reply(req):
        seen.append(req.request_id)
        if len(seen) > n:
            raise Crash("killed")
        return answer

    return reply


def test_partial_records_of_another_model_are_not_reused(tmp_path) -> None:
    files = write_rows(tmp_path / "aime.parquet", ROWS)
    cfg = _cfg()
    with pytest.raises(Crash):  # model A answers 4 items (all "0"), then the run dies
        evaluate("model-A", "AIME25", tmp_path / "out", eval_cfg=cfg.eval, model_cfg=cfg.model,
                 backend=ScriptedBackend(_crash_after(4, "\\boxed{0}")), data_files=files)
    b = ScriptedBackend(lambda r: f"\\boxed{{{r.request_id.split('/')[-1]}}}")  # model B: always right
    res = evaluate("model-B", "AIME25", tmp_path / "out", eval_cfg=cfg.eval, model_cfg=cfg.model, backend=b,
                   data_files=files)
    assert len([r for c in b.calls for r in c]) == 6  # none of A's answers reused
    assert res["accuracy"] == 100.0 and res["n"] == 6
    recs = pd.read_parquet(res["records"])
    assert set(recs["model_fingerprint"]) == {res["model_fingerprint"]}
    assert set(recs["eval_config_hash"]) == {res["eval_config_hash"]}
    aside = tmp_path / "out" / "AIME25" / "partial.jsonl.stale-1"  # A's answers kept, not deleted
    assert len(aside.read_text().splitlines()) == 4
    result = json.loads((tmp_path / "out" / "AIME25" / "result.json").read_text())
    assert result["model_fingerprint"] == res["model_fingerprint"] != ""


def test_partial_records_under_another_eval_config_are_not_reused(tmp_path) -> None:
    files = write_rows(tmp_path / "aime.parquet", ROWS)
    cfg = _cfg()
    with pytest.raises(Crash):
        evaluate("m", "AIME25", tmp_path / "out", eval_cfg=cfg.eval, model_cfg=cfg.model,
                 backend=ScriptedBackend(_crash_after(4, "\\boxed{0}")), data_files=files)
    again = ScriptedBackend("\\boxed{0}")
    hotter = _cfg(**{"eval.sampling.max_new_tokens": 7})
    evaluate("m", "AIME25", tmp_path / "out", eval_cfg=hotter.eval, model_cfg=hotter.model, backend=again,
             data_files=files)
    assert len([r for c in again.calls for r in c]) == 6
    # same model, same config: the finished records are reused (nothing asked again)
    same = ScriptedBackend("never asked")
    res = evaluate("m", "AIME25", tmp_path / "out", eval_cfg=hotter.eval, model_cfg=hotter.model, backend=same,
                   data_files=files)
    assert same.calls == [] and res["n"] == 6


def test_model_folder_fingerprint_changes_with_its_files(tmp_path) -> None:
    from eval.runner import model_fingerprint

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"a")
    before = model_fingerprint(str(folder), None)
    (folder / "model.safetensors").write_bytes(b"bb")
    assert model_fingerprint(str(folder), None) != before
    assert model_fingerprint("Qwen/Qwen3.5-2B", None) != model_fingerprint("Qwen/Qwen3.5-0.8B", None)


def _cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return cli_run(p.parse_args(argv))


def test_explicit_benchmark_without_data_exits_nonzero(tmp_path, capsys) -> None:
    # offline, AI2D's data cannot be loaded: named one by one, that is an error, not a pass
    model = tmp_path / "model"  # an existing local folder: passes the model-spec preflight
    model.mkdir()
    assert _cli(["--model", str(model), "--benchmarks", "AI2D", "--out", str(tmp_path), "--no-judge",
                 "--set", "model.student_backend=transformers"]) == 1
    out = capsys.readouterr().out
    assert "skipped: data unavailable" in out and "no data for the requested benchmark(s) AI2D" in out
    assert explicit_names("VLM,AI2D,offline,all") == ["AI2D"]


def test_eval_refuses_a_folder_in_use(tmp_path, capsys) -> None:
    model = tmp_path.parent / f"{tmp_path.name}-model"  # an existing local folder outside the locked one
    model.mkdir()
    with lock_held(tmp_path) as pid:
        rc = _cli(["--model", str(model), "--benchmarks", "AI2D", "--out", str(tmp_path), "--no-judge",
                 "--set", "model.student_backend=transformers"])
    assert rc == 3 and f"PID {pid}" in capsys.readouterr().out
    assert not (tmp_path / "AI2D").exists()  # nothing was written by the refused writer
