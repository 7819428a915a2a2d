"""Deterministic metrics shared by the "Det." benchmarks: ANLS (InfographicVQA), edit distance
(of strings or token lists), box IoU and token F1. OCRBench v2's per-type rules are in
:mod:`eval.ocrbench_v2`, its tree metrics in :mod:`eval.teds`. Pure functions.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

#: ANLS threshold tau of the DocVQA/InfographicVQA official metric
ANLS_THRESHOLD: float = 0.5


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance (insert/delete/substitute = 1) of two strings or token lists (hashable
    items). Bit-parallel (Myers 1999 / Hyyrö 2003): one pass over ``b`` with ``len(a)``-bit
    vectors, equal to the dynamic-programming value."""
    if len(a) < len(b):
        a, b = b, a
    m = len(a)
    if m == 0:
        return len(b)
    peq: dict[Any, int] = {}
    for i, item in enumerate(a):
        peq[item] = peq.get(item, 0) | (1 << i)
    full, last = (1 << m) - 1, 1 << (m - 1)
    vp, vn, dist = full, 0, m
    for item in b:
        x = peq.get(item, 0) | vn
        d0 = ((((x & vp) + vp) ^ vp) | x) & full
        hn = vp & d0
        hp = (vn | ~(d0 | vp)) & full
        dist += (hp & last != 0) - (hn & last != 0)
        x = ((hp << 1) | 1) & full
        vn = x & d0
        vp = ((hn << 1) | ~(d0 | x)) & full
    return dist


def _norm(s: str) -> str:
    return " ".join(str(s).strip().lower().split())


def anls(prediction: str, answers: Sequence[str], threshold: float = ANLS_THRESHOLD) -> float:
    """Average Normalized Levenshtein Similarity of one prediction: max over gold answers of
    ``1 - NL`` where ``NL = lev / max(len)``, zeroed when ``NL >= threshold``."""
    pred = _norm(prediction)
    best = 0.0
    for ans in answers:
        gold = _norm(ans)
        if not gold and not pred:
            return 1.0
        nl = levenshtein(pred, gold) / max(len(pred), len(gold), 1)
        best = max(best, 0.0 if nl >= threshold else 1.0 - nl)
    return best


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """Bag-of-tokens F1 (characters for CJK text, words otherwise) — used for OCRBench v2's text
    spotting in place of the RRC spotting metric (a documented departure, see eval/README.md)."""

    def toks(s: str) -> list[str]:
        s = _norm(s)
        return list(s.replace(" ", "")) if re.search(r"[\u4e00-\u9fff]", s) else s.split()

    p, r = Counter(toks(prediction)), Counter(toks(reference))
    common = sum((p & r).values())
    if not common:
        return 0.0
    prec, rec = common / sum(p.values()), common / sum(r.values())
    return 2 * prec * rec / (prec + rec)
