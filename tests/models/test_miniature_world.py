"""The miniature world: exact chain-of-thought strings, wrong candidates, disjoint splits, the
student's diet (reading exercises of other families only) and the shipped warm-start weights."""

from __future__ import annotations

import random
import re

import pytest

from zppo_core.grading import extract_boxed
from zppo_core.models import miniature as world
from zppo_core.models import miniature_warmstart as warm


@pytest.mark.parametrize("family,a,b,steps,answer", [
    ("add", 345, 678, "5+8+0=13 4+7+1=12 3+6+1=10", "1023"),
    ("add", 7, 5, "7+5+0=12", "12"),
    ("mul", 345, 7, "5*7+0=35 4*7+3=31 3*7+3=24", "2415"),
    ("sub", 345, 178, "5-8-0=-3 4-7-1=-4 3-1-1=1", "167"),
    ("sub", 1000, 1, "0-1-0=-1 0-0-1=-1 0-0-1=-1 1-0-1=0", "999"),
])
def test_chain_of_thought_and_solution(family, a, b, steps, answer):
    assert world.chain_of_thought(family, a, b) == steps
    assert world.solution(family, a, b) == f"<think>\n{steps}\n</think>\n\\boxed{{{answer}}}"
    assert world.Item(family, len(str(a)), a, b).answer == answer


def _operands(response: str) -> list[tuple[int, int]]:
    return [(int(x), int(y)) for x, y in re.findall(r"(\d)[-+*](\d)[-+]\d=", response)]


@pytest.mark.parametrize("family", world.FAMILIES)
def test_wrong_candidate_misreads_exactly_one_digit(family):
    rng = random.Random(0)
    for n in (1, 2, 3, 4):
        for _ in range(50):
            it = world.draw_item(family, n, rng)
            wrong = world.wrong_solution(it, rng)
            assert extract_boxed(wrong) != it.answer
            right_ops, wrong_ops = _operands(world.solution(family, it.a, it.b)), _operands(wrong)
            assert len(right_ops) == len(wrong_ops) == n
            changed = sum(x != y for r, w in zip(right_ops, wrong_ops) for x, y in zip(r, w))
            assert changed == 1 or (family == "mul" and changed == n)  # mul: a digit of a, or b


def test_sub_with_equal_operands_misreads_b():
    wrong = world.wrong_solution(world.Item("sub", 1, 9, 9), random.Random(0))
    assert extract_boxed(wrong) != "0" and wrong.startswith("<think>\n9-")


def test_splits_are_disjoint_and_lengths_cycle():
    rows = world.train_rows(300, seed=0)
    assert len({r["question"] for r in rows}) == 300
    assert not any(world.is_test_question(r["question"]) for r in rows)
    assert {r["sub_dataset"] for r in rows} == {"mini_add2", "mini_add3", "mini_add4"}
    rng = random.Random(1)
    test = [world.test_item("add", rng, i) for i in range(6)]
    assert [t.n for t in test] == [2, 3, 4, 2, 3, 4]
    assert all(world.is_test_question(t.question) for t in test)


def _stages(recipe):
    return (recipe, *recipe.then)


def test_reading_examples_use_other_families_only():
    kinds = [k for st in _stages(warm.STUDENT) for k, _ in st.mix if not k.startswith("plain:")]
    assert {k.split(":")[0] for k in kinds} == {"bcq", "copy"}
    assert all(k.split(":")[1] != world.TRAIN_FAMILY for k in kinds)
    req, target = warm.make_example("bcq:mul", warm.STUDENT, random.Random(3))
    text = req.messages[0]["content"]
    assert text.count("<candidate>\n") == 2 and target in text


def test_copy_exercise_target_is_a_candidate_no_arithmetic_can_produce():
    """Copy exercises: a mul/sub question, two candidates in a solution's shape, the target one
    of them verbatim; their digits are random, so the target is not the question's solution and
    its steps are (almost all) false -- only copying gets it right."""
    rng = random.Random(0)
    near, false_steps, total_steps = 0, 0, 0
    for _ in range(200):
        req, target = warm.make_example("copy:sub", warm.STUDENT_COPY, rng)
        text = req.messages[0]["content"]
        q = re.match(r"What is (\d+) - (\d+)\?", text)
        assert q, text[:40]
        cands = [c.split("\n</candidate>")[0] for c in text.split("<candidate>\n")[1:]]
        assert len(cands) == 2 and target in cands and cands[0] != cands[1]
        assert extract_boxed(target) != str(int(q[1]) - int(q[2])) or extract_boxed(target) is None
        other = cands[1 - cands.index(target)]
        near += len(other) == len(target) and sum(x != y for x, y in zip(other, target)) == 1
        for x, op, y, c, v in re.findall(r"(\d)([-+*])(\d)\2(\d)=(-?\d+)", target):
            total_steps += 1
            x, y, c, v = int(x), int(y), int(c), int(v)
            false_steps += v != {"+": x + y + c, "-": x - y - c, "*": x * y + c}[op]
    assert 60 <= near <= 140  # about half are near misses
    assert false_steps / total_steps > 0.8


def test_student_never_sees_a_plain_hard_addition_and_reads_beyond_its_plain_lengths():
    """The hard in-family items (the longest split length) are absent from the student's plain
    diet; its reading (BCQ) examples go past every plain length, where only copying helps."""
    rng = random.Random(0)
    hard = max(world.SPLIT_LENGTHS)
    for stage in _stages(warm.STUDENT):
        plain_add = [warm._length(stage, "add", rng) for _ in range(2000)]
        reading = [warm._length(stage, "mul", rng, reading=True) for _ in range(2000)]
        assert max(plain_add) < hard
        assert max(reading) == stage.bcq_max_digits > stage.max_digits


_QUESTION = re.compile(r"What is (\d+) ([-+*]) (\d+)\?")
_FAMILY = {"+": "add", "*": "mul", "-": "sub"}


def _shown_items(text: str) -> list[world.Item]:
    return [world.Item(_FAMILY[op], len(a), int(a), int(b)) for a, op, b in _QUESTION.findall(text)]


def test_warm_start_examples_never_show_a_test_item():
    """Replays the start of every example stream of every stage of both models (as
    ``_run_stage`` draws them) and checks that no question they show can be a test item; every
    item of the three test splits is one (so the two sets are disjoint). Without the
    warm-start's rejection about a fifth of the 2-4 digit questions would be test questions."""
    shown = 0
    for recipe in warm.RECIPES.values():
        for stage in _stages(recipe):
            rng = random.Random(stage.seed)
            for kind, _ in stage.mix:
                for _ in range(400):
                    req, target = warm.make_example(kind, stage, rng)
                    items = _shown_items(req.messages[0]["content"])
                    assert len(items) == 1, req.messages[0]["content"][:80]
                    assert not world.in_test_split(items[0]), (kind, items[0])
                    shown += items[0].n in world.SPLIT_LENGTHS
    assert shown > 2000  # most of them are of a test length, so the check had something to reject
    from eval.miniature import MINI_BENCHMARKS, _maker
    for family in MINI_BENCHMARKS.values():
        make, rng = _maker(family), random.Random(0)
        test_items = [_shown_items(make(rng, i)["question"])[0] for i in range(150)]
        assert all(world.in_test_split(it) for it in test_items)
