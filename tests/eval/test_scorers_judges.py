"""Scorer unit tables: letters, numbers, ANLS, OCR metrics, aggregation, judge parsing."""

from __future__ import annotations

import pytest

from eval import judges, metrics_det as det
from eval.items import EvalItem
from eval.scorers import aggregate, rule_score
from eval.video import frame_indices


def mc(gold: str = "B", n: int = 4) -> EvalItem:
    return EvalItem("q", "Q?", gold, "mc", [f"opt{i}" for i in range(n)])


@pytest.mark.parametrize("response,extracted,score", [
    ("<think>hmm</think> \\boxed{B}", "B", 1.0),
    ("\\boxed{(C)}", "C", 0.0),
    ("<think>the answer is B</think>", "B", 1.0),            # look-inside-reasoning fallback
    ("\\boxed{opt1}", "B", 1.0),                               # boxed option text -> its letter
    ("no idea", "", None),                                     # unresolved -> judge
    ("\\boxed{F}", "", None),                                  # out of range letter
])
def test_mc_letters(response: str, extracted: str, score: float | None) -> None:
    rr = rule_score("auto", mc(), response)
    assert (rr.extracted, rr.score) == (extracted, score)


@pytest.mark.parametrize("response,gold,score", [
    ("\\boxed{\\frac{1}{2}}", "0.5", 1.0), ("\\boxed{12}", "12.0", 1.0), ("\\boxed{13}", "12", 0.0),
    ("twelve", "12", None),
])
def test_math_equivalence(response: str, gold: str, score: float | None) -> None:
    assert rule_score("auto", EvalItem("q", "Q", gold, "math"), response).score == score


def test_text_mismatch_goes_to_judge_but_match_is_final() -> None:
    item = EvalItem("q", "Q", "Paris", "text")
    assert rule_score("auto", item, "\\boxed{paris}").score == 1.0
    assert rule_score("auto", item, "\\boxed{the capital Paris}").score is None


@pytest.mark.parametrize("pred,answers,value", [
    ("1200", ["1200"], 1.0), ("1300", ["1200"], 0.75), ("abcd", ["wxyz"], 0.0),
    ("Hello", [" hello "], 1.0), ("helo", ["hello", "x"], 0.8),
])
def test_anls(pred: str, answers: list[str], value: float) -> None:
    assert det.anls(pred, answers) == pytest.approx(value)


def test_box_iou() -> None:
    assert det.iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)


def test_dynamath_worst_case_and_per_config() -> None:
    recs = [{"item_id": f"v{k}/s", "subset": f"v{k}", "score": s, "meta": {"id": seed}}
            for k, (seed, s) in enumerate([("1", 1.0), ("1", 0.0), ("2", 1.0), ("2", 1.0)])]
    out = aggregate("dynamath", recs)
    assert (out["average_case"], out["worst_case"]) == (75.0, 50.0)
    pc = aggregate("per_config", [{"subset": "a", "score": 1.0}, {"subset": "a", "score": 1.0},
                                  {"subset": "b", "score": 0.0}])
    assert pc["accuracy"] == 50.0 and pc["by_subset"] == {"a": 100.0, "b": 0.0}


@pytest.mark.parametrize("text,score,malformed", [
    ('{"verdict": "correct"}', 1.0, False), ('{"verdict": "wrong"}', 0.0, False),
    ('<think>ok</think>{"verdict": "correct"}', 1.0, False),
    ('```json\n{"verdict": "correct"}\n```', 0.0, True), ('The answer is correct.', 0.0, True),
    ('{"verdict": "maybe"}', 0.0, True), ('{"verdict": "correct"', 0.0, True), ("", 0.0, True),
])
def test_shared_judge_strict_json(text: str, score: float, malformed: bool) -> None:
    v = judges.parse_verdict(text)
    assert (v.score, v.malformed, v.raw) == (score, malformed, text)


def test_benchmark_judge_parsers() -> None:
    assert judges.parse_mmvet("0.7").score == 0.7 and judges.parse_mmvet("great").malformed
    assert judges.parse_mmvet("1.5").malformed
    assert judges.parse_multichallenge("fine\nNO", "NO").score == 1.0
    assert judges.parse_multichallenge("fine\nYES", "NO").score == 0.0
    assert judges.parse_hle('{"extracted_final_answer": "4", "reasoning": "", "correct": "no", "confidence": 1}').score == 0.0
    assert judges.parse_hle('{"correct": "perhaps"}').malformed
    assert judges.parse_charxiv('{"extracted_answer": "x", "score": 1}').score == 1.0
    assert judges.parse_charxiv('{"extracted_answer": "x", "score": 2}').malformed


def test_judge_prompts_carry_the_rubric_inputs() -> None:
    item = EvalItem("m", "What is x?", "-1 <AND> -5", "open")
    p = judges.build_prompt("mmvet", item, "x = -1")
    assert p.endswith("What is x? | -1 <AND> -5 | x = -1 |")
    cx = EvalItem("c", "Q", "3", "open", meta={"charxiv": "reasoning", "inst": 4})
    assert "extracted_answer" in judges.build_prompt("charxiv", cx, "r") and "* Ground Truth: 3" in judges.build_prompt("charxiv", cx, "r")
    shared = judges.build_prompt("shared", mc(), "\\boxed{B}")
    assert "## Ground Truth Answer\nB" in shared and "A. opt0" in shared


@pytest.mark.parametrize("n,native,fps,cap,expected", [
    (100, 10.0, 1.0, 64, [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]),  # 10 s at 1 fps -> 10 frames
    (100, 10.0, 1.0, 4, [0, 33, 66, 99]),                           # capped
    (30, 10.0, 1.0, 64, [0, 29]),                                   # 3 s -> 3 -> even 2
    (1, 10.0, 1.0, 64, [0]),
])
def test_frame_rule(n: int, native: float, fps: float, cap: int, expected: list[int]) -> None:
    assert frame_indices(n, native, fps, cap) == expected


NON_FINITE = ["Infinity", "-Infinity", "NaN", "1e999"]


@pytest.mark.parametrize("number", NON_FINITE)
def test_judge_outputs_with_non_finite_numbers_are_malformed(number: str) -> None:
    from zppo_core import grading

    assert grading.parse_json_object(f'{{"score": {number}}}') is None
    assert judges.parse_charxiv(f'{{"extracted_answer": "x", "score": {number}}}').malformed
    assert judges.parse_hle(f'{{"correct": "yes", "confidence": {number}}}').malformed
    assert judges.parse_verdict(f'{{"verdict": "correct", "confidence": {number}}}').malformed
    assert grading.parse_json_object('{"score": 1e308}') == {"score": 1e308}  # large but finite


def test_non_finite_judge_output_does_not_abort_a_judged_batch() -> None:
    from eval.judges import Judge
    from eval_helpers import ScriptedBackend
    from zppo_core.engines.base import SamplingParams

    item = EvalItem("c", "Q", "3", "open", meta={"charxiv": "reasoning", "inst": 4})
    verdicts = Judge(ScriptedBackend('{"extracted_answer": "3", "score": Infinity}'), SamplingParams())(
        "charxiv", [(item, "r"), (item, "r2")])
    assert [(v.score, v.malformed) for v in verdicts] == [(0.0, True), (0.0, True)]
