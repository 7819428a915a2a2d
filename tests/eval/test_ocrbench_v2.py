"""OCRBench v2 per-type rules, written from the authors' evaluation scripts (eval.py,
vqa_metric.py, IoUscore_metric.py, TEDS_metric.py, get_score.py) and hand-computed here; the
first cases are the worked examples the scripts themselves print."""

from __future__ import annotations

import math

import pytest

from eval import ocrbench_v2 as ocr
from eval import registry
from eval.items import EvalItem
from eval.loaders import load_items
from eval.scorers import aggregate, rule_score
from eval_helpers import png, write_rows


def row(task: str, answers: list, *, eval_: str | None = None, bbox: list | None = None, question: str = "Q?") -> dict:
    return {"type": task, "answers": answers, "eval": eval_, "bbox": bbox, "question": question}


# ------------------------------------------------------------------- the authors' own examples
def test_authors_worked_examples() -> None:
    # vqa_metric.py __main__: "apple" (1 word) is contained in the prediction -> 1
    assert ocr.vqa_en("apple pie and banana", ["apple", "banana pie", "apple pie and orange"]) == 1.0
    # IoUscore_metric.py __main__: [50,50,150,150] vs [60,60,140,140] -> 80*80 / 100*100
    assert ocr.int_iou([50, 50, 150, 150], [60, 60, 140, 140]) == pytest.approx(0.64)
    assert ocr.vqa_en("The content is Hello Buddies", ["Hello Buddies"]) == 1.0


# ----------------------------------------------------------------------------- VQA family
@pytest.mark.parametrize(
    ("pred", "expected"),
    [("B", 1.0), ("(B)", 1.0), ("B.", 1.0), ("B. 45", 1.0), ("because", 0.0), ("b", 0.0), ("B or C", 0.0)],
)
def test_multiple_choice_rows(pred: str, expected: float) -> None:
    assert ocr.score(pred, row("science QA en", ["B"], eval_="multiple choice")) == expected


def test_anls_switches_at_five_words() -> None:
    four, five = "the quick brown fox", "the quick brown fox jumps"
    pred = "I think the quick brown fox jumps"
    assert ocr.score(pred, row("cognition VQA en", [four])) == 1.0  # < 5 words: containment
    # exactly 5 words: ANLS; lev("i think the quick brown fox jumps", gold) = 8, max len 33
    assert ocr.score(pred, row("cognition VQA en", [five])) == pytest.approx(1 - 8 / 33)
    assert ocr.score("a lazy dog sleeps", row("cognition VQA en", [five])) == 0.0  # similarity < 0.5


def test_case_sensitive_rows() -> None:
    assert ocr.score("hello world", row("text recognition en", ["HeLLo"], eval_="case sensitive")) == 0.0
    assert ocr.score("HeLLo world", row("text recognition en", ["HeLLo"], eval_="case sensitive")) == 1.0
    assert ocr.score("hello world", row("text recognition en", ["HeLLo"])) == 1.0  # default: lowercased


def test_math_qa_uses_containment_not_last_number() -> None:
    assert ocr.score("12 apples, 15 in total", row("math QA en", ["12"])) == 1.0
    assert ocr.score("15", row("math QA en", ["12"])) == 0.0


def test_chinese_vqa_removes_spaces_and_uses_anls_for_multipart() -> None:
    assert ocr.score("答案是北京大学", row("cognition VQA cn", ["北京 大学"])) == 1.0
    # 4 comma-separated parts: ANLS, lev("a,b,c,e", "a,b,c,d") = 1 over 7 characters
    assert ocr.score("a,b,c,e", row("reasoning VQA cn", ["a,b,c,d"])) == pytest.approx(6 / 7)
    assert ocr.score("a,b,d", row("reasoning VQA cn", ["a,b,c"])) == 0.0  # 3 parts: containment, no ANLS
    assert ocr.score("a,b,c,e", row("reasoning VQA cn", ["a,b,c"])) == 1.0


# ----------------------------------------------------------------------------------- counting
@pytest.mark.parametrize(
    ("pred", "expected"),
    [("about 8 words", 0.8), ("12", 0.8), ("10", 1.0), ("4", 0.0), ("20", 0.0), ("0", 0.0), ("none", 0.0)],
)
def test_counting_regression(pred: str, expected: float) -> None:
    assert ocr.score(pred, row("text counting en", ["10"], eval_="regression")) == pytest.approx(expected)


def test_counting_exact_match_is_containment() -> None:
    assert ocr.score("there are 12", row("text counting en", ["12"], eval_="exact match")) == 1.0
    assert ocr.score("there are 11", row("text counting en", ["12"], eval_="exact match")) == 0.0


