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
_WORKED = re.compile(r"<think>\n([^<]*)\n</think>\n\\boxed\{(-?\d+)\}")
_STEP = re.compile(r"(\d)([-+*])(\d)[-+](\d)=(-?\d+)")
_FAMILY = {"+": "add", "*": "mul", "-": "sub"}


def _shown_items(text: str) -> list[world.Item]:
    """The questions ``text`` asks."""
    return [world.Item(_FAMILY[op], len(a), int(a), int(b)) for a, op, b in _QUESTION.findall(text)]


def _worked_items(text: str) -> list[world.Item]:
    """The items whose worked solution appears verbatim in ``text`` (a candidate or a target);
    chains whose steps are not a real solution (copy exercises' random digits) are skipped."""
    items = []
    for m in _WORKED.finditer(text):
        steps = _STEP.findall(m[1])
        if not steps or len({op for _, op, *_ in steps}) != 1:
            continue
        family = _FAMILY[steps[0][1]]
        a = int("".join(x for x, *_ in reversed(steps)))
        b = int(steps[0][2]) if family == "mul" else int("".join(y for _, _, y, *_ in reversed(steps)))
        item = world.Item(family, len(steps), a, b)
        if world.solution(family, a, b) == m[0]:
            items.append(item)
    return items


def _eval_test_items() -> list[world.Item]:
    """Every item of the three test splits as the miniature evaluates them (its config's seed
    and size)."""
    from eval.miniature import MINI_BENCHMARKS, _maker
    from zppo_core.config import load_config

    ev = load_config("configs/miniature.yaml").eval
    items = []
    for family in MINI_BENCHMARKS.values():
        make, rng = _maker(family), random.Random(ev.offline_seed)
        items += [_shown_items(make(rng, i)["question"])[0] for i in range(ev.offline_size)]
    return items


def test_worked_items_decodes_solutions_and_skips_scrambled_chains():
    it = world.Item("mul", 3, 345, 7)
    text = f"<candidate>\n{world.solution('mul', 345, 7)}\n</candidate> {world.solution('sub', 1000, 1)}"
    assert _worked_items(text) == [it, world.Item("sub", 4, 1000, 1)]
    assert _worked_items("<think>\n5+8+0=14\n</think>\n\\boxed{14}") == []  # not a real solution


def test_warm_start_streams_never_show_or_work_a_test_item():
    """Replays every batch of every stage of both models (``example_stream``, what
    ``warmstart_world`` trains on) and checks that no question a prompt asks and no worked
    solution in a prompt or a target (the correct and the misread candidates) can be a test
    item; every item the miniature evaluates is one, so the warm starts never saw a test item."""
    tested = 0
    for recipe in warm.RECIPES.values():
        for stage in _stages(recipe):
            for kind, examples in warm.example_stream(stage):
                for req, target in examples:
                    text = req.messages[0]["content"] + target
                    items = _shown_items(text) + _worked_items(text)
                    bad = [it for it in items if world.in_test_split(it)]
                    assert not bad, (kind, bad, text[:120])
                    tested += sum(it.n in world.SPLIT_LENGTHS for it in items)
    assert tested > 100_000  # most are of a test length: the check had things to reject
    assert all(world.in_test_split(it) for it in _eval_test_items())


def test_the_disjointness_check_can_fail():
    """Misread candidates drawn without ``avoid_test`` work test questions about a fifth of the
    time: the check above would see them."""
    rng = random.Random(0)
    hits = sum(world.in_test_split(_worked_items(world.wrong_solution(world.draw_warmstart_item("mul", 3, rng),
                                                                      rng))[0]) for _ in range(500))
    assert 50 < hits < 200
    rng = random.Random(0)
    assert not any(world.in_test_split(_worked_items(world.wrong_solution(
        world.draw_warmstart_item("mul", 3, rng), rng, avoid_test=True))[0]) for _ in range(500))
