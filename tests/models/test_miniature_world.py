"""The miniature world: exact chain-of-thought strings, wrong candidates, disjoint splits."""

from __future__ import annotations

import json
import random
import re

import pytest

from zppo_core.grading import extract_boxed
from zppo_core.models import miniature as world


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


def test_reading_examples_use_other_families_only():
    kinds = [k for k, _ in world.STUDENT.mix if k.startswith("bcq:")]
    assert kinds and all(k.split(":")[1] != world.TRAIN_FAMILY for k in kinds)
    req, target = world.make_example("bcq:mul", world.STUDENT, random.Random(3))
    text = req.messages[0]["content"]
    assert text.count("<candidate>\n") == 2 and target in text


@pytest.mark.parametrize("name", sorted(world.RECIPES))
def test_shipped_weights_are_installed_when_the_recipe_matches(tmp_path, name):
    """Every shipped folder's fingerprint is the current recipe's (a recipe field added or changed
    without re-stamping would silently rebuild the model, ~20 min, on every fresh machine)."""
    import hashlib
    from pathlib import Path

    from zppo_core.models import resolve

    shipped = Path(world.__file__).resolve().parents[2] / world.ASSETS_DIR / name
    if not (shipped / world.FINGERPRINT_FILE).exists():
        pytest.fail(f"assets/miniature/{name} is missing: run `make miniature-models`")
    stamp = json.loads((shipped / world.FINGERPRINT_FILE).read_text())["fingerprint"]
    assert stamp == world.recipe_fingerprint(name), f"{name}: shipped weights are stamped for another recipe"
    out = Path(resolve(f"builtin:{name}", cache_dir=str(tmp_path)))
    assert world.recipe_fingerprint(name) in out.name  # a new recipe never reuses an old cache
    digest = [hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest() for d in (shipped, out)]
    assert digest[0] == digest[1]


def test_student_never_sees_a_plain_hard_addition_and_reads_beyond_its_plain_lengths():
    """The hard in-family items (the longest split length) are absent from the student's plain
    diet; its reading (BCQ) examples go past every plain length, where only copying helps."""
    rng = random.Random(0)
    hard = max(world.SPLIT_LENGTHS)
    plain_add = [world._length(world.STUDENT, "add", rng) for _ in range(2000)]
    reading = [world._length(world.STUDENT, "mul", rng, reading=True) for _ in range(2000)]
    assert max(plain_add) < hard
    assert max(reading) == world.STUDENT.bcq_max_digits > world.STUDENT.max_digits
