"""The ZPPO-77K recipe as data: canonical sub-dataset names, tiers, reward types, drop reasons.

Pure module (no I/O). Paper App. B.1 names the tiered sub-datasets of both sources; this module
turns every raw name an upstream row can carry into one *canonical* name so that the two
sources meet on the same key (``stem-ai2d_merged`` and ``FineVision-ai2d_merged`` are both
``ai2d``), and assigns the tier of that canonical name.

Decisions where the paper is silent (documented in ``data_prep/README.md``):

* Sub-datasets the paper does not name in either tier are **excluded** (reason ``untiered``):
  e.g. Vero ``reachqa``, ``ecd_vqa``, the spatial/action, grounding and captioning configs, and
  MMFineReason ``GameQA-140K`` / ``WaltonColdStart``.
* ``wemath20_pro`` and ``wemath20_standard`` (and MMFineReason's WeMath2-*) share one canonical
  name ``wemath`` and therefore one cap: the paper lists "wemath" once.
* MMFineReason ``MMK12`` is not tiered by the paper, but it is the same upstream set as Vero's
  tier-1 ``mmk12``; it maps to ``mmk12`` and is therefore removed by the canonical-name dedup
  whenever Vero supplies ``mmk12`` (Vero wins), and capped as tier 1 otherwise.
"""

from __future__ import annotations

import re

SOURCES: tuple[str, ...] = ("vero", "mmfr")
#: priority of each source in cross-source dedup (lower wins): Vero is priority 1.
SOURCE_PRIORITY: dict[str, int] = {"vero": 1, "mmfr": 2}

#: canonical name -> (tier, raw aliases as they appear upstream, lower-cased). Vero aliases
#: are config names without their ``<domain>-`` prefix (or ``data_source`` values);
#: MMFineReason aliases are ``source`` values.
CANONICAL: dict[str, tuple[int, tuple[str, ...]]] = {
    # ---- tier 1 (cap 2,800): STEM and chart/OCR ------------------------------------------
    "ai2d": (1, ("ai2d", "ai2d_merged", "finevision-ai2d_merged")),
    "geo170k": (1, ("geo170k", "geo170k(qa)", "finevision-geo170k(qa)")),
    "geomverse": (1, ("geomverse",)),
    "geoqa_plus": (1, ("geoqa_plus", "geoqa+")),
    "mmk12": (1, ("mmk12",)),
    "cosyn_math": (1, ("cosyn_400k_math", "cosyn_math")),
    "cosyn_chart": (1, ("cosyn_400k_chart", "cosyn_chart")),
    "cosyn_diagram": (1, ("cosyn_400k_diagram", "cosyn_diagram")),
    "cosyn_table": (1, ("cosyn_400k_table", "cosyn_table")),
    "wemath": (1, ("wemath", "wemath20_pro", "wemath20_standard", "wemath2-pro", "wemath2-standard", "wemath2-sft")),
    "tqa": (1, ("tqa", "finevision-tqa")),
    "visualwebinstruct": (1, ("visualwebinstruct", "finevision-visualwebinstruct(filtered)")),
    "chartqa": (1, ("chartqa", "chartqa_difficulty")),
    "arxivqa": (1, ("arxivqa", "arxivqa_formatted")),
    "mmr1": (1, ("mmr1",)),
    "euclid": (1, ("euclid", "euclid30k")),
    "geometry3k": (1, ("geo3k", "geometry3k", "finevision-geometry3k(mathv360k)")),
    "mm_openr1": (1, ("mm-openr1", "mmopenr1-8k", "mm_openr1")),
    "bmmr": (1, ("bmmr",)),
    "scienceqa": (1, ("scienceqa", "finevision-scienceqa")),
    "virl39k": (1, ("virl39k",)),
    # ---- tier 2 (cap 1,400): auxiliary VQA, knowledge, counting/grounding/search, puzzles ---
    "pathvqa": (2, ("pathvqa",)),
    "vqarad": (2, ("vqarad", "vqa_rad")),
    "raven": (2, ("raven", "finevision-raven")),
    "evochart": (2, ("evochart",)),
    "infographic_vqa": (2, ("infographic_vqa", "infographicvqa")),
    "aokvqa": (2, ("aokvqa",)),
    "gqa": (2, ("gqa",)),
    "iconqa": (2, ("iconqa",)),
    "vqav2": (2, ("vqav2",)),
    "visual7w": (2, ("visual7w",)),
    "tallyqa": (2, ("tallyqa",)),
    "pixelreasoner": (2, ("pixelreasoner",)),
    "multihop": (2, ("multihop", "multihop_qa")),
    "pixmo": (2, ("pixmo",)),
    "visual_probe": (2, ("visual_probe",)),
    "visualsphinx": (2, ("visualsphinx",)),
    "puzzleqa": (2, ("puzzleqa",)),
    "llava_cot": (2, ("llava-cot", "llava_cot")),
    "zebra_cot": (2, ("zebra-cot", "zebra_cot")),
}

