"""Runner: judge-fallback routing, resume after a crash, skips with reasons, records, tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from eval_helpers import ScriptedBackend, write_rows

from eval import registry, video
from eval.cli import run as cli_run, add_arguments
from eval.report import family_table
from eval.runner import evaluate
from zppo_core.config import Config

ROOT = Path(__file__).resolve().parents[2]

CFG = Config()
AIME_ROWS = [{"question": f"Q{i}?", "answer": str(i)} for i in range(6)]


def _cfg(**eval_over):
    from zppo_core.config import replace

    return replace(CFG, **{f"eval.{k}": v for k, v in eval_over.items()})


def test_judge_only_on_unresolved_rows(tmp_path) -> None:
    files = write_rows(tmp_path / "aime.parquet", AIME_ROWS)
    # items 0,1: boxed (rule decides: 0 right, 1 wrong); 2..5: no box -> judge
    student = ScriptedBackend(lambda r: "\\boxed{0}" if r.request_id.endswith(("/0", "/1")) else "I think 3")
    judge = ScriptedBackend(lambda r: '{"verdict": "correct"}' if "Q3?" in r.messages[0]["content"] else "bad")
    cfg = _cfg(batch_size=4)
    res = evaluate("m", "AIME25", tmp_path / "out", eval_cfg=cfg.eval, model_cfg=cfg.model, backend=student,
                   judge=judge, data_files=files)
    recs = pd.read_parquet(res["records"]).set_index("item_id")
    judged = [r.request_id for call in judge.calls for r in call]
    assert judged == ["judge:AIME2025-I/2", "judge:AIME2025-I/3", "judge:AIME2025-I/4", "judge:AIME2025-I/5"]
    assert list(recs["score"]) == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert recs.loc["AIME2025-I/3", "judge_output"] == '{"verdict": "correct"}'
    assert recs.loc["AIME2025-I/2", "judge_output"] == "bad" and bool(recs.loc["AIME2025-I/2", "judge_malformed"])
    assert pd.isna(recs.loc["AIME2025-I/0", "judge"])
    assert res["accuracy"] == pytest.approx(200 / 6) and res["n_judged"] == 4 and res["n_judge_malformed"] == 3


class Crash(Exception):
    pass


def test_resume_after_crash(tmp_path) -> None:
    files = write_rows(tmp_path / "aime.parquet", AIME_ROWS)
    cfg = _cfg(batch_size=2, use_judge=False)
    seen: list[str] = []

    def flaky(req):
        seen.append(req.request_id)
        if len(seen) > 4:
            raise Crash("killed mid-benchmark")
        return f"\\boxed{{{req.request_id.split('/')[-1]}}}"

    with pytest.raises(Crash):
        evaluate("m", "AIME25", tmp_path / "out", eval_cfg=cfg.eval, model_cfg=cfg.model,
                 backend=ScriptedBackend(flaky), data_files=files)
    partial = tmp_path / "out" / "AIME25" / "partial.jsonl"
    assert len(partial.read_text().splitlines()) == 4
    with partial.open("a") as f:
        f.write('{"item_id": "torn')  # a torn last line from the crash is ignored
    again = ScriptedBackend(lambda r: f"\\boxed{{{r.request_id.split('/')[-1]}}}")
    res = evaluate("m", "AIME25", tmp_path / "out", eval_cfg=cfg.eval, model_cfg=cfg.model, backend=again,
                   data_files=files)
    assert [r.request_id for c in again.calls for r in c] == ["AIME2025-I/4", "AIME2025-I/5"]
    assert res["n"] == 6 and res["accuracy"] == 100.0


def test_video_benchmark_skipped_without_decoder(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(video, "decoder", lambda: None)
    res = evaluate("m", "VMME", tmp_path, eval_cfg=CFG.eval, model_cfg=CFG.model, backend=ScriptedBackend("x"))
    assert res["accuracy"] is None and "no video decoder" in res["skipped"]
    assert json.loads((tmp_path / "VMME" / "result.json").read_text())["skipped"] == res["skipped"]


def test_bench_judge_required_and_missing_data(tmp_path) -> None:
    cfg = _cfg(use_judge=False)
    files = write_rows(tmp_path / "hle.parquet", [{"id": "h", "question": "q", "image": "", "answer": "1",
                                                   "answer_type": "exactMatch", "category": "Math"}])
    res = evaluate("m", "HLE", tmp_path, eval_cfg=cfg.eval, model_cfg=cfg.model, backend=ScriptedBackend("x"),
                   data_files=files)
    assert res["accuracy"] is None and "needs the hle judge" in res["skipped"]
    res = evaluate("m", "AI2D", tmp_path, eval_cfg=cfg.eval, model_cfg=cfg.model, backend=ScriptedBackend("x"))
    assert res["accuracy"] is None and res["skipped"].startswith("data unavailable: AI2D")


def test_offline_families_and_table(tmp_path) -> None:
    cfg = _cfg(use_judge=False, offline_size=9, batch_size=4)
    answers = {}

    def oracle(req):  # answers every generated question with its gold letter/number
        return answers[req.request_id]

    results = {}
    from eval.loaders import load_items
    from eval.runner import registry_write

    for abbr in ("OfflineVLM", "OfflineLLM", "OfflineVideo"):
        b = registry.get(abbr)
        items = load_items(b, data_dir=str(registry_write(b, tmp_path / abbr / "data", cfg.eval))).items
        answers.update({it.item_id: f"\\boxed{{{it.gold}}}" for it in items})
        assert all(it.question.startswith("[eval]") for it in items)
        results[abbr] = evaluate("m", abbr, tmp_path, eval_cfg=cfg.eval, model_cfg=cfg.model,
                                 backend=ScriptedBackend(oracle))
        assert results[abbr]["accuracy"] == 100.0 and results[abbr]["n"] == 9
    assert len(load_items(registry.get("OfflineVideo"), data_dir=str(tmp_path / "OfflineVideo" / "data")).items[0].images) == 4
    table = family_table({"zppo": results}, offline=True)
    assert "| +ZPPO | 100.0 | 100.0 |" in table


def test_paper_table_columns_and_partial_average() -> None:
    ours = {"AIME25": {"accuracy": 10.0, "skipped": None}, "HLE": {"accuracy": None, "skipped": "no judge"}}
    table = family_table({"base": ours}, paper_size="2B", families=("LLM",))
    header = table.splitlines()[2]
    assert header.split(" | ")[1:4] == ["AIME25", "AIME26", "CEval"]
    assert "| Base | 10.0 | skip |" in table and "10.0 (1/10)" in table
    assert "| Base (paper 2B) | 26.7 | 30.0 | 71.1 |" in table and table.rstrip().endswith("| 45.3 |")


def test_cli_list(capsys) -> None:
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert cli_run(p.parse_args(["--list"])) == 0
    out = capsys.readouterr().out
    assert "MMMUPro" in out and "OfflineVideo" in out and len(out.splitlines()) == 2 + 31 + 3 + 3  # the paper's 31, offline families, miniature splits


def test_rejected_rows_in_result_and_all_rejected_is_a_skip(tmp_path) -> None:
    cfg = _cfg(use_judge=False)
    rows = [{"question": "Q0?", "answer": "0"}, {"question": "Q1?"}]  # row 1: null gold
    files = write_rows(tmp_path / "aime.parquet", rows)
    res = evaluate("m", "AIME25", tmp_path / "a", eval_cfg=cfg.eval, model_cfg=cfg.model,
                   backend=ScriptedBackend("\\boxed{0}"), data_files=files)
    assert res["n"] == 1 and res["accuracy"] == 100.0
    assert (res["rows_read"], res["rows_with_items"], res["rows_rejected"]) == (2, 1, 1)
    assert res["rejected_reasons"] == ["AIME25[AIME2025-I] row 1: empty gold field 'answer'"]
    bad = write_rows(tmp_path / "bad.parquet", [{"problem": "Q?", "solution": "1"}])  # wrong schema
    res = evaluate("m", "AIME25", tmp_path / "b", eval_cfg=cfg.eval, model_cfg=cfg.model,
                   backend=ScriptedBackend("x"), data_files=bad)
    assert res["accuracy"] is None and res["skipped"].startswith("every row was rejected (1)")
    assert "missing field 'question'" in res["skipped"]


def test_finished_means_this_models_result_under_this_config(tmp_path):
    """A re-run on a cluster submits no evaluation job for a benchmark already scored with the
    same model and evaluation config (result.json's stamp), and one for anything else."""
    from eval.runner import eval_config_hash, finished, model_fingerprint
    from zppo_core.config import load_config, replace

    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    kw = {"eval_cfg": cfg.eval, "model_cfg": cfg.model}
    assert not finished(str(model), "OfflineLLM", tmp_path / "ev", **kw)
    (tmp_path / "ev" / "OfflineLLM").mkdir(parents=True)
    stamp = {"model_fingerprint": model_fingerprint(str(model), None),
             "eval_config_hash": eval_config_hash(cfg.eval, cfg.model)}
    (tmp_path / "ev" / "OfflineLLM" / "result.json").write_text(json.dumps({"accuracy": 50.0, **stamp}))
    assert finished(str(model), "OfflineLLM", tmp_path / "ev", **kw)
    other = replace(cfg, **{"eval.sampling.max_new_tokens": 7})
    assert not finished(str(model), "OfflineLLM", tmp_path / "ev", eval_cfg=other.eval, model_cfg=other.model)
    (model / "config.json").write_text('{"changed": 1}')  # other weights: not this model's result
    assert not finished(str(model), "OfflineLLM", tmp_path / "ev", **kw)