# ------------------------------------------------------------------------- formulas, handwriting
def test_formula_rules() -> None:
    assert ocr.score("$ \\frac{a} {b} $", row("formula recognition en", ["\\frac{a}{b}"])) == 1.0
    assert ocr.score("\\frac{A}{b}", row("formula recognition en", ["\\frac{a}{b}"])) == 0.0  # case kept
    assert ocr.score("速度 = v", row("formula recognition cn", ["\\text{速度}=v"])) == 1.0
    assert ocr.score("速度 = v", row("formula recognition en", ["\\text{速度}=v"])) == 0.0  # en keeps tags


@pytest.mark.parametrize(("pred", "expected"), [("答案：A、C", 1.0), ("A C", 1.0), ("AC", 1.0), ("A和C", 1.0),
                                                ("CA", 0.0), ("A", 0.0)])
def test_handwritten_choice_answers(pred: str, expected: float) -> None:
    assert ocr.score(pred, row("handwritten answer extraction cn", ["AC"], question="选择题")) == expected


# --------------------------------------------------------------------------- boxes and dicts
def test_text_grounding_scores_the_iou() -> None:
    gold = ["0", "0", "10", "5"]
    assert ocr.score("[0, 0, 10, 10]", row("text grounding en", gold)) == pytest.approx(0.5)
    assert ocr.score("(0, 0, 10, 5)", row("text grounding en", ["[0, 0, 10, 5]"])) == 1.0
    # the last box with all coordinates in 0..1000 counts
    assert ocr.score("[0,0,10,5] then [0,0,2000,5]", row("text grounding en", gold)) == 1.0
    assert ocr.score("no box", row("text grounding en", gold)) == 0.0


def test_vqa_with_position_halves() -> None:
    meta = row("VQA with position en", ["Hello Buddies"], bbox=[60, 60, 140, 140])
    assert ocr.score('{"answer": "Hello Buddies", "bbox": [50, 50, 150, 150]}', meta) == pytest.approx(0.82)
    assert ocr.score('{"answer": "Goodbye"}', meta) == 0.0
    assert ocr.score('{"answer": "hello buddies"}', meta) == pytest.approx(0.5)


def test_key_information_extraction_f1() -> None:
    gold = ['{"name": "Tom", "date": ["1/2", "01/02"]}']
    assert ocr.score('{"name": "tom", "date": "01/02"}', row("key information extraction en", gold)) == 1.0
    assert ocr.score('{"name": "Tom"}', row("key information extraction en", gold)) == pytest.approx(0.5)
    assert ocr.score('{"name": "Tom", "date": "1/2", "x": "y"}',
                     row("key information mapping en", gold)) == pytest.approx(2 / 3)
    assert ocr.score("name: Tom", row("key information extraction cn", ["{'name': 'Tom'}"])) == 1.0


# ---------------------------------------------------------------------------- text similarity
def test_text_similarity_components() -> None:
    # identical 4 words: BLEU 1, METEOR 1 - 0.5 * (1 chunk / 4 matches)^3, set F1 1, edit 0
    assert ocr.text_similarity("a b c d", "a b c d") == pytest.approx((1 + (1 - 0.5 / 64) + 1 + 1) / 4)
    # 3 of 4 words: no 4-gram -> BLEU 0; METEOR P=1 R=.75; F1 6/7; lev 2 over 7 characters
    fmean = 0.75 / (0.9 + 0.1 * 0.75)
    meteor = fmean * (1 - 0.5 * (1 / 3) ** 3)
    assert ocr.text_similarity("a b c", "a b c d") == pytest.approx((0 + meteor + 6 / 7 + 5 / 7) / 4)
    assert ocr.bleu4("a b c d e".split(), "a b c d e".split()) == 1.0
    # brevity penalty: 4 of 5 reference words, all n-grams right -> exp(1 - 5/4)
    assert ocr.bleu4("a b c d e".split(), "a b c d".split()) == pytest.approx(math.exp(1 - 5 / 4))


def test_unknown_types_and_eval_nulls() -> None:
    assert ocr.eval_mode(float("nan")) is None and ocr.eval_mode("") is None and ocr.eval_mode(None) is None
    assert len([t for t in ocr.KNOWN_TYPES if t.endswith(" en")]) == 21
    assert len([t for t in ocr.KNOWN_TYPES if t.endswith(" cn")]) == 9
    with pytest.raises(KeyError):
        ocr.score("x", row("text recognition cn", ["x"]))


