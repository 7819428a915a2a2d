r"""Ordered answers vs sets, MathVerse's option notation and ``\text{}`` unwrapping in the one
grader (``zppo_core.grading``) that serves both the RL reward and the benchmark scorers.

Rule (written from the issue's definition, not from outputs): a bare comma list or a tuple is
ordered — element i of the prediction must equal element i of the gold; a set is matched as a set
only when the gold is written as one (``\{3,4\}``)."""

from __future__ import annotations

import pytest

from zppo_core import grading

ORDERED = [
    # VLMs-are-Blind grid: rows,columns
    ("4,3", "3,4", False),
    ("3,4", "3,4", True),
    ("3, 4", "3,4", True),
    ("(3,4)", "3,4", True),  # a tuple is an ordered list
    ("(4,3)", "3,4", False),
    ("3,4", "(3,4)", True),
    ("3", "3,4", False),  # a missing element is wrong
    ("3,4,5", "3,4", False),
    (r"\frac{1}{2}, 3", "0.5,3", True),  # elements compared with the full equivalence
    ("x=3, y=4", "x=3,y=4", True),
    ("cat, dog", "dog, cat", False),
    ("1000", "1,000", True),  # thousands separators are numbers, not lists
    ("1,000", "1000", True),
    ("1001", "1\\,000", False),  # a LaTeX thin space is not a list separator
    ("1000", "1\\,000", True),
    ("f(1, 2)", "f(1,2)", True),  # commas inside brackets do not split
]
SETS = [
    ("4,3", r"\{3,4\}", True),  # gold written as a set: order is irrelevant
    (r"\{4,3\}", r"\{3,4\}", True),
    ("4,3", r"\left\{3,4\right\}", True),
    ("4,5", r"\{3,4\}", False),
    (r"\{4,3\}", "3,4", False),  # an ordered gold is not matched by a set
]


@pytest.mark.parametrize(("pred", "gold", "expected"), ORDERED + SETS)
def test_ordered_lists_and_sets(pred: str, gold: str, expected: bool) -> None:
    assert grading.answers_match(pred, gold) is expected


def test_paper_grader_is_order_sensitive_too() -> None:
    """mathruler's grade_answer (the paper's reward library) already rejects 4,3 for 3,4; only
    math-verify read a bare list as a set."""
    from mathruler.grader import grade_answer

    assert grade_answer("4,3", "3,4") is False and grade_answer("3,4", "3,4") is True


def test_rl_reward_uses_the_same_rule() -> None:
    assert grading.reward(r"<think>rows then columns</think> \boxed{4,3}", "3,4") == 0.0
    assert grading.reward(r"<think>rows then columns</think> \boxed{3,4}", "3,4") == 1.0
    assert grading.reward(r"\boxed{4,3}", r"\{3,4\}") == 1.0


@pytest.mark.parametrize(
    ("boxed", "expected"),
    [("B:45°", "B"), ("B: 45°", "B"), ("C:\\frac{1}{2}", "C"), ("B", "B"), ("a:b", None), ("B::C", None)],
)
def test_mathverse_option_notation(boxed: str, expected: str | None) -> None:
    assert grading.extract_choice_letter("\\boxed{%s}" % boxed, 26) == expected


def test_mathverse_option_notation_matches_letter_gold() -> None:
    assert grading.answers_match("B:45°", "B") is True
    assert grading.answers_match("C:45°", "B") is False


@pytest.mark.parametrize(
    ("s", "expected"),
    [(r"\text{North America}", "North America"), (r"\textbf{\text{a b}}", "a b"), ("plain", "plain"), (None, "")],
)
def test_unwrap_text(s: object, expected: str) -> None:
    assert grading.unwrap_text(s) == expected
