"""OCRBench v2's official per-type scoring rules (Fu et al., arXiv 2501.00321), written from the
authors' evaluation scripts (``OCRBench_v2/eval_scripts``: ``eval.py``, ``vqa_metric.py``,
``IoUscore_metric.py``, ``TEDS_metric.py``, ``get_score.py``). Pure functions on strings.

Each row is scored by its ``type`` (``"<task> en"`` / ``"<task> cn"``) and, for the VQA-style
tasks, its ``eval`` field (``"multiple choice"``, ``"case sensitive"``; counting rows:
``"exact match"`` / ``"regression"``). Table, chart and document parsing use :mod:`eval.teds`.
Deliberate departures (all listed in ``eval/README.md``): the page-OCR text metric
(:func:`text_similarity`: METEOR's exact stage only, per-character Chinese tokens) and text
spotting (token F1), whose official scorers need packages and data this project does not ship.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from itertools import product
from typing import Any, Callable, Sequence

from eval import metrics_det as det
from eval import teds

#: an English VQA gold with fewer words than this is scored by containment, else by ANLS
EN_CONTAINMENT_MAX_WORDS: int = 5
#: a Chinese VQA gold with fewer comma-separated parts than this is scored by containment
CN_CONTAINMENT_MAX_PARTS: int = 4
#: ANLS similarities below this count as 0 (official: ``ANLS_value >= 0.5``)
ANLS_MIN_SIMILARITY: float = 0.5
#: grounding coordinates are integers in [0, COORD_MAX] (Qwen-style 0..1000 boxes)
COORD_MAX: int = 1000
#: separators the official rule accepts between the characters of a handwritten choice answer
HANDWRITTEN_JOINERS: tuple[str, ...] = ("", ".", ". ", ",", ", ", "、", ";", "; ", " ", "和")

VQA_EN = frozenset({"APP agent", "ASCII art classification", "math QA", "reasoning VQA", "science QA",
                    "text recognition", "document classification", "cognition VQA", "diagram QA"})
VQA_CN = frozenset({"cognition VQA", "reasoning VQA"})
TEXT_SIMILARITY = frozenset({"full-page OCR en", "full-page OCR cn", "fine-grained text recognition en",
                             "text translation cn"})
#: scored officially by the RRC spotting script (polygon matching + transcription); token F1 here
APPROXIMATED = frozenset({"text spotting en"})

#: official reporting buckets (``get_score.py``): English = mean of 8, Chinese = mean of 5
BUCKETS: dict[str, dict[str, str]] = {
    "en": {
        "text recognition": "text_recognition", "fine-grained text recognition": "text_recognition",
        "full-page OCR": "text_recognition", "text grounding": "text_detection",
        "VQA with position": "text_detection", "text spotting": "text_spotting",
        "key information extraction": "relationship_extraction",
        "key information mapping": "relationship_extraction", "document parsing": "element_parsing",
        "chart parsing": "element_parsing", "table parsing": "element_parsing",
        "formula recognition": "element_parsing", "math QA": "mathematical_calculation",
        "text counting": "mathematical_calculation", "document classification": "visual_text_understanding",
        "cognition VQA": "visual_text_understanding", "diagram QA": "visual_text_understanding",
        "reasoning VQA": "knowledge_reasoning", "science QA": "knowledge_reasoning",
        "APP agent": "knowledge_reasoning", "ASCII art classification": "knowledge_reasoning",
    },
    "cn": {
        "full-page OCR": "text_recognition", "key information extraction": "relationship_extraction",
        "handwritten answer extraction": "relationship_extraction", "document parsing": "element_parsing",
        "table parsing": "element_parsing", "formula recognition": "element_parsing",
        "cognition VQA": "visual_text_understanding", "reasoning VQA": "knowledge_reasoning",
        "text translation": "knowledge_reasoning",
    },
}


#: every task type of the benchmark (21 English, 9 Chinese); a row of another type is rejected
KNOWN_TYPES: frozenset[str] = frozenset(
    [f"{t} en" for t in BUCKETS["en"]] + [f"{t} cn" for t in BUCKETS["cn"]])


def task_of(task_type: str) -> tuple[str, str]:
    """``"text grounding en"`` -> ``("text grounding", "en")``."""
    base, _, lang = str(task_type).rpartition(" ")
    return base, lang


def eval_mode(value: Any) -> str | None:
    """The row's ``eval`` field; None / NaN / "" (parquet nulls) mean "not set"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if not text or text.lower() == "nan" else text


