"""Offline benchmark families of the embedded default: ``OfflineVLM``, ``OfflineLLM``,
``OfflineVideo`` — small generated benchmarks registered like the real ones.

Each generator writes ``test.parquet`` (columns ``id, question, options, answer, answer_type,
images``; ``images`` a list of HF Image structs) into a folder; the loader then reads it through
``datasets`` exactly as a local copy of a hub dataset. Answers are derivable from the input
(drawn with PIL / computed), so a model can actually learn and be measured on them.

Disjoint from the training data by construction: the curation generator
(``data_prep.drawing``) asks "How many <shape>s ...", "What number ...", "Which bar is the
tallest ..." and rectangle areas; these families use other templates only (quadrant of a
shape, polygon side count, sum of two drawn two-digit numbers; modular remainders, element
symbols; motion direction and frame counts across a frame sequence), and every question
starts with the marker ``[eval]`` so an exact-text overlap is impossible.
"""

from __future__ import annotations

import io
import math
import random
from pathlib import Path
from typing import Any, Callable

from PIL import Image, ImageDraw

from eval.benchmark import Catalog
from eval.fields import FieldMap

#: the entries this module declares (registered by :mod:`eval.registry`)
CATALOG = Catalog()
entry = CATALOG.entry

MARK = "[eval]"
SIDE = 64  # px of generated images (the processor's min_pixels upsizes them)
QUADRANTS = ["top-left", "top-right", "bottom-left", "bottom-right"]
DIRECTIONS = ["left to right", "right to left", "top to bottom", "bottom to top"]
ELEMENTS = [("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"),
            ("sodium", "Na"), ("iron", "Fe"), ("gold", "Au"), ("silver", "Ag"), ("potassium", "K"),
            ("copper", "Cu"), ("lead", "Pb")]
Row = dict[str, Any]


def _png(im: Image.Image) -> dict[str, Any]:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _polygon(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, sides: int) -> None:
    pts = [(cx + r * math.cos(2 * math.pi * k / sides - math.pi / 2),
            cy + r * math.sin(2 * math.pi * k / sides - math.pi / 2)) for k in range(sides)]
    draw.polygon(pts, outline=0, fill=90)


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("L", (SIDE, SIDE), 255)
    return im, ImageDraw.Draw(im)


def _mc(options: list[str], right: str) -> tuple[list[str], str]:
    return options, "ABCDEFGH"[options.index(right)]


