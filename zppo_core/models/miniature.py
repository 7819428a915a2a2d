r"""The miniature world: verifiable task families, a weak reading student and a stronger teacher.

A CPU-sized stand-in for the paper's setting (docs: README "The miniature"). Three arithmetic
families with a fixed-width chain of thought, least significant digit first, so a 2-layer model
can learn them and the difficulty knob ``n`` (operand digits) makes items hard:

* ``add``: "What is 345 + 678?" ->
  ``<think>\n5+8+0=13 4+7+1=12 3+6+1=10\n</think>\n\boxed{1023}`` (the RL / in-family family);
* ``mul``: n-digit times 1-digit, ``5*7+0=35 4*7+3=31 ...`` (held out from RL);
* ``sub``: a - b with a >= b, ``5-8-0=-3 4-7-1=-4 ...`` (a negative step borrows; held out).

Two models, both tiny ``Qwen3ForCausalLM`` on the project's BPE tokenizer, warm-started by a
seeded supervised run (:func:`warmstart_world`):

* the **teacher** (wider, deeper) learns plain ``add`` at every length (1..``max_digits``);
* the **student** (smaller, fewer steps) learns plain ``add`` mostly at short lengths (hard
  lengths are rare, so it fails them alone), plain ``mul``/``sub``, and *reading*: BCQ prompts
  built with the project's own template (:func:`zppo_core.prompts.build_bcq`) on ``mul``/``sub``
  only -- one correct and one wrong candidate, the target is the correct one. It never sees a
  BCQ prompt of ``add``, the family RL trains on (as pretraining taught the paper's students
  to read, on other data).

Wrong candidates misread one operand digit and carry the error through consistently, so a
reader can tell them apart only by checking the candidate against the question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

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


def wrong_solution(item: Item, rng: random.Random) -> str:
    """A consistent response to a misread question: one operand digit changed, worked through
    (a digit of ``a`` when possible, else of ``b``)."""
    f, a, b, gold = item.family, item.a, item.b, _value(item.family, item.a, item.b)
    options = [(a2, b) for a2 in _misreads(a, item.n) if (f != "sub" or a2 >= b) and _value(f, a2, b) != gold]
    if not options:
        nb = 1 if f == "mul" else item.n
        options = [(a, b2) for b2 in _misreads(b, nb) if (f != "sub" or a >= b2) and _value(f, a, b2) != gold]
    if not options:
        raise ValueError(f"no wrong candidate found for {item}")
    return solution(f, *rng.choice(options))


# ------------------------------------------------------------------------ warm-start recipes
@dataclass(frozen=True)
class ModelShape:
    """Size of one tiny Qwen3 of the world."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int = 2
    head_dim: int = 32


@dataclass(frozen=True)
class WorldRecipe:
    """Seeded supervised warm start of one model of the world.

    ``mix``: (kind, weight) with kind ``plain:<family>`` or ``bcq:<family>``; one kind per
    batch (homogeneous lengths, no padding waste). ``add_lengths``: sampling weight of each
    ``add`` operand length 1..len; other plain families draw lengths uniformly in
    1..max_digits, BCQ (reading) examples in 1..bcq_max_digits -- beyond the plain lengths, so
    that only reading the candidates, not computing, gets those right.
    """

    shape: ModelShape
    steps: int
    mix: tuple[tuple[str, float], ...]
    add_lengths: tuple[float, ...]
    max_digits: int = 4
    bcq_max_digits: int = 4
    batch_size: int = 16
    lr: float = 2e-3
    warmup: int = 20
    seed: int = 0
    extra: dict = field(default_factory=dict)


