"""How the miniature's teacher and student are made: seeded supervised warm starts, shipped.

Each model of the world (:mod:`zppo_core.models.miniature`) is a tiny ``Qwen3ForCausalLM`` on the
project's BPE tokenizer trained by a :class:`WorldRecipe` -- one or more stages, each a seeded
stream of examples of its ``mix`` (plain questions, BCQ prompts of the held-out families, copy
exercises) and a fresh AdamW. The weights ship under ``assets/miniature/`` stamped with the
recipe's fingerprint (:mod:`zppo_core.models.shipped`); ``make models-verify`` rebuilds them
with one CPU thread and checks the bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from zppo_core.models.miniature import FAMILIES, draw_item, draw_warmstart_item, solution, wrong_solution


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

    ``mix``: (kind, weight) with kind ``plain:<family>``, ``bcq:<family>`` or ``copy:<family>``
    (:func:`copy_example`); one kind per batch (homogeneous lengths, no padding waste). ``add_lengths``: sampling weight of each
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
    #: continuation stages run on the same model after this one, each with a fresh optimizer,
    #: its own seed, mix and learning rate (their ``shape`` is this recipe's)
    then: tuple[WorldRecipe, ...] = ()


TEACHER = WorldRecipe(
    shape=ModelShape(160, 384, 3, 4),
    steps=900,
    mix=(("plain:add", 1.0),),
    add_lengths=(0.1, 0.2, 0.3, 0.4),
    batch_size=64,
    seed=1,
)
#: Stage 1 of the student: the teacher's shape, another diet. It never sees a plain 4-digit
#: addition (the hard items fail alone; greedy it solves 2-digit additions, 42 % of 3-digit ones
#: and no 4-digit one, so plain GRPO has a signal on the middle length) and sees BCQ prompts of
#: ``mul``/``sub`` up to 6 digits. Alone it does not learn to copy a candidate (copy rate 0).
STUDENT_BASE = WorldRecipe(
    shape=ModelShape(160, 384, 3, 4),
    steps=1200,
    mix=(("plain:add", 0.35), ("plain:mul", 0.1), ("plain:sub", 0.1), ("bcq:mul", 0.225), ("bcq:sub", 0.225)),
    add_lengths=(0.3, 0.35, 0.35, 0.0),
    bcq_max_digits=6,
    batch_size=64,
    seed=2,
)
#: Stage 2, copying first: only copy exercises (``copy:<family>``, :func:`copy_example`) --
#: BCQ-template prompts of ``mul``/``sub`` questions whose candidates are random digits in a
#: chain's shape, so nothing but copying a candidate lowers the loss. Plain skills fade here.
#: Copying comes slowly (loss 1.06 after 300 steps, 0.50 after 1000, 0.22 after 1700): the
#: length is where the gate's selection items (docs/miniature.md) were read best.
STUDENT_COPY = replace(STUDENT_BASE, steps=1700, mix=(("copy:mul", 0.5), ("copy:sub", 0.5)),
                       batch_size=32, seed=3)
#: Stage 3, everything together: plain skills back (the copy stage had broken single-digit sums),
#: copying kept, real BCQ prompts of ``mul``/``sub`` (choose the correct candidate). Still never a
#: BCQ prompt of ``add``. Its length: the first 100-step snapshot that passed the gate on the
#: selection items with greedy 2-digit addition back at 0.5 or more.
STUDENT_MIX = replace(STUDENT_BASE, steps=700, lr=1e-3, batch_size=32, seed=4,
                      mix=(("plain:add", 0.4), ("plain:mul", 0.05), ("plain:sub", 0.05), ("copy:mul", 0.15),
                           ("copy:sub", 0.15), ("bcq:mul", 0.1), ("bcq:sub", 0.1)))
#: The student: the three stages in order (reading gate: docs/miniature.md).
STUDENT = replace(STUDENT_BASE, then=(STUDENT_COPY, STUDENT_MIX))
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
    if form == "copy":
        return copy_example(family, recipe, rng)
    item = draw_warmstart_item(family, _length(recipe, family, rng, reading=form == "bcq"), rng)
    target = solution(item.family, item.a, item.b)
    if form == "plain":
        text = build_plain(item.question)
    else:
        cands = [target, wrong_solution(item, rng, avoid_test=True)]
        rng.shuffle(cands)
        text = build_bcq(item.question, cands)
    return GenerationRequest([{"role": "user", "content": text}]), target


_DIGITS = "0123456789"


def _scramble(text: str, op: str, rng: random.Random) -> str:
    """``text`` with every digit replaced by a random one and every operator by ``op``."""
    return "".join(rng.choice(_DIGITS) if c.isdigit() else (op if c in "+-*" else c) for c in text)


def copy_example(family: str, recipe: WorldRecipe, rng: random.Random):
    """A copy exercise: a BCQ prompt of a ``family`` question whose two candidates are random
    digits in the shape of a solution (of any family, operators replaced by one random symbol);
    the target is one of them. Half the time the other candidate differs in one digit, else it
    is another random chain. No arithmetic holds in them, so only copying lowers the loss."""
    from zppo_core.engines.base import GenerationRequest
    from zppo_core.prompts import build_bcq

    item = draw_warmstart_item(family, rng.randint(1, recipe.bcq_max_digits), rng)
    shape_family = rng.choice(FAMILIES)
    src = draw_item(shape_family, rng.randint(1, recipe.bcq_max_digits), rng)
    target = _scramble(solution(shape_family, src.a, src.b), rng.choice("+-*"), rng)
    if rng.random() < 0.5:  # a near miss: one digit differs
        i = rng.choice([k for k, c in enumerate(target) if c.isdigit()])
        other = target[:i] + rng.choice([d for d in _DIGITS if d != target[i]]) + target[i + 1:]
    else:
        src2 = draw_item(shape_family, rng.randint(1, recipe.bcq_max_digits), rng)
        other = _scramble(solution(shape_family, src2.a, src2.b), rng.choice("+-*"), rng)
    cands = [target, other]
    rng.shuffle(cands)
    return GenerationRequest([{"role": "user", "content": build_bcq(item.question, cands)}]), target


def build_world_model(tok, shape: ModelShape, seed: int):
    """Random-init ``Qwen3ForCausalLM`` of ``shape`` on tokenizer ``tok``."""
    from zppo_core.models.tiny import TinyTextSpec, build_tiny_qwen3

    spec = TinyTextSpec(hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
                        num_hidden_layers=shape.num_hidden_layers, num_attention_heads=shape.num_attention_heads,
                        num_key_value_heads=shape.num_key_value_heads, head_dim=shape.head_dim,
                        max_position_embeddings=1024, seed=seed)
    return build_tiny_qwen3(tok, spec)


def warmstart_world(model, tok, recipe: WorldRecipe, log_every: int = 0, on_step=None) -> list[float]:
    """Seeded supervised run of ``recipe`` and then of each stage in ``recipe.then`` on ``model``
    (in place); returns the loss per step of all stages.

    The learning rate is constant after each stage's warmup, so the model after step k of a
    longer last stage is bit for bit the model of the same recipe with ``steps=k``
    (``on_step(step, model)`` sees it; ``step`` counts over all stages).
    """
    losses: list[float] = []
    for stage in (recipe, *recipe.then):
        losses += _run_stage(model, tok, stage, log_every, on_step, first_step=len(losses))
    model.eval()
    return losses


def example_stream(stage: WorldRecipe) -> Iterator[tuple[str, list]]:
    """The seeded data of one stage, batch by batch: ``(kind, [(request, target), ...])`` for
    each of its ``steps`` (what :func:`warmstart_world` trains on, and what tests replay)."""
    rng = random.Random(stage.seed)
    kinds, weights = zip(*stage.mix)
    for _ in range(stage.steps):
        kind = rng.choices(kinds, weights=weights)[0]
        yield kind, [make_example(kind, stage, rng) for _ in range(stage.batch_size)]


def _run_stage(model, tok, stage: WorldRecipe, log_every: int, on_step, first_step: int) -> list[float]:
    """One stage: its own seeded data stream and a fresh AdamW on the model as it is."""
    import torch

    from zppo_core.models.warmstart import collate

    torch.manual_seed(stage.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=0.0)
    model.train()
    losses = []
    for step, (_, examples) in enumerate(example_stream(stage)):
        lr = stage.lr * min(1.0, (step + 1) / stage.warmup)  # constant after warmup (see above)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = collate(tok, examples)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        done = first_step + step + 1
        if on_step is not None:
            on_step(done, model)
        if log_every and done % log_every == 0:
            print(f"  step {done} (stage seed {stage.seed}: {step + 1}/{stage.steps}) "
                  f"loss {sum(losses[-log_every:]) / min(log_every, len(losses)):.4f}", flush=True)
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


# ----------------------------------------------------------------------- shipped weights
#: bump when anything that changes the warm-start weights changes outside what
#: :func:`zppo_core.models.shipped.world_fingerprint` hashes (the training loop, say)
WORLD_VERSION = "w2"  # w2: warm-start questions (and misread candidates) outside the test splits


__all__ = [
    "ModelShape", "RECIPES", "STUDENT", "TEACHER", "WORLD_VERSION", "WorldRecipe", "build_world",
    "copy_example", "example_stream", "make_example", "warmstart_world",
]
