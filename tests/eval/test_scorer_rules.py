r"""Scorer rules on rows in each dataset's own schema, written from the official definitions:
ANLS (DocVQA/InfographicVQA: max over golds of 1 - NL, 0 when NL >= 0.5), VLMs-are-Blind grid
answers (rows,columns: ordered), MathVerse's option notation, MMMU-Pro's vision setting, and the
loader's row accounting."""

from __future__ import annotations

import pytest

from eval import registry
from eval.adapters import MMMU_PRO_VISION_QUESTION
from eval.loaders import load_items
from eval.prompting import question_body
from eval.scorers import rule_score
from eval_helpers import png, write_rows

B = "\\boxed{%s}"


def _items(abbr: str, rows: list[dict], tmp_path) -> list:
    return load_items(registry.get(abbr), data_files=write_rows(tmp_path / f"{abbr}.parquet", rows)).items


# --------------------------------------------------------------------------------- ANLS
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (B % "\\text{North America}", 1.0),  # \text{} unwrapped before ANLS
        (B % "\\textbf{north america}", 1.0),  # ANLS is case-insensitive
        (B % "North Americas", 1 - 1 / 14),  # lev 1 over 14 characters
        (B % "Europe", 0.0),  # NL >= 0.5 -> 0
        ("<think>maybe Asia</think>North America", 1.0),  # no box: the text after the reasoning
    ],
)
def test_infovqa_anls(response: str, expected: float, tmp_path) -> None:
    rows = [{"questionId": 1, "question": "Which continent?", "answers": ["North America", "N. America"],
             "image": png()}]
    (item,) = _items("InfoVQA", rows, tmp_path)
    assert rule_score("anls", item, response).score == pytest.approx(expected)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Coca Cola", 1.0),
        ("coca cola company", 1.0),  # not case sensitive
        ("CocaCola", 1 - 1 / 9),  # one missing space against "coca cola"
        ("Coca Cola Co", 1 - 3 / 12),  # best gold: "coca cola" (3 edits over 12) beats 5 over 17
        ("Coca", 0.0),  # NL = 5/9 >= 0.5
    ],
)
def test_anls_on_the_rrc_example_question(output: str, expected: float) -> None:
    """The question the RRC task page uses to explain ANLS ("What soft drink company name is on the
    red disk?", golds "Coca Cola" / "Coca Cola Company"); values computed from the definition."""
    from eval.metrics_det import anls

    assert anls(output, ["Coca Cola", "Coca Cola Company"]) == pytest.approx(expected)


# ------------------------------------------------------------------------ VLMs are Blind
@pytest.mark.parametrize(("response", "expected"), [(B % "3,4", 1.0), (B % "3, 4", 1.0), (B % "4,3", 0.0),
                                                    (B % "(3,4)", 1.0), (B % "3", 0.0)])
def test_vlmsareblind_grid_is_ordered(response: str, expected: float, tmp_path) -> None:
    rows = [{"task": "Counting Grid - Blank Grids", "prompt": "Count the rows and columns. Answer as rows,columns.",
             "groundtruth": "3,4", "image": png(), "metadata": "{}"}]
    (item,) = _items("VBlind", rows, tmp_path)
    assert rule_score("vblind", item, response).score == expected


# ----------------------------------------------------------------------------- MathVerse
@pytest.mark.parametrize(("response", "extracted", "expected"),
                         [(B % "B:45°", "B", 1.0), (B % "A:30°", "A", 0.0), (B % "B", "B", 1.0)])
def test_mathverse_option_notation(response: str, extracted: str, expected: float, tmp_path) -> None:
    rows = [{"sample_index": "7", "question": "Find the angle. Choices: A:30° B:45° C:60° D:90°", "answer": "B",
             "image": png(), "question_type": "multi-choice", "problem_version": "Text Dominant"}]
    (item,) = _items("MVerse", rows, tmp_path)
    got = rule_score("auto", item, response)
    assert (got.extracted, got.score) == (extracted, expected)


