"""LLM judges: the shared fallback judge and the five benchmark-specific judges.

A :class:`Judge` wraps any :class:`~zppo_core.engines.base.GenerationBackend` (the
OpenAI-compatible one in production, decoding from ``eval.judge_sampling``: T=0, top-p 1, 512
new tokens). Each verdict keeps the judge's raw output. Parsing is strict: an output that does
not follow the requested format scores 0 ("malformed => wrong", paper App. B.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jinja2

from eval import judge_prompts as jp
from eval.items import EvalItem, LETTERS
from zppo_core import grading, prompts
from zppo_core.engines.base import GenerationBackend, GenerationRequest, SamplingParams

JUDGE_KINDS: tuple[str, ...] = ("shared", "mmvet", "multichallenge", "mmvu", "hle", "charxiv")
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass
class Verdict:
    """``score`` in [0, 1]; ``raw``: the judge's full output; ``malformed``: format violated."""

    score: float
    raw: str
    malformed: bool = False
    extracted: str = ""


def _strip_think(text: str) -> str:
    return text.rsplit("</think>", 1)[-1].strip() if "</think>" in text else text.strip()


def parse_verdict(text: str) -> Verdict:
    """Shared / MMVU judge: exactly ``{"verdict": "correct"|"wrong"}``; anything else is wrong.
    The rule is :func:`zppo_core.grading.parse_judge_verdict`, shared with the RL reward."""
    v = grading.parse_judge_verdict(text)
    if v is None:
        return Verdict(0.0, text, malformed=True)
    return Verdict(float(v), text)


#: MM-Vet's score: the completion's first word is a decimal number (``0.5``, ``1``, ``.3``, ``1e-1``),
#: followed by a space, the end, or one closing punctuation mark -- ``1/2`` or ``0.5x`` is malformed
_MMVET_SCORE = re.compile(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?:[.,;:]?(?:\s|$))")


def parse_mmvet(text: str) -> Verdict:
    """MM-Vet: a correctness number in [0, 1], the first word of the completion (as the official
    scorer's ``float(first word)``; a fraction like ``1/2`` is not a number)."""
    m = _MMVET_SCORE.match(_strip_think(text))
    if not m or not 0.0 <= float(m.group(1)) <= 1.0:
        return Verdict(0.0, text, malformed=True)
    return Verdict(float(m.group(1)), text)


def parse_multichallenge(text: str, pass_criteria: str) -> Verdict:
    """MultiChallenge: the last YES/NO of the output must equal the row's pass criteria."""
    found = re.findall(r"\b(YES|NO)\b", _strip_think(text))
    if not found:
        return Verdict(0.0, text, malformed=True)
    return Verdict(float(found[-1] == pass_criteria.strip().upper()), text, extracted=found[-1])


def parse_hle(text: str) -> Verdict:
    """HLE: JSON with ``correct`` in {yes, no} (and the other CAIS fields)."""
    obj = grading.parse_json_object(text)
    c = str(obj.get("correct", "")).strip().lower() if obj else ""
    if c not in ("yes", "no"):
        return Verdict(0.0, text, malformed=True)
    return Verdict(float(c == "yes"), text, extracted=str(obj.get("extracted_final_answer", "")))  # type: ignore[union-attr]


def parse_charxiv(text: str) -> Verdict:
    """CharXiv: JSON ``{"extracted_answer": str, "score": 0|1}``."""
    obj = grading.parse_json_object(text)
    try:
        score = int(obj["score"]) if obj else -1  # type: ignore[index]
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        score = -1
    if score not in (0, 1):
        return Verdict(0.0, text, malformed=True)
    return Verdict(float(score), text, extracted=str(obj.get("extracted_answer", "")))  # type: ignore[union-attr]


def render_options(options: list[str]) -> str:
    return prompts.render_options(options) if options else ""


def build_prompt(kind: str, item: EvalItem, response: str, prompt_dir: str = "") -> str:
    """The judge prompt of ``kind`` for one (item, response)."""
    if kind == "shared":
        return prompts.build_judge_prompt(
            question=item.question, options=item.options, model_response=response, ground_truth=item.gold
        )
    if kind == "mmvet":
        ctx = {"question": item.question, "ground_truth": item.gold, "prediction": response}
        name = "mmvet"
    elif kind == "multichallenge":
        ctx, name = {"response": response, "target_question": item.meta["target_question"]}, "multichallenge"
    elif kind == "mmvu":
        gold = item.gold
        if item.answer_type == "mc" and item.gold in LETTERS[: len(item.options)]:
            gold = f"{item.gold}: {item.options[LETTERS.index(item.gold)]}"
        ctx = {"question": item.question, "options": render_options(item.options), "ground_truth": gold,
               "response": response, "open_ended": item.answer_type != "mc"}
        name = "mmvu"
    elif kind == "hle":
        ctx, name = {"question": item.question, "response": response, "correct_answer": item.gold}, "hle"
    elif kind == "charxiv":
        if item.meta.get("charxiv") == "descriptive":
            ctx = {"overarching_question": item.question, "response": response, "ground_truth": item.gold,
                   "rubric": jp.CHARXIV_DESCRIPTIVE_RUBRICS[item.meta["rubric"]]}
            name = "charxiv_descriptive"
        else:
            ctx = {"question": item.question, "ground_truth": item.gold, "response": response,
                   "rules": jp.CHARXIV_REASONING_RULES[int(item.meta["inst"])]}
            name = "charxiv_reasoning"
    else:
        raise KeyError(f"unknown judge {kind!r}; known: {', '.join(JUDGE_KINDS)}")
    return _ENV.from_string(jp.template(name, prompt_dir)).render(**ctx)


def parse(kind: str, item: EvalItem, text: str) -> Verdict:
    """Parse one judge output of ``kind``."""
    if kind in ("shared", "mmvu"):
        return parse_verdict(text)
    if kind == "mmvet":
        return parse_mmvet(text)
    if kind == "multichallenge":
        return parse_multichallenge(text, item.gold)
    if kind == "hle":
        return parse_hle(text)
    if kind == "charxiv":
        return parse_charxiv(text)
    raise KeyError(f"unknown judge {kind!r}")


class Judge:
    """Batched judging through a generation backend (one request per row, n=1)."""

    def __init__(self, backend: GenerationBackend, params: SamplingParams, prompt_dir: str = "") -> None:
        self.backend, self.params, self.prompt_dir = backend, params, prompt_dir

    def __call__(self, kind: str, rows: list[tuple[EvalItem, str]]) -> list[Verdict]:
        """Judge ``rows`` of (item, model response); returns one :class:`Verdict` per row."""
        if not rows:
            return []
        reqs = [
            GenerationRequest(messages=[{"role": "user", "content": build_prompt(kind, it, resp, self.prompt_dir)}],
                              request_id=f"judge:{it.item_id}")
            for it, resp in rows
        ]
        outs = self.backend.generate(reqs, 1, self.params)
        return [parse(kind, it, out[0].text if out else "") for (it, _), out in zip(rows, outs)]