# ------------------------------------------------------------------------------- VQA rules
def _anls_or_contained(pred: str, answers: Sequence[str], short: Callable[[str], bool],
                       norm: Callable[[str], str]) -> float:
    """Official VQA rule: a short gold scores 1 when contained in the prediction; a long gold
    scores its ANLS similarity ``1 - lev/max(len)`` when that is >= 0.5. Max over golds."""
    p = norm(pred)
    score = 0.0
    for ans in answers:
        a = norm(str(ans))
        if short(a):
            if a in p:
                score = 1.0
            continue
        length = max(len(p), len(a))
        sim = 1.0 - (det.levenshtein(p, a) / length if length else 0.0)
        if sim >= ANLS_MIN_SIMILARITY:
            score = max(score, sim)
    return score


def _en_norm(s: str) -> str:
    return s.lower().strip().replace("\n", " ")


def vqa_en(pred: str, answers: Sequence[str]) -> float:
    """English VQA (``vqa_evaluation``): case-insensitive; containment under 5 words."""
    return _anls_or_contained(pred, answers, lambda a: len(a.split()) < EN_CONTAINMENT_MAX_WORDS, _en_norm)


def vqa_case_sensitive(pred: str, answers: Sequence[str]) -> float:
    """``eval == "case sensitive"``: as :func:`vqa_en` without lowercasing."""
    return _anls_or_contained(pred, answers, lambda a: len(a.split()) < EN_CONTAINMENT_MAX_WORDS,
                              lambda s: s.strip().replace("\n", " "))


def vqa_cn(pred: str, answers: Sequence[str]) -> float:
    """Chinese VQA (``cn_vqa_evaluation``): spaces removed; containment under 4 comma parts."""
    return _anls_or_contained(pred, answers, lambda a: len(a.split(",")) < CN_CONTAINMENT_MAX_PARTS,
                              lambda s: s.lower().strip().replace("\n", " ").replace(" ", ""))


def multiple_choice(pred: str, answers: Sequence[str]) -> float:
    """``eval == "multiple choice"``: the prediction's letters only (case kept) equal the gold
    exactly, so "(B)" and "B." are B but "because" is not."""
    return float(bool(answers) and "".join(c for c in pred if c.isalpha()) == str(answers[0]))


def counting(pred: str, answers: Sequence[str], mode: str | None) -> float:
    """Text counting: ``exact match`` = the gold number is contained in the prediction;
    ``regression`` = first integer p of the prediction, score ``1 - |p-a|/a`` when that is
    above 0.5 (0 when p <= 0 or p >= 2a). Unset mode is treated as exact match."""
    score = 0.0
    first = re.search(r"\d+", _en_norm(pred))
    for ans in answers:
        a = _en_norm(str(ans))
        if mode == "regression":
            if first is None or not a.isdigit() or int(a) == 0:
                continue
            p, g = int(first.group()), int(a)
            if 0 < p < 2 * g:
                s = 1.0 - abs(p - g) / g
                score = max(score, s if s > 0.5 else 0.0)
        elif a in pred:
            score = 1.0
    return score


_TEXT_TAG_RE = re.compile(r"\\text\{([^{}]*)\}")


def formula(pred: str, answers: Sequence[str], chinese: bool) -> float:
    """Formula recognition: whitespace removed, the gold LaTeX contained in the prediction
    (case kept); the Chinese rule first removes ``\\text{...}`` tags on both sides."""
    def squash(s: str) -> str:
        s = _TEXT_TAG_RE.sub(r"\1", s) if chinese else s
        return s.strip().replace("\n", " ").replace(" ", "")

    p = squash(pred)
    return float(any(squash(str(a)) in p for a in answers))


def handwritten_cn(pred: str, answers: Sequence[str], question: str) -> float:
    """Handwritten answer extraction (cn): short-answer questions ("简答") use the text
    similarity; choice answers such as "AC" are right in any of the official joinings
    ("A,C", "A、C", "A和C", ...) contained in the prediction."""
    if not answers:
        return 0.0
    gold = str(answers[0])
    if "简答" in question:
        return text_similarity(pred, gold)
    if len(gold) <= 1:
        return float(gold in pred)
    return float(any(j.join(gold) in pred for j in HANDWRITTEN_JOINERS))


# ---------------------------------------------------------------------------- boxes / dicts
_COORD_RE = re.compile(r"[\(\[]\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*[\)\]]")