# ------------------------------------------------------------------------------- MMMU-Pro
def test_mmmu_pro_vision_rows_load_and_score(tmp_path) -> None:
    rows = [{"id": "validation_Art_1", "image": png(), "options": "['Monet', 'Manet', 'Degas', 'Renoir']",
             "answer": "C", "subject": "Art"}]  # the vision configuration's columns: no `question`
    (item,) = _items("MMMUPro", rows, tmp_path)
    assert item.question == MMMU_PRO_VISION_QUESTION and item.options == [] and len(item.images) == 1
    assert "Monet" not in question_body(item)  # the options are in the screenshot, not in the text
    assert rule_score("auto", item, B % "C").score == 1.0
    assert rule_score("auto", item, B % "Degas").score == 1.0  # option text -> its letter
    assert rule_score("auto", item, B % "Monet").score == 0.0


# ------------------------------------------------------------------------ row accounting
def test_bad_rows_are_counted_not_fatal(tmp_path) -> None:
    rows = [{"question": "Which eats grass?", "options": ["cat", "cow"], "answer": "1", "image": png()},
            {"question": "Broken gold", "options": ["cat", "cow"], "answer": "x", "image": png()},
            {"question": "Which flies?", "options": ["owl", "cow"], "answer": "0", "image": png()}]
    loaded = load_items(registry.get("AI2D"), data_files=write_rows(tmp_path / "a.parquet", rows))
    assert [it.gold for it in loaded.items] == ["B", "A"]
    acc = loaded.accounting()
    assert (acc["rows_read"], acc["rows_with_items"], acc["rows_rejected"]) == (3, 2, 1)
    assert acc["rejected_reasons"][0].startswith("AI2D[default] row 1:")


def test_mathverse_vision_only_rows_get_a_question(tmp_path) -> None:
    from eval.adapters import MATHVERSE_VISION_ONLY_QUESTION

    rows = [{"sample_index": "9", "question": "", "answer": "A", "image": png(), "question_type": "multi-choice",
             "problem_version": "Vision Only"},
            {"sample_index": "10", "question": "", "answer": "12", "image": png(), "question_type": "free-form",
             "problem_version": "Vision Only"}]
    items = _items("MVerse", rows, tmp_path)
    assert [it.question for it in items] == [MATHVERSE_VISION_ONLY_QUESTION] * 2
    assert [it.answer_type for it in items] == ["mc", "math"]
    assert rule_score("auto", items[0], B % "A:30°").score == 1.0
    assert rule_score("auto", items[1], B % "12").score == 1.0


def test_mmmu_pro_headline_is_standard_10_and_vision():
    from eval.scorers import aggregate

    recs = [{"subset": "standard (4 options)", "score": 1.0, "meta": {}},
            {"subset": "standard (10 options)", "score": 1.0, "meta": {}},
            {"subset": "standard (10 options)", "score": 0.0, "meta": {}},
            {"subset": "vision", "score": 0.0, "meta": {}}]
    out = aggregate(registry.get("MMMUPro").aggregate, recs)
    assert out["by_subset"] == {"standard (4 options)": 100.0, "standard (10 options)": 50.0, "vision": 0.0}
    assert out["accuracy"] == 25.0  # (50 + 0) / 2: the 4-option set is not in the headline
    assert out["all_configs_mean"] == 50.0


# ------------------------------------------------------------------------------ MathVista
@pytest.mark.parametrize(("answer_type", "precision", "gold", "response", "expected"), [
    ("integer", None, "3", B % "3.7", 1.0),  # int(float(x)): truncated, as MathVista's own scorer
    ("integer", None, "3", B % "3", 1.0),
    ("integer", None, "3", B % "4", 0.0),
    ("integer", None, "-2", B % "-2.9", 1.0),  # toward zero
    ("integer", None, "1000", B % "1,000", 1.0),  # thousands separator dropped first
    ("float", 1.0, "1.5", B % "1.46", 1.0),  # rounded to the row's precision
    ("float", 2.0, "1.5", B % "1.46", 0.0),
])
def test_mathvista_normalises_like_its_official_scorer(answer_type, precision, gold, response, expected, tmp_path):
    rows = [{"pid": "7", "question": "Value?", "choices": None, "answer": gold, "question_type": "free_form",
             "answer_type": answer_type, "precision": precision, "unit": None, "decoded_image": png()}]
    (item,) = _items("MVista", rows, tmp_path)
    assert rule_score(registry.get("MVista").scorer, item, response).score == expected
