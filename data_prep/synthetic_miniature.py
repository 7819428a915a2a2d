"""Offline sources of the miniature world: text-only additions in the real upstream schemas.

The rows :mod:`data_prep.synthetic` writes for ``curation.synthetic_world: miniature`` (the
``make demo`` world, docs/miniature.md): each question is an addition of the RL training
family (``zppo_core.models.miniature``, operand lengths and weights of its training split, never a
test-split question), in the Vero-600k or MMFineReason-SFT-586K schema with no image. Curation
meets defects it must handle here too: null answers (``answer_missing``), MMFineReason pass rates
in {0, .25, .5, .75} (``pass_rate``), and an MMFineReason sub-dataset that Vero also supplies
(``MMK12``, removed by the canonical-name dedup). MMFineReason's recorded thinking response is a
worked solution, right with probability ``teacher_correct`` (the Off-Distill target).

Rows are pure functions of ``(seed, source, index)``, like the figure world's.
"""

from __future__ import annotations

import random

from data_prep.recipe import SYNTHETIC_PASS_RATES
from zppo_core.models import miniature as world

#: Vero configs (tiered, math) that carry the miniature's additions, with relative sizes
VERO_CONFIGS: tuple[tuple[str, float], ...] = (("stem-mmk12", 1.0), ("stem-CoSyn_400k_math", 1.0))
#: MMFineReason sources and relative sizes; ``MMK12`` duplicates Vero's ``mmk12`` sub-dataset
MMFR_SOURCES: tuple[tuple[str, float], ...] = (("MMR1", 1.0), ("ViRL39K", 1.0), ("MMK12", 0.2))
VERO_SYSTEM = "You are a helpful assistant. Answer the question by reasoning step by step."


def _item(rng: random.Random) -> world.Item:
    n = rng.choices(world.SPLIT_LENGTHS, weights=world.TRAIN_LENGTH_WEIGHTS)[0]
    return world.draw_split_item(world.TRAIN_FAMILY, n, rng, test=False)


def _answer(rng: random.Random, item: world.Item, null_rate: float) -> str | None:
    return None if rng.random() < null_rate else item.answer


def vero_row(seed: int, idx: int, config: str, local_index: int, d) -> dict:  # noqa: ANN001 - Defects
    """Row ``idx`` of the miniature Vero-600k (config ``<domain>-<name>``)."""
    rng = random.Random(f"{seed}:mini-vero:{idx}")
    item = _item(rng)
    ans = _answer(rng, item, d.null_answer)
    domain, _, name = config.partition("-")
    return {
        "prompt": [{"role": "system", "content": VERO_SYSTEM}, {"role": "user", "content": item.question}],
        "image": None,
        "data_source": name,
        "ability": domain,
        "reward_model": {"style": "rule", "ground_truth": ans},
        "extra_info": {"answer": ans, "reward_type": "numeric", "question": item.question, "index": local_index,
                       "domain": domain},
    }


def mmfr_row(seed: int, idx: int, source: str, vero_rows: int, d) -> dict:  # noqa: ANN001 - Defects
    """Row ``idx`` of the miniature MMFineReason-SFT-586K (``source`` = upstream sub-dataset).
    ``vero_rows`` is unused (no row copies a Vero row here); the signature is the figure world's."""
    rng = random.Random(f"{seed}:mini-mmfr:{idx}")
    item = _item(rng)
    ans = _answer(rng, item, d.null_answer)
    right = world.solution(item.family, item.a, item.b)
    response = right if rng.random() < d.teacher_correct else world.wrong_solution(item, rng)
    cot = world.chain_of_thought(item.family, item.a, item.b)
    return {
        "source": source,
        "id": f"{source}_{idx}",
        "original_question": item.question,
        "original_answer": None if ans is None else f"<think>\n{cot}\n</think><answer>{ans}</answer>",
        "image": None,
        "question": item.question,
        "answer": ans,
        "qwen3vl_235b_instruct_caption": "",
        "qwen3vl_235b_thinking_response": response,
        "pass_rate": rng.choice(SYNTHETIC_PASS_RATES),
        "is_consistent": True,
        "consistency_analysis": "",
    }


__all__ = ["MMFR_SOURCES", "VERO_CONFIGS", "mmfr_row", "vero_row"]