# ------------------------------------------------------------------------------ VLM
def vlm_row(rng: random.Random, i: int) -> Row:
    kind = i % 3
    im, draw = _canvas()
    if kind == 0:  # quadrant of a filled square (multiple choice)
        q_idx = rng.randrange(4)
        x0 = (SIDE // 2 if q_idx % 2 else 0) + rng.randint(4, 12)
        y0 = (SIDE // 2 if q_idx >= 2 else 0) + rng.randint(4, 12)
        draw.rectangle([x0, y0, x0 + 14, y0 + 14], fill=0)
        opts, ans = _mc(QUADRANTS, QUADRANTS[q_idx])
        return {"question": f"{MARK} In which quadrant of the image is the black square?", "options": opts,
                "answer": ans, "answer_type": "mc", "images": [_png(im)]}
    if kind == 1:  # polygon side count (number)
        sides = rng.randint(3, 8)
        _polygon(draw, SIDE / 2, SIDE / 2, SIDE / 2 - 6, sides)
        return {"question": f"{MARK} How many sides does the polygon in the image have?", "options": [],
                "answer": str(sides), "answer_type": "math", "images": [_png(im)]}
    a, b = rng.randint(10, 49), rng.randint(10, 49)  # sum of two drawn numbers
    draw.text((4, 8), str(a), fill=0)
    draw.text((SIDE // 2 + 4, SIDE // 2 + 8), str(b), fill=0)
    return {"question": f"{MARK} What is the sum of the two numbers written in the image?", "options": [],
            "answer": str(a + b), "answer_type": "math", "images": [_png(im)]}


# ------------------------------------------------------------------------------ LLM
def llm_row(rng: random.Random, i: int) -> Row:
    if i % 2 == 0:
        a, b = rng.randint(20, 199), rng.randint(3, 12)
        return {"question": f"{MARK} What is the remainder when {a} is divided by {b}?", "options": [],
                "answer": str(a % b), "answer_type": "math", "images": []}
    name, sym = ELEMENTS[rng.randrange(len(ELEMENTS))]
    others = rng.sample([s for _, s in ELEMENTS if s != sym], 3)
    opts = [sym, *others]
    rng.shuffle(opts)
    opts, ans = _mc(opts, sym)
    return {"question": f"{MARK} What is the chemical symbol of {name}?", "options": opts, "answer": ans,
            "answer_type": "mc", "images": []}


# ---------------------------------------------------------------------------- Video
def video_row(rng: random.Random, i: int, n_frames: int = 4) -> Row:
    frames = []
    if i % 2 == 0:  # direction of a moving dot across the frames
        d = rng.randrange(4)
        fixed = rng.randint(12, SIDE - 12)
        for t in range(n_frames):
            pos = 8 + t * (SIDE - 16) // (n_frames - 1)
            pos = pos if d in (0, 2) else SIDE - pos
            x, y = (pos, fixed) if d < 2 else (fixed, pos)
            im, draw = _canvas()
            draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=0)
            frames.append(_png(im))
        opts, ans = _mc(DIRECTIONS, DIRECTIONS[d])
        return {"question": f"{MARK} These are consecutive frames of a video. In which direction does the dot move?",
                "options": opts, "answer": ans, "answer_type": "mc", "images": frames}
    shown = rng.randint(1, n_frames)
    marks = [1] * shown + [0] * (n_frames - shown)
    rng.shuffle(marks)
    for m in marks:
        im, draw = _canvas()
        if m:
            draw.polygon([(SIDE / 2, 8), (8, SIDE - 8), (SIDE - 8, SIDE - 8)], fill=0)
        frames.append(_png(im))
    return {"question": f"{MARK} These are consecutive frames of a video. In how many frames is a triangle visible?",
            "options": [], "answer": str(shown), "answer_type": "math", "images": frames}


def write(out_dir: str | Path, make: Callable[[random.Random, int], Row], n: int, seed: int) -> Path:
    """Generate ``n`` rows with ``make`` into ``<out_dir>/test.parquet`` (idempotent per args)."""
    import datasets

    out = Path(out_dir)
    target = out / "test.parquet"
    stamp = out / f".n{n}_seed{seed}"
    if target.exists() and stamp.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = [{"id": f"{i:05d}", **make(rng, i)} for i in range(n)]
    feats = datasets.Features({
        "id": datasets.Value("string"), "question": datasets.Value("string"),
        "options": datasets.Sequence(datasets.Value("string")), "answer": datasets.Value("string"),
        "answer_type": datasets.Value("string"), "images": datasets.Sequence(datasets.Image()),
    })
    datasets.Dataset.from_list(rows, features=feats).to_parquet(str(target))
    for old in out.glob(".n*_seed*"):
        old.unlink()
    stamp.touch()
    return out


OFFLINE_FIELDS = FieldMap("question", "answer", "options", gold_kind="letter", answer_type_from="answer_type",
                          answer_type_map=(("mc", "mc"), ("math", "math"), ("text", "text")),
                          images=("images",), item_id="id")

for _abbr, _name, _fam, _make, _mod in (
    ("OfflineVLM", "generated image questions (quadrant, polygon sides, drawn sums)", "VLM", vlm_row, "image"),
    ("OfflineLLM", "generated text questions (remainders, element symbols)", "LLM", llm_row, "text"),
    ("OfflineVideo", "generated frame sequences (motion direction, frame counts)", "Video", video_row, "image"),
):
    entry(_abbr, _name, _fam, "", "test", "Exact+Judge", OFFLINE_FIELDS, offline=True, generator=_make,
          modality=_mod, revision="")
