"""The miniature world's test splits as offline benchmarks (see ``zppo_core.models.miniature``).

``MiniAdd`` is the in-family test split (the family RL trains on, questions disjoint from the
training rows by the fixed crc32 partition); ``MiniMul`` and ``MiniSub`` are held-out families
never trained on by RL. Lengths cycle through 2, 3, 4 operand digits; the item id carries the
family and length (``add4-00002``) so results can be broken down by difficulty. Selected with
``eval.benchmarks: [miniature]`` (they are not part of ``offline``, the tiny profile's set).
"""

from __future__ import annotations

import random
from typing import Any

from eval.benchmark import Catalog
from eval.offline import OFFLINE_FIELDS
from zppo_core.models import miniature as world

#: the entries this module declares (registered by :mod:`eval.registry`)
CATALOG = Catalog()
entry = CATALOG.entry

#: abbreviation -> family of the world
MINI_BENCHMARKS = {"MiniAdd": "add", "MiniMul": "mul", "MiniSub": "sub"}
WORLD_TAG = "miniature"


def _maker(family: str):
    def make(rng: random.Random, i: int) -> dict[str, Any]:
        it = world.test_item(family, rng, i)
        return {"id": f"{family}{it.n}-{i:05d}", "question": it.question, "options": [], "answer": it.answer,
                "answer_type": "math", "images": []}

    return make


for _abbr, _fam in MINI_BENCHMARKS.items():
    _role = "in-family test split" if _fam == world.TRAIN_FAMILY else "held-out family"
    entry(_abbr, f"miniature {_fam} ({_role})", "LLM", "", "test", "Exact+Judge", OFFLINE_FIELDS, offline=True,
          generator=_maker(_fam), modality="text", revision="", judge=None, extra={"world": WORLD_TAG})
