r"""The miniature world: verifiable task families, a weak reading student and a stronger teacher.

A CPU-sized stand-in for the paper's setting (docs/miniature.md). Three arithmetic
families with a fixed-width chain of thought, least significant digit first, so a 2-layer model
can learn them and the difficulty knob ``n`` (operand digits) makes items hard:

* ``add``: "What is 345 + 678?" ->
  ``<think>\n5+8+0=13 4+7+1=12 3+6+1=10\n</think>\n\boxed{1023}`` (the RL / in-family family);
* ``mul``: n-digit times 1-digit, ``5*7+0=35 4*7+3=31 ...`` (held out from RL);
* ``sub``: a - b with a >= b, ``5-8-0=-3 4-7-1=-4 ...`` (a negative step borrows; held out).

Two models, both tiny ``Qwen3ForCausalLM`` on the project's BPE tokenizer, warm-started by a
seeded supervised run (:mod:`zppo_core.models.miniature_warmstart`):

* the **teacher** learns plain ``add`` at every length (1..``max_digits``);
* the **student** (same shape, another diet, three stages: ``miniature_warmstart.STUDENT``) learns plain
  ``add`` at short lengths only (it fails the hard length alone), plain ``mul``/``sub``, and
  *reading*: first copying alone (copy exercises: BCQ-template prompts of ``mul``/``sub``
  questions whose candidates are random digits, so only copying a candidate helps), then
  everything together with real BCQ prompts of ``mul``/``sub`` built with the project's own
  template (:func:`zppo_core.prompts.build_bcq`) -- one correct and one wrong candidate, the
  target is the correct one. It never sees a BCQ prompt of ``add``, the family RL trains on
  (as pretraining taught the paper's students to read, on other data).

Wrong candidates misread one operand digit and carry the error through consistently, so a
reader can tell them apart only by checking the candidate against the question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAMILIES = ("add", "mul", "sub")
#: the family RL trains on; the others are held out from RL
TRAIN_FAMILY = "add"
HELD_OUT_FAMILIES = ("mul", "sub")
_SYMBOL = {"add": "+", "mul": "*", "sub": "-"}


@dataclass(frozen=True)
class Item:
    """One question of the world. ``n``: operand digits (the difficulty knob)."""

    family: str
    n: int
    a: int
    b: int

    @property
    def question(self) -> str:
        return f"What is {self.a} {_SYMBOL[self.family]} {self.b}?"

    @property
    def answer(self) -> str:
        return str(_value(self.family, self.a, self.b))


def _value(family: str, a: int, b: int) -> int:
    return a + b if family == "add" else a * b if family == "mul" else a - b


def _digits(x: int, n: int) -> list[int]:
    """The n lowest decimal digits of x, least significant first."""
    return [(x // 10 ** i) % 10 for i in range(n)]


def chain_of_thought(family: str, a: int, b: int) -> str:
    """The fixed-width step list of ``a <op> b`` (LSB first)."""
    n = max(len(str(a)), len(str(b)) if family != "mul" else 1)
    da, db, carry, steps = _digits(a, n), _digits(b, n), 0, []
    for i in range(n):
        if family == "add":
            v = da[i] + db[i] + carry
            steps.append(f"{da[i]}+{db[i]}+{carry}={v}")
            carry = v // 10
        elif family == "mul":
            v = da[i] * b + carry
            steps.append(f"{da[i]}*{b}+{carry}={v}")
            carry = v // 10
        else:
            v = da[i] - db[i] - carry
            steps.append(f"{da[i]}-{db[i]}-{carry}={v}")
            carry = 1 if v < 0 else 0
    return " ".join(steps)


def solution(family: str, a: int, b: int) -> str:
    """A full response in the RL closer's format: think block + boxed answer."""
    return f"<think>\n{chain_of_thought(family, a, b)}\n</think>\n\\boxed{{{_value(family, a, b)}}}"


def draw_item(family: str, n: int, rng: random.Random) -> Item:
    """A random ``family`` item with ``n``-digit operand(s) (sub: a >= b, both n digits)."""
    lo, hi = (0 if n == 1 else 10 ** (n - 1)), 10 ** n - 1
    a = rng.randint(lo, hi)
    if family == "mul":
        return Item(family, n, a, rng.randint(2, 9))
    b = rng.randint(lo, hi)
    if family == "sub" and b > a:
        a, b = b, a
    return Item(family, n, a, b)