TEACHER = WorldRecipe(
    shape=ModelShape(160, 384, 3, 4),
    steps=900,
    mix=(("plain:add", 1.0),),
    add_lengths=(0.1, 0.2, 0.3, 0.4),
    batch_size=64,
    seed=1,
)
#: The student has the teacher's shape but another diet: it never sees a plain 4-digit addition
#: (the hard items fail alone; greedy it solves 2-digit additions, 42 % of 3-digit ones and no
#: 4-digit one, so plain GRPO has a signal on the middle length) and learns to read from BCQ
#: prompts of ``mul``/``sub`` up to 6 digits, lengths it cannot compute. It does not learn to
#: copy (reading gate: README "The miniature").
STUDENT = WorldRecipe(
    shape=ModelShape(160, 384, 3, 4),
    steps=1200,
    mix=(("plain:add", 0.35), ("plain:mul", 0.1), ("plain:sub", 0.1), ("bcq:mul", 0.225), ("bcq:sub", 0.225)),
    add_lengths=(0.3, 0.35, 0.35, 0.0),
    bcq_max_digits=6,
    batch_size=64,
    seed=2,
)
RECIPES = {"mini-teacher": TEACHER, "mini-student": STUDENT}


def _length(recipe: WorldRecipe, family: str, rng: random.Random, reading: bool = False) -> int:
    if reading:
        return rng.randint(1, recipe.bcq_max_digits)
    if family == "add":
        return rng.choices(range(1, len(recipe.add_lengths) + 1), weights=recipe.add_lengths)[0]
    return rng.randint(1, recipe.max_digits)


def make_example(kind: str, recipe: WorldRecipe, rng: random.Random):
    """One (GenerationRequest, target response) pair of ``kind`` (``plain:add``, ``bcq:mul``...)."""
    from zppo_core.engines.base import GenerationRequest
    from zppo_core.prompts import build_bcq, build_plain

    form, family = kind.split(":")
    item = draw_item(family, _length(recipe, family, rng, reading=form == "bcq"), rng)
    target = solution(item.family, item.a, item.b)
    if form == "plain":
        text = build_plain(item.question)
    else:
        cands = [target, wrong_solution(item, rng)]
        rng.shuffle(cands)
        text = build_bcq(item.question, cands)
    return GenerationRequest([{"role": "user", "content": text}]), target


def build_world_model(tok, shape: ModelShape, seed: int):
    """Random-init ``Qwen3ForCausalLM`` of ``shape`` on tokenizer ``tok``."""
    from zppo_core.models.tiny import TinyTextSpec, build_tiny_qwen3

    spec = TinyTextSpec(hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
                        num_hidden_layers=shape.num_hidden_layers, num_attention_heads=shape.num_attention_heads,
                        num_key_value_heads=shape.num_key_value_heads, head_dim=shape.head_dim,
                        max_position_embeddings=1024, seed=seed)
    return build_tiny_qwen3(tok, spec)


def warmstart_world(model, tok, recipe: WorldRecipe, log_every: int = 0, on_step=None) -> list[float]:
    """Seeded supervised run of ``recipe`` on ``model`` (in place); returns the loss per step.

    The learning rate is constant after the warmup, so the model after step k of a longer run is
    bit for bit the model of the same recipe with ``steps=k`` (``on_step(step, model)`` sees it).
    """
    import torch

    from zppo_core.models.warmstart import collate

    rng = random.Random(recipe.seed)
    torch.manual_seed(recipe.seed)
    kinds, weights = zip(*recipe.mix)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(recipe.steps):
        lr = recipe.lr * min(1.0, (step + 1) / recipe.warmup)  # constant after warmup: a shorter
        for g in opt.param_groups:
            g["lr"] = lr
        kind = rng.choices(kinds, weights=weights)[0]
        batch = collate(tok, [make_example(kind, recipe, rng) for _ in range(recipe.batch_size)])
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1, model)
        if log_every and (step + 1) % log_every == 0:
            print(f"  step {step + 1}/{recipe.steps} loss {sum(losses[-log_every:]) / log_every:.4f}", flush=True)
    model.eval()
    return losses