def last_box(text: str) -> list[int] | None:
    """The last ``(x1, y1, x2, y2)`` / ``[x1, y1, x2, y2]`` of integers in [0, 1000]."""
    boxes = [[int(v) for v in m.groups()] for m in _COORD_RE.finditer(text)]
    boxes = [b for b in boxes if all(0 <= v <= COORD_MAX for v in b)]
    return boxes[-1] if boxes else None


def int_iou(a: Sequence[Any], b: Sequence[Any]) -> float:
    """IoU of two boxes after the official integer conversion; 0 when either is malformed."""
    try:
        ia, ib = [int(float(v)) for v in list(a)[:4]], [int(float(v)) for v in list(b)[:4]]
    except (TypeError, ValueError):
        return 0.0
    return det.iou(ia, ib) if len(ia) == 4 and len(ib) == 4 else 0.0


def gold_box(answers: Sequence[Any]) -> list[Any] | None:
    """The grounding gold: ``answers`` itself when it holds four coordinates, else the numbers
    of its single string entry (``"[12, 30, 200, 64]"``)."""
    vals = list(answers)
    if len(vals) == 1 and isinstance(vals[0], str):
        vals = re.findall(r"-?\d+(?:\.\d+)?", vals[0])
    return vals[:4] if len(vals) >= 4 else None


def parse_dict(text: str) -> dict[str, str]:
    """A prediction as a flat ``{key: str(value)}`` dict (``convert_str_to_dict``): JSON, then a
    Python literal, then ``key: value`` lines; a fenced block is read first; ``{}`` if none."""
    m = re.search(r"```(?:python|json)?\n(.*?)\n```", text, re.DOTALL | re.IGNORECASE)
    content = m.group(1) if m else text.strip()
    data = teds.parse_literal(content)
    if not isinstance(data, dict):
        pairs = re.findall(r"[\"']?([\w\s]+)[\"']?\s*[:=]\s*[\"']?([^\n,\"'{}]+)[\"']?", content)
        data = {k.strip(): v.strip() for k, v in pairs}
    return {str(k).strip(): str(v).strip() for k, v in data.items()}


def vqa_with_position(pred: str, answers: Sequence[str], gold_box: Any) -> float:
    """``0.5 * VQA(answer) + 0.5 * IoU(bbox)`` of a ``{"answer": ..., "bbox": [...]}`` reply."""
    d = parse_dict(pred)
    content = vqa_en(d["answer"], answers) if "answer" in d else 0.0
    box = 0.0
    if "bbox" in d and gold_box is not None:
        try:
            box = int_iou(ast.literal_eval(d["bbox"]), gold_box)
        except teds.LITERAL_ERRORS:
            box = 0.0
    return 0.5 * content + 0.5 * box


def _gold_dicts(raw: Any) -> list[dict[str, str]]:
    """Every combination of a KIE gold whose values may be lists of alternatives."""
    gold = raw
    if not isinstance(gold, dict):
        gold = teds.parse_literal(str(gold).strip().strip('"'))
    if not isinstance(gold, dict):
        return []
    keys = list(gold)
    alts = [v if isinstance(v, list) else [v] for v in gold.values()]
    return [dict(zip(keys, combo)) for combo in product(*alts)]


def kie_f1(pred: dict[str, str], gold: dict[str, Any]) -> float:
    """Mean over the union of keys of an exact (case- and space-insensitive) value match."""
    def norm(v: Any) -> str | None:
        return None if v is None else str(v).lower().strip().replace("\n", " ").replace(" ", "")

    keys = set(pred) | set(gold)
    hits = [float(norm(pred.get(k)) is not None and norm(pred.get(k)) == norm(gold.get(k))) for k in keys
            if not (norm(pred.get(k)) is None and norm(gold.get(k)) is None)]
    return sum(hits) / len(hits) if hits else 0.0


def kie(pred: str, answers: Sequence[Any]) -> float:
    """Key information extraction / mapping: best :func:`kie_f1` over the gold combinations."""
    golds = _gold_dicts(answers[0]) if answers else []
    d = parse_dict(pred)
    return max((kie_f1(d, g) for g in golds), default=0.0)


# ----------------------------------------------------------------------- text similarity
_CJK_RE = re.compile(r"[\u4e00-\u9fa5]")


def _tokens(s: str) -> list[str]:
    """Whitespace tokens; text with Chinese characters is split per CJK character (the official
    metric uses the jieba segmenter there — a documented departure)."""
    if _CJK_RE.search(s):
        return re.findall(r"[\u4e00-\u9fa5]|[^\s\u4e00-\u9fa5]+", s)
    return s.split()