#: Vero config-name domain prefixes (``<domain>-<name>``).
VERO_DOMAINS: tuple[str, ...] = (
    "stem", "chart_ocr", "counting_grounding_search", "spatial_action", "knowledge_recognition", "captioning_IF",
)

#: Vero ``extra_info.reward_type`` -> the trainer's reward type. Rule: answers a deterministic
#: grader (mathruler-style boxed match) can decide. Judge: free-form answers, and the
#: structured ones (boxes, clicks, web actions, instruction following) that no rule grader of
#: the paper handles, so they go to the LLM judge. Unknown / null values -> ``judge``.
VERO_REWARD_TYPES: dict[str, str] = {
    "exact_match": "rule",
    "multiple_choice": "rule",
    "numeric": "rule",
    "list_match": "rule",
    "ordering": "rule",
    "llm_judge": "judge",
    "instruction_following": "judge",
    "grounding": "judge",
    "clicking": "judge",
    "web_action": "judge",
}
DEFAULT_REWARD_TYPE = "judge"
#: MMFineReason answers are standardised short answers (median 4 chars): rule-graded.
MMFR_REWARD_TYPE = "rule"
#: ``pass_rate`` values of the offline generator's MMFineReason rows (one above the recipe's
#: 0.5 cut, so its filter has rows to drop)
SYNTHETIC_PASS_RATES = (0.0, 0.25, 0.5, 0.75)

#: Every reason a row can be rejected for, in the order the stages run (cheap first).
REASONS: tuple[str, ...] = (
    "text_undecodable",  # a text field holds bytes that are not UTF-8 (row kept as a placeholder)
    "untiered",  # canonical sub-dataset in neither tier
    "dedup",  # cross-source duplicate (sub-dataset or question+image), Vero wins
    "pass_rate",  # MMFineReason pass_rate > max_pass_rate, or missing
    "question_missing",  # null / empty question text
    "answer_missing",  # null / empty gold answer
    "answer_too_long",  # gold answer longer than max_answer_chars
    "image_missing",  # no image bytes
    "image_undecodable",  # bytes whose header is not a readable image
    "image_too_large",  # w x h > max_image_pixels (from the header; pixels never decoded)
    "image_too_small",  # min(h, w) < min_image_side
    "image_aspect_ratio",  # aspect ratio beyond the resize rule's limit
    "prompt_too_long",  # question + closer + chat template + image tokens > max_prompt_tokens
    "cap",  # not drawn by the seeded per-sub-dataset sampling under the tier cap
)

_ALIAS: dict[str, str] = {alias: canon for canon, (_, aliases) in CANONICAL.items() for alias in aliases}
_DOMAIN_RE = re.compile(r"^(?:%s)-" % "|".join(re.escape(d.lower()) for d in VERO_DOMAINS))


def canonical_name(raw: str | None) -> str:
    """Canonical sub-dataset name of a raw upstream name; unknown names are returned lower-cased.

    >>> canonical_name("stem-ai2d_merged"), canonical_name("FineVision-ai2d_merged")
    ('ai2d', 'ai2d')
    """
    if raw is None:
        return ""
    key = raw.strip().lower()
    if key in _ALIAS:
        return _ALIAS[key]
    bare = _DOMAIN_RE.sub("", key)
    return _ALIAS.get(bare, bare)


def tier_of(canonical: str) -> int | None:
    """1 or 2 for a tiered canonical name, None for an untiered (excluded) one."""
    entry = CANONICAL.get(canonical)
    return entry[0] if entry else None
