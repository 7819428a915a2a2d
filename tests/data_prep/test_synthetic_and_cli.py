"""The offline generator (schemas, defects, determinism) and the ``zppo curate`` CLI."""

from __future__ import annotations

import re
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from data_prep.curate import clean_question
from data_prep.imaging import image_header
from data_prep.recipe import canonical_name, tier_of
from data_prep.schemas import check_mmfr_schema, check_vero_schema
from data_prep.synthetic import DEFECTS, MMFR_SCHEMA, VERO_SCHEMA, generate_sources, mmfr_row, vero_row
from zppo_core.prompts import strip_format_directives, strip_image_tags

LOUD = replace(DEFECTS, null_answer=0.05, long_answer=0.05, small_image=0.1, undecodable=0.05, missing_image=0.05,
               empty_question=0.05, long_prompt=0.03, cross_duplicate=0.2)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    return generate_sources(out, vero_rows=400, mmfr_rows=300, seed=5, defects=LOUD)


def _rows(root):
    return [r for f in sorted(root.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_schemas_and_layout(generated):
    vfiles = sorted(generated["vero"].rglob("*.parquet"))
    assert all(re.fullmatch(r"[a-z_IF]+-[\w()+\-.]+", f.parent.name) for f in vfiles)
    for f in vfiles:
        assert pq.read_schema(f).equals(VERO_SCHEMA)
        check_vero_schema(pq.read_schema(f), str(f))
    for f in sorted(generated["mmfr"].rglob("*.parquet")):
        assert pq.read_schema(f).equals(MMFR_SCHEMA)
        assert check_mmfr_schema(pq.read_schema(f), str(f)) == "pass_rate"
    names = {f.parent.name for f in vfiles}
    assert any(tier_of(canonical_name(n)) == 1 for n in names) and any(tier_of(canonical_name(n)) == 2 for n in names)
    assert any(tier_of(canonical_name(n)) is None for n in names)


def test_every_defect_category_present(generated):
    vero, mmfr = _rows(generated["vero"]), _rows(generated["mmfr"])
    rows = vero + mmfr
    imgs = [(r["image"] or {}).get("bytes") for r in rows]
    heads = [image_header(b) for b in imgs if b]
    assert any(b is None for b in imgs)  # missing image
    assert any(b and image_header(b) is None for b in imgs)  # undecodable bytes
    assert any(h and min(h[1:]) < 100 for h in heads)  # small images
    assert any(r["reward_model"]["ground_truth"] is None for r in vero)  # null answers
    assert any(r["answer"] is None and r["original_answer"] is None for r in mmfr)
    assert any(r["answer"] and len(r["answer"]) > 512 for r in mmfr)  # long answers
    assert {r["pass_rate"] for r in mmfr} == {0.0, 0.25, 0.5, 0.75}
    assert any(strip_image_tags(r["question"]) == "" for r in mmfr)  # <image>-only question
    assert any(len(r["question"]) > 20_000 for r in mmfr)  # far over the token budget
    vkeys = {(clean_question(r["extra_info"]["question"]), (r["image"] or {}).get("bytes")) for r in vero}
    assert any((clean_question(r["question"]), (r["image"] or {}).get("bytes")) in vkeys for r in mmfr)


def test_rows_are_deterministic_and_teacher_is_partly_right():
    assert vero_row(1, 7, "stem-geo170k", 7) == vero_row(1, 7, "stem-geo170k", 7)
    assert mmfr_row(1, 7, "MMR1", 100) == mmfr_row(1, 7, "MMR1", 100)
    rows = [mmfr_row(0, i, "MMR1", 0) for i in range(600)]
    scored = [r for r in rows if r["answer"] and len(r["answer"]) < 20]
    right = sum(r["qwen3vl_235b_thinking_response"].endswith(f"\\boxed{{{r['answer']}}}") for r in scored)
    assert 0.55 < right / len(scored) < 0.75
    assert all(len(r["qwen3vl_235b_thinking_response"]) < 400 for r in rows)


def test_recipe_tables():
    assert canonical_name("stem-ai2d_merged") == canonical_name("FineVision-ai2d_merged") == "ai2d"
    assert canonical_name("stem-wemath20_pro") == canonical_name("WeMath2-Standard") == "wemath"
    assert (tier_of("ai2d"), tier_of("gqa"), tier_of(canonical_name("chart_ocr-reachqa"))) == (1, 2, None)



def test_reward_type_of_a_row_is_the_curation_sql():
    import duckdb

    from data_prep.stages import _reward_case

    raw = [("vero", "numeric"), ("vero", " Multiple_Choice "), ("vero", "llm_judge"), ("vero", "grounding"),
           ("vero", None), ("mmfr", "numeric")]
    con = duckdb.connect()
    con.execute("CREATE TABLE r (source VARCHAR, reward_type_raw VARCHAR)")
    con.executemany("INSERT INTO r VALUES (?, ?)", raw)
    got = [row[0] for row in con.execute(f"SELECT {_reward_case()} FROM r ORDER BY rowid").fetchall()]
    assert got == ["rule", "rule", "judge", "judge", "judge", "rule"]


@pytest.mark.parametrize("text", [
    "<image>\nHow many circles?", "a  <image>  b\t\tc", "What  is\n\n\n\nthis?  ", "<image 1> and <image_2> here",
    "Café  ſum <image>", "Plain question without directives.", " \n<image>\n \n",
])
def test_keyword_fast_path_equals_full_strip(text):
    assert clean_question(text) == strip_image_tags(strip_format_directives(text), numbered=True)


def test_cli_synthetic_end_to_end(tmp_path, capsys):
    from flows.zppo_cli import main

    rc = main(["curate", "--out", str(tmp_path), "--synthetic", "--scale", "300", "--seed", "1", "--quiet"])
    assert rc == 0
    for name in ("curation.duckdb", "zppo77k.parquet", "report.json", "report.md"):
        assert (tmp_path / name).exists()
    out = capsys.readouterr().out
    assert re.search(r"vero: 300 in, \d+ kept, \d+ rejected", out)


def test_cli_reports_bad_file(tmp_path, capsys):
    from flows.zppo_cli import main

    bad = tmp_path / "mmfr.parquet"
    pq.write_table(pq.read_table(_tiny_mmfr(tmp_path)).drop_columns(["question"]), bad)
    rc = main(["curate", "--out", str(tmp_path / "o"), "--vero", "", "--mmfr", str(bad), "--quiet"])
    assert rc == 2 and "missing required column 'question'" in capsys.readouterr().err


def _tiny_mmfr(tmp_path):
    paths = generate_sources(tmp_path / "tiny", vero_rows=0, mmfr_rows=5, seed=0)
    return next(paths["mmfr"].rglob("*.parquet"))