def bleu4(ref: list[str], hyp: list[str]) -> float:
    """Sentence BLEU-4, uniform weights, brevity penalty, no smoothing (0 when any n-gram
    precision is 0), as ``nltk.translate.bleu`` with its defaults."""
    if not hyp or not ref:
        return 0.0
    logs = 0.0
    for n in range(1, 5):
        h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
        r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
        hit = sum((h & r).values())
        if hit == 0:
            return 0.0
        logs += math.log(hit / sum(h.values())) / 4
    bp = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return bp * math.exp(logs)


def meteor_exact(ref: list[str], hyp: list[str], alpha: float = 0.9, beta: float = 3.0,
                 gamma: float = 0.5) -> float:
    """METEOR with the exact-match stage only (lowercased; NLTK's alpha/beta/gamma defaults;
    the official stem and WordNet-synonym stages are not run — a documented departure)."""
    r, h = [t.lower() for t in ref], [t.lower() for t in hyp]
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for i in range(len(h) - 1, -1, -1):  # NLTK's order: last hypothesis word first, last free match
        j = next((j for j in range(len(r) - 1, -1, -1) if r[j] == h[i] and j not in used), None)
        if j is not None:
            used.add(j)
            pairs.append((i, j))
    pairs.sort()
    m = len(pairs)
    if m == 0:
        return 0.0
    prec, rec = m / len(h), m / len(r)
    fmean = prec * rec / (alpha * prec + (1 - alpha) * rec)
    chunks = 1 + sum(1 for (i0, j0), (i1, j1) in zip(pairs, pairs[1:]) if not (i1 == i0 + 1 and j1 == j0 + 1))
    return fmean * (1 - gamma * (chunks / m) ** beta)


def text_similarity(pred: str, gold: str) -> float:
    """Page-OCR metric (``cal_per_metrics``): mean of BLEU-4, METEOR, set F1 of tokens and
    ``1 - lev/max(len)`` of the characters."""
    if not pred or not gold:
        return 0.0
    ref, hyp = _tokens(gold), _tokens(pred)
    rs, hs = set(ref), set(hyp)
    common = len(rs & hs)
    f1 = 2 * common / (len(rs) + len(hs)) if common else 0.0
    ned = det.levenshtein(pred, gold) / max(len(pred), len(gold))
    return (bleu4(ref, hyp) + meteor_exact(ref, hyp) + f1 + (1.0 - ned)) / 4


# ------------------------------------------------------------------------------ dispatch
def score(pred: str, meta: dict[str, Any]) -> float:
    """Score one OCRBench v2 answer in [0, 1] by the row's ``type`` and ``eval``."""
    task = str(meta.get("type", ""))
    base, lang = task_of(task)
    answers = [a for a in (meta.get("answers") or [])]
    texts = [str(a) for a in answers]
    mode = eval_mode(meta.get("eval"))
    if (lang == "en" and base in VQA_EN) or (lang == "cn" and base in VQA_CN):
        if mode == "multiple choice":
            return multiple_choice(pred, texts)
        if mode == "case sensitive":
            return vqa_case_sensitive(pred, texts)
        return vqa_en(pred, texts) if lang == "en" else vqa_cn(pred, texts)
    if task == "text counting en":
        return counting(pred, texts, mode)
    if base == "formula recognition":
        return formula(pred, texts, chinese=lang == "cn")
    if task == "handwritten answer extraction cn":
        return handwritten_cn(pred, texts, str(meta.get("question") or ""))
    if task == "text grounding en":
        box, gold = last_box(pred), gold_box(answers)
        return int_iou(box, gold) if box is not None and gold is not None else 0.0
    if task == "VQA with position en":
        return vqa_with_position(pred, texts, meta.get("bbox"))
    if base in ("key information extraction", "key information mapping"):
        return kie(pred, answers)
    if task in TEXT_SIMILARITY:
        return text_similarity(pred, texts[0]) if texts else 0.0
    if base in ("table parsing", "chart parsing", "document parsing"):
        try:
            return teds.parsing_score(task, pred, texts, str(meta.get("question") or ""))
        except RecursionError:  # pathologically nested markup
            return 0.0
    if task in APPROXIMATED:
        return max((det.token_f1(pred, a) for a in texts), default=0.0)
    raise KeyError(f"OCRBench v2: unknown task type {task!r}")