def _misreads(x: int, n: int) -> list[int]:
    """Every number that differs from ``x`` (n digits) in exactly one digit, no new leading zero."""
    out = []
    for pos in range(n):
        d = (x // 10 ** pos) % 10
        out += [x + (new - d) * 10 ** pos for new in range(10)
                if new != d and not (new == 0 and pos == n - 1 and n > 1)]
    return out


def wrong_solution(item: Item, rng: random.Random, *, avoid_test: bool = False) -> str:
    """A consistent response to a misread question: one operand digit changed, worked through
    (a digit of ``a`` when possible, else of ``b``). ``avoid_test``: never a misread question
    that a test split can hold (the warm starts: their prompts then work no test question)."""
    f, a, b, gold = item.family, item.a, item.b, _value(item.family, item.a, item.b)

    def ok(a2: int, b2: int) -> bool:
        return ((f != "sub" or a2 >= b2) and _value(f, a2, b2) != gold
                and not (avoid_test and in_test_split(Item(f, item.n, a2, b2))))

    options = [(a2, b) for a2 in _misreads(a, item.n) if ok(a2, b)]
    if not options:
        options = [(a, b2) for b2 in _misreads(b, 1 if f == "mul" else item.n) if ok(a, b2)]
    if not options:
        raise ValueError(f"no wrong candidate found for {item}")
    return solution(f, *rng.choice(options))


# ------------------------------------------------------------------------------ data splits
#: operand lengths of the RL training set and the test splits, and their weights in training
SPLIT_LENGTHS = (2, 3, 4)
TRAIN_LENGTH_WEIGHTS = (0.25, 0.35, 0.4)


def is_test_question(question: str) -> bool:
    """The fixed, deterministic train/test partition of question texts (crc32 mod 5 == 0).

    Training rows never satisfy it and test rows always do, so the splits are disjoint by
    construction whatever their sizes and seeds.
    """
    import zlib

    return zlib.crc32(question.encode()) % 5 == 0


def in_test_split(item: Item) -> bool:
    """Whether ``item`` can be an item of a test split (a test length and a test question)."""
    return item.n in SPLIT_LENGTHS and is_test_question(item.question)


def draw_warmstart_item(family: str, n: int, rng: random.Random) -> Item:
    """A random ``family`` item of ``n`` digits that no test split can hold: every question a
    warm start shows a model is drawn here, so the test splits stay unseen by the warm starts
    as well as by RL (lengths outside :data:`SPLIT_LENGTHS` are never rejected)."""
    while True:
        it = draw_item(family, n, rng)
        if not in_test_split(it):
            return it


def draw_split_item(family: str, n: int, rng: random.Random, test: bool) -> Item:
    """Rejection-sample an item of the requested split."""
    while True:
        it = draw_item(family, n, rng)
        if is_test_question(it.question) == test:
            return it


def train_rows(n_rows: int, seed: int) -> list[dict]:
    """The in-family RL training set in the ZPPO-77K schema (no recorded teacher: it is online)."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n_rows:
        n = rng.choices(SPLIT_LENGTHS, weights=TRAIN_LENGTH_WEIGHTS)[0]
        it = draw_split_item(TRAIN_FAMILY, n, rng, test=False)
        if it.question in seen:
            continue
        seen.add(it.question)
        rows.append({"id": f"mini-{it.family}{n}-{len(rows):05d}", "source": "mmfr", "sub_dataset": f"mini_{it.family}{n}",
                     "tier": 1, "question": it.question, "answer": it.answer, "reward_type": "rule", "image": "",
                     "teacher_response": None})
    return rows


def test_item(family: str, rng: random.Random, i: int) -> Item:
    """Item ``i`` of a test split: lengths cycle through :data:`SPLIT_LENGTHS`."""
    return draw_split_item(family, SPLIT_LENGTHS[i % len(SPLIT_LENGTHS)], rng, test=True)


__all__ = [
    "FAMILIES", "HELD_OUT_FAMILIES", "Item", "SPLIT_LENGTHS", "TRAIN_FAMILY", "chain_of_thought", "draw_item",
    "draw_split_item", "draw_warmstart_item", "in_test_split", "is_test_question", "solution", "test_item",
    "train_rows", "wrong_solution",
]