# ---------------------------------------------------------------------- scorer + aggregation
def _item(task: str, answers: list, **kw) -> EvalItem:
    return EvalItem("1", "Q?", str(answers[0]), "ocr", meta=row(task, answers, **kw))


def test_scorer_reads_the_boxed_answer_without_text_wrappers() -> None:
    got = rule_score("ocr_v2", _item("text recognition en", ["North America"]), "\\boxed{\\text{North America}}")
    assert got.extracted == "North America" and got.score == 1.0


def test_buckets_follow_get_score() -> None:
    recs = [{"score": s, "meta": {"type": t}} for t, s in [
        ("ASCII art classification en", 1.0), ("reasoning VQA en", 0.0),  # knowledge_reasoning: 0.5
        ("fine-grained text recognition en", 1.0),  # text_recognition: 1.0
        ("text counting en", 0.25)]]  # mathematical_calculation: 0.25
    out = aggregate("ocr_v2_en", recs)
    assert out["by_bucket"] == {"knowledge_reasoning": 50.0, "text_recognition": 100.0,
                                "mathematical_calculation": 25.0}
    assert out["accuracy"] == pytest.approx((50 + 100 + 25) / 3)
    cn = aggregate("ocr_v2_cn", [{"score": 1.0, "meta": {"type": "text translation cn"}},
                                 {"score": 0.0, "meta": {"type": "cognition VQA cn"}}])
    assert cn["by_bucket"] == {"knowledge_reasoning": 100.0, "visual_text_understanding": 0.0}


def test_loader_rejects_unknown_type_and_counts_it(tmp_path) -> None:
    rows = [{"id": 1, "dataset_name": "d", "question": "Read.", "type": "text recognition en", "answers": ["A"],
             "image": png(), "eval": None, "bbox": None},
            {"id": 2, "dataset_name": "d", "question": "Read.", "type": "mystery task en", "answers": ["A"],
             "image": png(), "eval": None, "bbox": None},
            {"id": 3, "dataset_name": "d", "question": "读", "type": "cognition VQA cn", "answers": ["甲"],
             "image": png(), "eval": None, "bbox": None}]
    loaded = load_items(registry.get("OCREN"), data_files=write_rows(tmp_path / "o.parquet", rows))
    assert [it.item_id for it in loaded.items] == ["1"]
    acc = loaded.accounting()
    assert (acc["rows_read"], acc["rows_with_items"], acc["rows_without_items"], acc["rows_rejected"]) == (3, 1, 1, 1)
    assert "row 1" in acc["rejected_reasons"][0] and "mystery task en" in acc["rejected_reasons"][0]


def test_meteor_alignment_follows_nltk_order() -> None:
    # hypothesis "a b a" vs reference "a a b": NLTK aligns from the end -> (0,0), (1,2), (2,1):
    # 3 chunks over 3 matches; P = R = 1 -> 1 - 0.5 * 1^3
    assert ocr.meteor_exact("a a b".split(), "a b a".split()) == pytest.approx(0.5)
    # "x a b" vs "a b": matches (1,0), (2,1) form one chunk; P = 2/3, R = 1
    fmean = (2 / 3) / (0.9 * (2 / 3) + 0.1)
    assert ocr.meteor_exact("a b".split(), "x a b".split()) == pytest.approx(fmean * (1 - 0.5 * (1 / 2) ** 3))


@pytest.mark.parametrize(
    ("row_fields", "response", "expected"),
    [
        ({"type": "science QA en", "answers": ["B"], "eval": "multiple choice"}, "\\boxed{because}", 0.0),
        ({"type": "science QA en", "answers": ["B"], "eval": "multiple choice"}, "\\boxed{(B)}", 1.0),
        ({"type": "text counting en", "answers": ["10"], "eval": "regression"}, "\\boxed{8}", 0.8),
        ({"type": "text grounding en", "answers": ["0", "0", "10", "5"], "eval": None}, "\\boxed{[0, 0, 10, 10]}", 0.5),
        ({"type": "cognition VQA cn", "answers": ["北京 大学"], "eval": None}, "\\boxed{\\text{北京大学}}", 1.0),
    ],
)
def test_rows_in_the_dataset_schema_end_to_end(row_fields: dict, response: str, expected: float, tmp_path) -> None:
    abbr = "OCRZH" if row_fields["type"].endswith(" cn") else "OCREN"
    rows = [{"id": 7, "dataset_name": "d", "question": "Q?", "image": png(), "bbox": None, **row_fields}]
    (item,) = load_items(registry.get(abbr), data_files=write_rows(tmp_path / "r.parquet", rows)).items
    assert rule_score("ocr_v2", item, response).score == pytest.approx(expected)