def build_world(name: str, out, *, log_every: int = 0) -> None:
    """Build builtin ``name`` (``mini-teacher`` | ``mini-student``) into folder ``out``."""
    import torch

    from zppo_core.models.processor import save_processor
    from zppo_core.models.tokenizer import TokenizerSpec, build_tokenizer

    if name not in RECIPES:
        raise ValueError(f"unknown miniature model {name!r}; choose one of {sorted(RECIPES)}")
    torch.set_num_threads(1)  # one thread: the same float reductions on every machine, bit for bit
    recipe = RECIPES[name]
    tok = build_tokenizer(TokenizerSpec())
    model = build_world_model(tok, recipe.shape, recipe.seed)
    warmstart_world(model, tok, recipe, log_every=log_every)
    model.to(torch.float32).eval().save_pretrained(out, safe_serialization=True)
    save_processor(tok, out)


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


# ----------------------------------------------------------------------- shipped weights
#: folder (relative to the repository root) of the shipped warm-start weights
ASSETS_DIR = "assets/miniature"
FINGERPRINT_FILE = "recipe.json"


#: bump when anything that changes the warm-start weights changes (generators, tokenizer, loop)
WORLD_VERSION = "w1"


def recipe_fingerprint(name: str) -> str:
    """sha256 of the recipe and :data:`WORLD_VERSION` (what the shipped weights depend on)."""
    import hashlib
    import json
    from dataclasses import asdict

    blob = json.dumps({"name": name, "recipe": asdict(RECIPES[name]), "version": WORLD_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def install_world(name: str, out) -> None:
    """Copy the shipped folder of ``name`` into ``out`` when its fingerprint matches, else build it.

    The shipped weights are what :func:`build_world` writes on this machine (``make
    miniature-models`` rebuilds them and checks the bytes), so a fresh clone needs no warm start.
    """
    import json
    import shutil
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / ASSETS_DIR / name
    fp = shipped / FINGERPRINT_FILE
    if fp.exists() and json.loads(fp.read_text()).get("fingerprint") == recipe_fingerprint(name):
        for f in shipped.iterdir():
            shutil.copy2(f, Path(out) / f.name)
        return
    build_world(name, out)
    (Path(out) / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": recipe_fingerprint(name)}))


def ship(out_root, names=tuple(RECIPES), verify: bool = False) -> dict[str, str]:
    """Build each model into ``<out_root>/<name>`` (or, with ``verify``, rebuild into a temporary
    folder and compare its ``model.safetensors`` bytes with the shipped one). Returns the sha256."""
    import hashlib
    import json
    import tempfile
    from pathlib import Path

    digests = {}
    for name in names:
        target = Path(out_root) / name
        work = Path(tempfile.mkdtemp(prefix=f"{name}-")) if verify else target
        work.mkdir(parents=True, exist_ok=True)
        build_world(name, work, log_every=50)
        (work / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": recipe_fingerprint(name)}))
        digests[name] = hashlib.sha256((work / "model.safetensors").read_bytes()).hexdigest()
        if verify:
            shipped = hashlib.sha256((target / "model.safetensors").read_bytes()).hexdigest()
            if shipped != digests[name]:
                raise SystemExit(f"{name}: rebuilt weights differ from {target} ({digests[name]} != {shipped})")
        print(f"{name}: sha256 {digests[name]}{' (identical to the shipped folder)' if verify else ''}", flush=True)
    return digests


if __name__ == "__main__":  # python -m zppo_core.models.miniature [--verify] [OUT_ROOT]
    import sys

    _args = [a for a in sys.argv[1:] if a != "--verify"]
    ship(_args[0] if _args else ASSETS_DIR, verify="--verify" in sys.argv[1:])


__all__ = [
    "FAMILIES", "HELD_OUT_FAMILIES", "Item", "RECIPES", "SPLIT_LENGTHS", "TRAIN_FAMILY", "build_world",
    "chain_of_thought", "draw_item", "install_world", "is_test_question", "make_example", "recipe_fingerprint",
    "ship", "solution", "test_item", "train_rows", "warmstart_world", "wrong_solution",
]
