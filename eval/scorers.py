"""Rule scorers (per item) and aggregators (per benchmark).

Correctness of an extracted answer is always decided by :mod:`zppo_core.grading`
(``answers_match``) (one
definition shared with the RL reward); this module only chooses *what* to extract and which
deterministic metric applies. A rule scorer returns ``score=None`` when it cannot resolve the
row (no parsable final answer, or free text the rule cannot decide) — only those rows go to
the shared LLM judge. Scores are in [0, 1]; benchmark accuracy is reported in percent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from eval import metrics_det as det
from eval import ocrbench_v2 as ocr
from eval.items import LETTERS, EvalItem
from zppo_core import grading, prompts


@dataclass
class RuleResult:
    """``extracted``: the answer the rule pulled out ("" when none); ``score``: 0..1 or None."""

    extracted: str
    score: float | None
    detail: dict[str, Any] = field(default_factory=dict)


def final_text(response: str) -> str:
    """The response after its reasoning (``zppo_core.prompts.strip_think``)."""
    return prompts.strip_think(response)


def boxed(response: str) -> str | None:
    """Content of the last ``\\boxed{}`` (via zppo_core.grading)."""
    got = grading.extract_boxed(response)
    return None if got is None else str(got).strip()


def score_mc(item: EvalItem, response: str) -> RuleResult:
    """Letter from ``\\boxed{}`` then the look-inside-reasoning fallback (grading's extractor);
    a boxed option *text* is mapped to its letter via grading's equivalence."""
    # options written inside the question text (DynaMath, MathVerse): any letter is accepted;
    # options shown only in the image (MMMU-Pro vision) are kept in meta["option_texts"]
    options = item.options or [str(o) for o in (item.meta.get("option_texts") or [])]
    got = grading.extract_choice_letter(response, len(options) or len(LETTERS))
    if not got:
        b = boxed(response)
        if b is not None and options:
            hits = [i for i, o in enumerate(options) if grading.answers_match(b, o)]
            if len(hits) == 1:
                got = chr(ord("A") + hits[0])
    if not got:
        return RuleResult("", None)
    got = str(got).strip().upper()
    return RuleResult(got, float(got == item.gold.strip().upper()))


def score_math(item: EvalItem, response: str) -> RuleResult:
    """Numeric / LaTeX equivalence of the boxed answer; no box -> unresolved."""
    b = boxed(response)
    if b is None:
        return RuleResult("", None)
    return RuleResult(b, float(bool(grading.answers_match(b, item.gold))))


def score_text(item: EvalItem, response: str) -> RuleResult:
    """Short free text: a rule match is final, a mismatch is left to the judge."""
    b = boxed(response)
    if b is None:
        return RuleResult("", None)
    if grading.answers_match(b, item.gold):
        return RuleResult(b, 1.0)
    return RuleResult(b, None)


def det_answer(response: str) -> str:
    r"""The answer a deterministic metric reads: the last ``\boxed{}`` (else the text after the
    reasoning) with ``\text{...}`` wrappers replaced by their content."""
    b = boxed(response)
    return grading.unwrap_text(b if b is not None else final_text(response)).strip()


def score_anls(item: EvalItem, response: str) -> RuleResult:
    """InfographicVQA ANLS over all gold answers (deterministic, never judged)."""
    pred = det_answer(response)
    answers = item.meta.get("answers") or [item.gold]
    return RuleResult(pred, det.anls(pred, answers))


def score_ocr_v2(item: EvalItem, response: str) -> RuleResult:
    """OCRBench v2: the official rule of the row's task type and ``eval`` field."""
    pred = det_answer(response)
    return RuleResult(pred, ocr.score(pred, item.meta))


def score_vblind(item: EvalItem, response: str) -> RuleResult:
    """VLMs-are-Blind: counts / letters / yes-no; braces like ``{3}`` in the gold are dropped."""
    b = boxed(response)
    if b is None:
        return RuleResult("", None)
    gold = item.gold.strip().strip("{}").strip()
    return RuleResult(b, float(bool(grading.answers_match(b, gold)) or b.strip().lower() == gold.lower()))


def score_mathvista(item: EvalItem, response: str) -> RuleResult:
    """MathVista's rule (its ``normalize_extracted_answer``): an ``integer`` answer is truncated
    (``int(float(x))``: 3.7 scores as 3) and a ``float`` one rounded to the row's ``precision``
    before comparing; thousands separators are removed first. Other rows, or a prediction that
    is no number, fall back to :func:`zppo_core.grading.answers_match`."""
    if item.answer_type == "mc":
        return score_mc(item, response)
    b = boxed(response)
    if b is None:
        return RuleResult("", None)
    kind, prec = item.meta.get("mv_answer_type"), item.meta.get("precision")
    try:
        if kind == "integer":
            return RuleResult(b, float(int(float(b.replace(",", ""))) == int(float(item.gold))))
        if kind == "float" and prec is not None:
            b_num = round(float(b.replace(",", "")), int(prec))
            return RuleResult(b, float(abs(b_num - float(item.gold)) < 1e-9))
    except (ValueError, OverflowError):
        pass
    return RuleResult(b, float(bool(grading.answers_match(b, item.gold))))


def score_judged(item: EvalItem, response: str) -> RuleResult:
    """Open-ended items: always unresolved (a benchmark judge decides)."""
    b = boxed(response)
    return RuleResult(b if b is not None else "", None)


BY_TYPE: dict[str, Callable[[EvalItem, str], RuleResult]] = {
    "mc": score_mc, "math": score_math, "text": score_text, "anls": score_anls, "ocr": score_ocr_v2,
    "open": score_judged,
}
SCORERS: dict[str, Callable[[EvalItem, str], RuleResult]] = {
    "anls": score_anls, "ocr_v2": score_ocr_v2, "vblind": score_vblind, "mathvista": score_mathvista,
}


def rule_score(scorer: str, item: EvalItem, response: str) -> RuleResult:
    """Dispatch: a named scorer, or ``auto`` = by the item's answer type."""
    if scorer == "auto" or (item.answer_type in ("open",) and scorer not in SCORERS):
        return BY_TYPE[item.answer_type](item, response)
    if scorer not in SCORERS:
        raise KeyError(f"unknown scorer {scorer!r}; known: auto, {', '.join(SCORERS)}")
    return SCORERS[scorer](item, response)


# ------------------------------------------------------------------------- aggregation
def _pct(xs: list[float]) -> float:
    return 100.0 * sum(xs) / len(xs) if xs else 0.0


#: MMMU-Pro's reported score: the mean of these two configurations (its paper and leaderboard);
#: the 4-option standard set is evaluated and shown in ``by_subset`` but not in the headline
MMMU_PRO_HEADLINE = ("standard (10 options)", "vision")


def aggregate(kind: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Benchmark accuracy (percent) from per-item records (``score``, ``subset``, ``meta``)."""
    scores = [float(r["score"]) for r in records]
    out: dict[str, Any] = {"accuracy": _pct(scores)}
    if kind == "dynamath":  # a seed question counts for worst-case only if all variants are right
        by_seed: dict[str, list[float]] = defaultdict(list)
        for r in records:
            by_seed[str(r["meta"].get("id", r["item_id"].split("/")[-1]))].append(float(r["score"]))
        out["average_case"] = out["accuracy"]
        out["worst_case"] = _pct([float(min(v) >= 1.0) for v in by_seed.values()])
    elif kind in ("per_config", "mmmu_pro", "charxiv"):
        key = (lambda r: r["meta"].get("charxiv", "")) if kind == "charxiv" else (lambda r: r["subset"])
        groups: dict[str, list[float]] = defaultdict(list)
        for r in records:
            groups[key(r)].append(float(r["score"]))
        out["by_subset"] = {k: _pct(v) for k, v in groups.items()}
        if kind == "per_config":
            out["accuracy"] = sum(out["by_subset"].values()) / len(groups) if groups else 0.0
        if kind == "mmmu_pro":  # the benchmark's headline: standard (10 options) and vision
            out["all_configs_mean"] = sum(out["by_subset"].values()) / len(groups) if groups else 0.0
            head = [out["by_subset"][c] for c in MMMU_PRO_HEADLINE if c in out["by_subset"]]
            out["accuracy"] = sum(head) / len(head) if head else out["all_configs_mean"]
    elif kind in ("ocr_v2_en", "ocr_v2_cn"):
        lang = kind[-2:]
        buckets: dict[str, list[float]] = defaultdict(list)
        for r in records:
            base, _ = ocr.task_of(str(r["meta"].get("type", "")))
            buckets[ocr.BUCKETS[lang][base]].append(float(r["score"]))
        out["by_bucket"] = {k: _pct(v) for k, v in buckets.items()}
        out["accuracy"] = sum(out["by_bucket"].values()) / len(buckets) if buckets else 0.0
    elif kind != "mean":
        raise KeyError(f"unknown aggregate {kind!r}")
    return out
