"""Pure parts of the Hint / Prefix baselines: X_aug, the correct-rollout pick, the hint leak
check and the floor(0.4 L) prefix."""

from __future__ import annotations

import random

import pytest

from zppo_core.guidance import hard_entries, hint_leak, pick_correct, prefix_ids, prefix_length
from zppo_core.zpd import global_precap
from zppo_core.prompts import HINT_INSTRUCTION, build_hint_prompt, build_hint_question


def test_x_aug_is_the_capped_hard_set_ascending_with_stable_ties():
    outs = [("a", 0.25, None), ("b", 0.75, None), ("c", 0.0, None), ("d", 0.25, None), ("e", 0.5, None)]
    entries = hard_entries(outs, range(5), 0.5)
    assert entries == [(0, "a", 0.25), (2, "c", 0.0), (3, "d", 0.25)]
    assert global_precap(entries, 10) == ["c", "a", "d"]
    assert global_precap(entries, 2) == ["c", "a"]
    assert global_precap(entries, 0) == []
    # two ranks holding halves of the step give the same X_aug as one process
    rank0, rank1 = hard_entries(outs[::2], [0, 2, 4], 0.5), hard_entries(outs[1::2], [1, 3], 0.5)
    assert global_precap(rank0 + rank1, 2) == global_precap(rank1 + rank0, 2) == ["c", "a"]
    with pytest.raises(ValueError):
        hard_entries(outs, range(4), 0.5)


def test_pick_correct_uniform_over_correct_only():
    assert pick_correct([0.0, 0.0], random.Random(0)) is None
    picks = {pick_correct([0.0, 1.0, 0.0, 1.0], random.Random(s)) for s in range(40)}
    assert picks == {1, 3}


@pytest.mark.parametrize(
    "hint, gold, reason",
    [
        ("Count the apples in each basket, then add.", "12", None),
        ("", "12", "empty"),
        ("   \n", "12", "empty"),
        ("So the total is \\boxed{12}", "12", "boxed"),
        ("Write \\boxed{} at the end", "7", "boxed"),
        ("Use \\fbox{x}", "7", "boxed"),
        ("The answer is 12.", "12", "answer_stated"),
        ("Add them: you get 12", "12", None),  # "get" states nothing the filter reads as an answer
        ("Add them: 5 + 7 = 12", "12", "conclusion"),
        ("Look at step 112 and 12.5", "12", None),  # not a whole number run
        ("The correct option is b", "B", "answer_stated"),  # case-insensitive letter
        ("Consider the base angles", "B", None),  # inside a word: no leak
        ("So it equals \\frac{1}{2}", "\\frac{1}{2}", None),  # "equals" alone is no statement ...
        ("The result is \\frac{1}{2}", "\\frac{1}{2}", "answer_stated"),  # ... "the result is" is
        ("It equals one half", "0.5", None),  # equivalent forms are not detected (documented)
        ("The answer is  north east ", "North East", "answer_stated"),  # whitespace / case normalised
        # short golds (letters, small integers, yes/no): ordinary hints are kept ...
        ("Find a relation between the two angles first.", "A", None),
        ("Step 1: compute the area of each part.", "1", None),
        ("Notice the 2 parallel lines cut the triangle.", "2", None),
        ("There is no need to expand the product.", "no", None),
        ("Decide whether the answer is yes or no.", "no", None),
        ("Decide whether the answer is 1 or 2.", "1", None),
        # ... and real leaks are dropped
        ("Compare the shaded regions; so the answer is (A).", "A", "answer_stated"),
        ("Answer: 1", "1", "answer_stated"),
        ("Choose option A since its area is the largest.", "A", "answer_stated"),
        ("Check both conditions. It is no.", "no", "conclusion"),
        ("Count the corners: there are 2", "2", "conclusion"),
        ("A.", "A", "conclusion"),
    ],
)
def test_hint_leak(hint, gold, reason):
    assert hint_leak(hint, gold) == reason


@pytest.mark.parametrize("n, expected", [(0, 0), (1, 0), (2, 0), (3, 1), (5, 2), (10, 4), (11, 4), (48, 19)])
def test_prefix_length_is_floor_of_0_4_l(n, expected):
    assert prefix_length(n, 0.4) == expected


def test_prefix_length_exact_decimal_and_bounds():
    assert prefix_length(100, 0.29) == 29  # binary float would give 28
    assert prefix_length(7, 1.0) == 7 and prefix_length(7, 0.0) == 0
    with pytest.raises(ValueError):
        prefix_length(5, 1.5)
    assert prefix_ids([5, 6, 7, 8, 9, 10, 11], 0.4) == [5, 6]


def test_hint_prompts_are_verbatim_fig19():
    assert HINT_INSTRUCTION.startswith("Read the solved response below and write a concise hint")
    p = build_hint_prompt("  <think>x</think> \\boxed{3} ")
    assert p == HINT_INSTRUCTION + "\n<response>\n<think>x</think> \\boxed{3}\n</response>"
    q = build_hint_question("What is 1+2?", " add ")
    assert q.startswith("What is 1+2?\n\n<hint>\nadd\n</hint>\n\n")
