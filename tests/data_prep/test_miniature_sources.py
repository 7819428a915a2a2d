"""The miniature world's offline sources (text-only additions in the real schemas) and
curation's ``require_images`` switch, which decides whether such rows are kept."""

from __future__ import annotations

import json
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from data_prep.curate import run_curation
from data_prep.synthetic import MMFR_SCHEMA, VERO_SCHEMA, with_synthetic_sources
from zppo_core.config import CurationConfig
from zppo_core.models import miniature as world

BASE = CurationConfig(synthetic=True, synthetic_scale=120, synthetic_world="miniature", tokenizer="builtin:qwen3.5",
                      threads=1)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return with_synthetic_sources(BASE, tmp_path_factory.mktemp("mini") / "sources")


def _rows(root):
    return [r for f in sorted(root.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_rows_are_text_only_training_additions_in_the_real_schemas(sources):
    from pathlib import Path

    vero, mmfr = Path(sources.vero), Path(sources.mmfr)
    assert all(pq.read_schema(f).equals(VERO_SCHEMA) for f in vero.rglob("*.parquet"))
    assert all(pq.read_schema(f).equals(MMFR_SCHEMA) for f in mmfr.rglob("*.parquet"))
    v, m = _rows(vero), _rows(mmfr)
    assert len(v) == 120 and len(m) == round(120 * 585_744 / 606_000)
    questions = [r["extra_info"]["question"] for r in v] + [r["question"] for r in m]
    assert all(r["image"] is None for r in v + m)
    assert all(q.startswith("What is ") and " + " in q for q in questions)
    assert not any(world.is_test_question(q) for q in questions)  # never a test-split item
    right = 0
    for r in m:  # the recorded teacher response: the row's worked solution, or a misread one
        a, b = (int(x) for x in r["question"][len("What is "):-1].split(" + "))
        resp = r["qwen3vl_235b_thinking_response"]
        if resp == world.solution("add", a, b):
            right += 1
        else:
            assert resp.startswith("<think>\n") and f"\\boxed{{{a + b}}}" not in resp
    assert 0 < right < len(m)  # DEFECTS.teacher_correct = 0.65


def test_curation_keeps_text_rows_only_when_images_are_not_required(sources, tmp_path):
    kept_run = run_curation(replace(sources, require_images=False), tmp_path / "text")
    strict_run = run_curation(replace(sources, require_images=True), tmp_path / "strict")
    for res in (kept_run, strict_run):  # nothing lost: in = kept + rejected, per source
        assert all(c["in"] == c["kept"] + c["rejected"] for c in res["counts"].values())
    kept = pq.read_table(kept_run["parquet"]).to_pylist()
    assert kept and all(r["image"] == "" for r in kept)
    assert not list((tmp_path / "text" / "images").glob("*"))
    assert {r["sub_dataset"] for r in kept} <= {"mmk12", "cosyn_math", "mmr1", "virl39k"}
    assert not any(r["sub_dataset"] == "mmk12" and r["source"] == "mmfr" for r in kept)  # Vero supplies mmk12
    report = json.loads((tmp_path / "text" / "report.json").read_text())
    reasons = {s["stage"]: s["dropped"] for s in report["stages"]}
    assert reasons["image_missing"] == 0 and reasons["pass_rate"] > 0 and reasons["answer_missing"] > 0
    # the same sources with images required: every row that got as far is rejected as image_missing
    strict = json.loads((tmp_path / "strict" / "report.json").read_text())
    assert sum(c["kept"] for c in strict_run["counts"].values()) == 0
    assert {s["stage"]: s["dropped"] for s in strict["stages"]}["image_missing"] == len(kept)


def test_pipeline_profile_asks_for_the_miniature_world():
    from zppo_core.config import load_config

    cur = load_config("configs/miniature.yaml").curation
    assert (cur.synthetic, cur.synthetic_world, cur.require_images) == (True, "miniature", False)
