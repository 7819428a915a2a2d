"""Small generated training sets in the ZPPO-77K schema (offline tests and the tiny config).

Two kinds:

* ``"arithmetic"`` -- "What is a + b?" style questions with integer gold answers; optional
  images (a PNG with ``k`` coloured squares and the question "How many squares are in the
  image?"). Every row carries a recorded ``teacher_response`` in the think/boxed format that
  is correct for a ``teacher_accuracy`` fraction of the rows (seeded), so the offline
  *recorded* teacher is right some of the time and BCQ gets exercised.
* ``"fixed"`` -- the trivially learnable toy: every question is a sum with the same value
  (``fixed_answer``, an integer), so the gold answer never changes and mean reward must rise
  over a few dozen RL steps (the warm-started tiny student is right only part of the time).

* ``"miniature"`` -- the miniature world's in-family RL training set (multi-digit additions,
  disjoint from its test split; :func:`zppo_core.models.miniature.train_rows`), without a
  recorded teacher: the miniature profile runs its teacher online.

Columns: ``id, source, sub_dataset, tier, question, answer, reward_type, image,
teacher_response`` (docs/ARCHITECTURE.md, "Curated data"). Images are written next to the
parquet under ``images/`` and referenced by relative path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from zppo_core.config.schema import TOY_KINDS as KINDS

_COLORS = ((220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 180, 20))


@dataclass(frozen=True)
class ToySpec:
    """What to generate."""

    kind: str = "arithmetic"
    n: int = 64
    seed: int = 0
    with_images: bool = False
    teacher_accuracy: float = 0.75
    fixed_answer: str = "7"
    image_size: int = 64


def _teacher_text(answer: str, correct: bool, rng: random.Random) -> str:
    shown = answer
    if not correct:
        shown = str(int(answer) + rng.choice([-2, -1, 1, 2])) if answer.lstrip("-").isdigit() else answer + "0"
    return f"<think>Let me work it out. The result is {shown}.</think> The answer is \\boxed{{{shown}}}"


def _draw_squares(path: Path, k: int, size: int, rng: random.Random) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    cell = size // 4
    slots = rng.sample(range(16), k)
    for s in slots:
        x, y = (s % 4) * cell, (s // 4) * cell
        draw.rectangle([x + 2, y + 2, x + cell - 3, y + cell - 3], fill=rng.choice(_COLORS))
    img.save(path)


def _row(i: int, spec: ToySpec, rng: random.Random, out_dir: Path) -> dict:
    image = ""
    if spec.kind == "fixed":  # many phrasings, one answer: "What is a + b?" with a + b = fixed
        total = int(spec.fixed_answer)
        a = rng.randint(0, total)
        question, answer = f"What is {a} + {total - a}?", str(total)
    elif spec.with_images:
        k = rng.randint(1, 9)
        image = f"images/toy_{i:05d}.png"
        _draw_squares(out_dir / image, k, spec.image_size, rng)
        question, answer = "How many squares are in the image?", str(k)
    else:
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        question, answer = f"What is {a} + {b}?", str(a + b)
    correct = rng.random() < spec.teacher_accuracy
    return {
        "id": f"toy-{spec.kind}-{spec.seed}-{i:05d}",
        "source": "mmfr",
        "sub_dataset": f"toy_{spec.kind}",
        "tier": 1,
        "question": question,
        "answer": answer,
        "reward_type": "rule",
        "image": image,
        "teacher_response": _teacher_text(answer, correct, rng),
    }


def make_toy_dataset(out_dir: str | Path, spec: ToySpec = ToySpec()) -> Path:
    """Write ``<out_dir>/zppo77k.parquet`` (and images) for ``spec``; returns the parquet path."""
    import pandas as pd

    if spec.kind not in KINDS:
        raise ValueError(f"toy kind {spec.kind!r} not in {KINDS}")
    if spec.n < 1:
        raise ValueError(f"toy dataset size must be >= 1, got {spec.n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if spec.with_images:
        (out / "images").mkdir(exist_ok=True)
    rng = random.Random(spec.seed)
    if spec.kind == "miniature":
        from zppo_core.models.miniature import train_rows

        rows = train_rows(spec.n, spec.seed)
    else:
        rows = [_row(i, spec, rng, out) for i in range(spec.n)]
    path = out / "zppo77k.parquet"
    tmp = out / ".zppo77k.parquet.tmp"
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


__all__ = ["KINDS", "ToySpec", "make_toy_dataset"]
