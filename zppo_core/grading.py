r"""Rule-based answer grading: one definition of correctness for RL rewards and benchmarks.

Pure module (no I/O). Implements the paper's rule grader (App. D.1 "Rule-based reward grader"):

1. take the content of the **last** ``\boxed{...}`` (or ``\fbox{...}``, or ``\boxed 5``) of the
   response; no box => reward 0;
2. strict pass: compare with the gold answer a* under LaTeX/numeric equivalence;
3. second pass, only when a boxed span exists and the strict pass failed: strip degree
   (``^\circ``, ``^{\circ}``, ``°``, ``\circ``, ``\deg``, ``\degree``) and percent (``%``, ``\%``)
   annotations on both sides and compare once more. Correct iff either pass succeeds.

"Equivalence" (each step only runs if the previous ones did not already decide):
  a. :func:`normalize_answer` equality (lowercase, whitespace collapse, ``\text{}`` unwrapped);
  b. multiple-choice letters when the gold is a letter (``B``, ``(B)``, ``B.``): the prediction's
     letter (``B``, ``(B)``, ``B.``, ``B) text``, ``Option B``, ``\text{B}``) must be the same;
  c. exact rational equality of plain numbers (``1/2`` = ``0.5`` = ``\frac{1}{2}``, ``1,000``);
  c'. comma lists: when either side has a comma outside brackets (``3,4``) and the gold is not
     written as a set (``\{3,4\}``), both sides are compared as *ordered* lists, element by
     element with steps a-e (``4,3`` != ``3,4``: a grid's rows,columns is not a set); the result
     is final. A gold written as a set is compared as a set (by step e);
  d. ``mathruler.grader.grade_answer`` (the paper's library);
  e. math-verify ``verify(parse(gold), parse(pred))`` (skipped for word answers such as ``cat``,
     which sympy would read as the product c*a*t).

Time bound: steps d-e call into sympy, which can run for minutes inside C code on adversarial
input (``1e9999999`` builds a ten-million-digit integer). Two layers bound them:

* a cheap pre-check: only answers of at most :data:`SYMBOLIC_MAX_CHARS` characters, brace depth
  :data:`SYMBOLIC_MAX_DEPTH`, and without huge exponents (``10^{99999}``, ``1e9999999``),
  exponent towers (``10^{10^{10}}``) or huge factorials reach sympy;
* steps d-e (:mod:`zppo_core.symbolic`) run in a worker process
  (:mod:`zppo_core.symbolic_worker`) under a wall-clock budget shared by the whole :func:`grade`
  call; a worker past the budget is killed and replaced.

Only when no worker process can be started do they run in-process under
:func:`zppo_core.deadline.bounded` (an alarm / helper thread, which cannot stop C code).
A timed-out comparison counts as *not equal*. No function here raises on any input.
"""

from __future__ import annotations

import json
import logging
import math
import re
import string
import time
from fractions import Fraction
from typing import Any

from zppo_core import symbolic_worker
from zppo_core.deadline import STATS as _STATS
from zppo_core.deadline import bounded as _bounded
from zppo_core.deadline import deadline_stats as _deadline_stats
from zppo_core.prompts import strip_think
from zppo_core.symbolic import TEXT_WRAP_RE as _TEXT_WRAP_RE
from zppo_core.symbolic import has_word as _has_word
from zppo_core.symbolic import math_verify_equal as _math_verify_equal
from zppo_core.symbolic import mathruler_grade as _mathruler_grade

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "extract_boxed",
    "normalize_answer",
    "unwrap_text",
    "strip_degree_percent",
    "answers_match",
    "grade",
    "reward",
    "extract_choice_letter",
    "grading_stats",
    "parse_json_object",
    "parse_judge_verdict",
]

#: Wall-clock budget (seconds) of the symbolic steps of one :func:`grade` call.
DEFAULT_TIMEOUT_S = 1.0
#: Longest answer (chars, each side) handed to sympy; longer ones are compared as strings only.
SYMBOLIC_MAX_CHARS = 256
#: Longest answer (chars) that gets any normalisation beyond plain string equality.
COMPARE_MAX_CHARS = 4096
#: Deepest ``{`` nesting handed to sympy.
SYMBOLIC_MAX_DEPTH = 24

_LETTERS = string.ascii_uppercase


class _DropTimeoutDisabledNotice(logging.Filter):
    """math-verify warns once that its signal timeout is off; this module bounds time itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledNotice())


# ---------------------------------------------------------------------------------------------
# Extraction and normalisation
# ---------------------------------------------------------------------------------------------
_BOX_CMD_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BARE_BOX_TOKEN_RE = re.compile(r"[^\s$]+")


def _matching_brace(text: str, open_pos: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_pos`` (escaped ``\\{``/``\\}`` skipped)."""
    depth = 0
    i, n = open_pos, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def extract_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` / ``\fbox{...}`` (nested braces balanced), stripped.

    ``\boxed 5`` (no braces) yields ``"5"``. Returns None when there is no box or the last one is
    never closed (e.g. a response truncated inside it), like mathruler's ``extract_boxed_content``.
    Linear in ``len(text)``.
    """
    if not isinstance(text, str):
        return None
    last = None
    for last in _BOX_CMD_RE.finditer(text):
        pass
    if last is None:
        return None
    j = last.end()
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        close = _matching_brace(text, j)
        return None if close is None else text[j + 1 : close].strip()
    token = _BARE_BOX_TOKEN_RE.match(text, j)
    if token is None:
        return None
    value = token.group(0).rstrip(".,;")
    return value or None


def unwrap_text(s: Any) -> str:
    r"""``s`` with ``\text{...}``-style wrappers replaced by their content (nested ones too,
    bounded), e.g. ``\text{North America}`` -> ``North America``. ``None`` -> ``""``."""
    if s is None:
        return ""
    s = str(s)
    for _ in range(8):  # nested wrappers, bounded
        unwrapped = _TEXT_WRAP_RE.sub(r"\1", s)
        if unwrapped == s:
            break
        s = unwrapped
    return s


def normalize_answer(s: Any) -> str:
    r"""Audit normalisation (paper §F.7): unwrap ``\text{...}``-style wrappers, collapse
    whitespace, lowercase. ``None`` -> ``""``."""
    return " ".join(unwrap_text(s).split()).lower()


_DEG_PCT_RE = re.compile(
    r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])|\\deg(?![A-Za-z])"
    r"|\^\s*\{\s*\}|\\%|%"
)


def strip_degree_percent(s: str) -> str:
    r"""Remove degree (``^\circ``, ``^{\circ}``, ``°``, ``\circ``, ``\deg``) and percent
    (``%``, ``\%``) annotations (the grader's second pass)."""
    return " ".join(_DEG_PCT_RE.sub("", s).split())


# ---------------------------------------------------------------------------------------------
# Multiple choice
# ---------------------------------------------------------------------------------------------
_GOLD_LETTER_RE = re.compile(r"^\(?([A-Z])\)?\.?$")
_PRED_LETTER_RE = re.compile(
    r"^(?:(?:the\s+)?(?:correct\s+|final\s+)?(?:option|choice|answer)\s*(?:is\s*)?[:：]?\s*)?"
    r"(?:\(([A-Za-z])\)[.:]?(?:\s.*)?|([A-Za-z])(?:[.)\]](?:\s.*)?|[:：]\s*(?:[^\s:：A-Za-z].*|[A-Za-z]{2,}.*)?)?)$",
    re.IGNORECASE | re.DOTALL,
)


def _gold_letter(gold: str) -> str | None:
    m = _GOLD_LETTER_RE.match(_TEXT_WRAP_RE.sub(r"\1", gold).strip())
    return m.group(1) if m else None


def _pred_letter(pred: str) -> str | None:
    """Option letter of a short answer string: ``B``, ``(B)``, ``B.``, ``B) text``, ``(B) text``,
    ``B:45°`` (MathVerse's own option notation), ``Option b``, ``\\text{B}`` -> ``"B"``;
    ``a + b``, ``x = 5``, ``A, B``, ``a:b``, ``B::C`` -> None."""
    text = _TEXT_WRAP_RE.sub(r"\1", pred).strip()
    if len(text) > COMPARE_MAX_CHARS:
        return None
    m = _PRED_LETTER_RE.match(text)
    if not m:
        return None
    return (m.group(1) or m.group(2)).upper()


# ---------------------------------------------------------------------------------------------
# Numeric fast path
# ---------------------------------------------------------------------------------------------
_FRAC_RE = re.compile(r"^([+-])?\\[dt]?frac\s*\{\s*([+-]?\d+(?:\.\d+)?)\s*\}\s*\{\s*([+-]?\d+(?:\.\d+)?)\s*\}$")
_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:/[+-]?\d+(?:\.\d*)?)?$")
_NUMERIC_MAX_CHARS = 64


def _as_fraction(s: str) -> Fraction | None:
    s = s.strip().strip("$").replace("\\!", "").replace("\\,", "").replace(" ", "")
    if not s or len(s) > _NUMERIC_MAX_CHARS:
        return None
    try:
        m = _FRAC_RE.match(s)
        if m:
            value = Fraction(m.group(2)) / Fraction(m.group(3))
            return -value if m.group(1) == "-" else value
        if _THOUSANDS_RE.match(s):
            s = s.replace(",", "")
        if _NUMBER_RE.match(s):
            num, _, den = s.partition("/")
            return Fraction(num) / Fraction(den) if den else Fraction(num)
    except (ValueError, ZeroDivisionError, ArithmeticError):
        return None
    return None




# ---------------------------------------------------------------------------------------------
# Ordered lists vs sets
# ---------------------------------------------------------------------------------------------
_OPENERS, _CLOSERS = "([{", ")]}"
_SET_RE = re.compile(r"^(?:\\left\s*)?(?:\\\{|\\lbrace)(.*)(?:\\right\s*)?(?:\\\}|\\rbrace)$", re.DOTALL)


def _top_level_split(s: str) -> list[str]:
    """``s`` split on commas outside any bracket: ``3,4`` -> [3, 4]; ``(1,2)`` -> [(1,2)]."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] not in "{}":
            i += 2  # an escaped character: ``\,`` is a LaTeX thin space, not a separator
            continue
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            parts.append(s[start:i].strip())
            start = i + 1
        i += 1
    parts.append(s[start:].strip())
    return parts


def _is_set_notation(s: str) -> bool:
    r"""True when ``s`` is written as a set: ``\{3,4\}``, ``\left\{...\right\}``, ``\lbrace..\rbrace``."""
    return bool(_SET_RE.match(s.strip().strip("$").strip()))


def _unparen(s: str) -> str:
    """``(3,4)`` -> ``3,4`` (a tuple is an ordered list); anything else unchanged."""
    s = s.strip().strip("$").strip()
    if s.startswith("(") and s.endswith(")") and len(_top_level_split(s)) == 1:
        depth = 0
        for i, ch in enumerate(s):
            depth += (ch in _OPENERS) - (ch in _CLOSERS)
            if depth == 0:
                return s[1:-1] if i == len(s) - 1 else s
    return s


def _ordered_lists(pred: str, gold: str) -> tuple[list[str], list[str]] | None:
    """Both sides as ordered element lists when either is a bare comma list (or a tuple) and the
    gold is not written as a set; else None (the other steps decide)."""
    if _is_set_notation(gold):
        return None
    p, g = _top_level_split(_unparen(pred)), _top_level_split(_unparen(gold))
    if len(p) == 1 and len(g) == 1:
        return None
    return p, g


# ---------------------------------------------------------------------------------------------
# Symbolic comparison
# ---------------------------------------------------------------------------------------------
_EXP = r"(?:\^|\*\*)\s*[{(\s]*"
_RISKY_RES = [
    re.compile(_EXP + r"[+-]?\d{4,}"),  # huge literal exponent: 10^{99999}
    re.compile(r"(?:\d|\.)\s*[eE]\s*[+-]?\s*\d{4,}"),  # huge scientific exponent: 1e9999999
    re.compile(_EXP + r"\d+(?:\.\d+)?\s*[})\s]*(?:\^|\*\*)"),  # numeric towers: 9^9^9, 10^{10^{10}}
    re.compile(r"(?:\^|\*\*)\s*[{(][^{}()]*\d\s*(?:\*|\\times|\\cdot)\s*\d"),  # 10^{999*999}
    re.compile(r"\d{4,}\s*\)?\s*!|!\s*\)*\s*!"),  # huge / iterated factorials
    re.compile(r"\\(?:binom|choose)\s*\{?\s*\d{5,}"),
]


def _symbolic_safe(s: str) -> bool:
    if len(s) > SYMBOLIC_MAX_CHARS:
        return False
    depth = max_depth = 0
    for ch in s:
        depth += ch == "{"
        depth -= ch == "}"
        max_depth = max(max_depth, depth)
    return max_depth <= SYMBOLIC_MAX_DEPTH and not any(r.search(s) for r in _RISKY_RES)


def _symbolic_in_process(pred: str, gold: str, deadline: float) -> bool:
    if _bounded(lambda: bool(_mathruler_grade(pred, gold)), deadline - time.monotonic()):
        return True
    if _has_word(pred) or _has_word(gold):
        return False
    return bool(_bounded(lambda: _math_verify_equal(pred, gold), deadline - time.monotonic()))


def _symbolic_equal(pred: str, gold: str, deadline: float) -> bool:
    if not (_symbolic_safe(pred) and _symbolic_safe(gold)):
        _STATS["refused_unsafe"] += 1
        return False
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    answer = symbolic_worker.compare(pred, gold, left)
    if answer == symbolic_worker.UNAVAILABLE:
        _STATS["in_process"] += 1
        return _symbolic_in_process(pred, gold, deadline)
    return answer is True


def grading_stats() -> dict[str, int]:
    """Counts since import: ``timeouts`` (symbolic step cut by the budget: worker killed, or
    in-process alarm/thread), ``refused_unsafe`` (answer too long/risky for sympy),
    ``in_process`` (no worker process could be started; ran in-process), ``skipped_busy``
    (in-process only: too many abandoned helper threads), ``workers_started``."""
    stats = _deadline_stats()
    stats["timeouts"] += int(symbolic_worker.STATS["timeouts"])
    stats["in_process"] = int(_STATS["in_process"])
    stats["workers_started"] = int(symbolic_worker.STATS["started"])
    return stats


def _equivalent(pred: str, gold: str, deadline: float) -> bool:
    """Steps a-e of the module docstring for one (already extracted) prediction."""
    if pred == gold:
        return True
    if len(pred) > COMPARE_MAX_CHARS or len(gold) > COMPARE_MAX_CHARS:
        return False
    if normalize_answer(pred) == normalize_answer(gold) and normalize_answer(gold):
        return True
    gold_letter = _gold_letter(gold)
    if gold_letter is not None:
        pred_letter = _pred_letter(pred)
        if pred_letter is not None:
            return pred_letter == gold_letter
    pred_num, gold_num = _as_fraction(pred), _as_fraction(gold)
    if pred_num is not None and gold_num is not None:
        return pred_num == gold_num  # two exact numbers: no symbolic check can make them equal
    lists = _ordered_lists(pred, gold)
    if lists is not None:  # step c': ordered, element by element, final
        p, g = lists
        return len(p) == len(g) and all(a and b and _equivalent(a, b, deadline) for a, b in zip(p, g))
    return _symbolic_equal(pred, gold, deadline)


def _is_answer_like(value: Any) -> bool:
    """Strings and plain numbers are answers; None, bools, bytes, containers are not."""
    return isinstance(value, (str, int, float, Fraction)) and not isinstance(value, bool)


def answers_match(pred: Any, gold: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Both passes of the grader on an already extracted answer string. Never raises."""
    try:
        if not (_is_answer_like(pred) and _is_answer_like(gold)):
            return False
        pred, gold = str(pred).strip(), str(gold).strip()
        if not pred or not gold:
            return False
        deadline = time.monotonic() + timeout_s
        if _equivalent(pred, gold, deadline):
            return True
        pred2, gold2 = strip_degree_percent(pred), strip_degree_percent(gold)
        if (pred2, gold2) == (pred, gold) or not pred2 or not gold2:
            return False
        return _equivalent(pred2, gold2, deadline)
    except Exception:  # noqa: BLE001 - never raise from a reward function
        return False


def grade(response: Any, gold: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Paper rule grader: last ``\\boxed{}`` of ``response`` vs gold a*. Never raises."""
    if not isinstance(response, str):
        return False
    pred = extract_boxed(response)
    if pred is None:
        return False
    return answers_match(pred, gold, timeout_s=timeout_s)


def reward(response: Any, gold: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> float:
    """Binary outcome reward r(x, y) in {0.0, 1.0}."""
    return 1.0 if grade(response, gold, timeout_s=timeout_s) else 0.0


# ---------------------------------------------------------------------------------------------
# Benchmark helper: multiple-choice letter with the look-inside-reasoning fallback
# ---------------------------------------------------------------------------------------------
_ANSWER_IS_RE = re.compile(
    r"(?i:answer|correct\s+(?:option|choice))(?:\s+(?i:is|would\s+be|should\s+be|must\s+be))?"
    r"\s*(?:[:：=]\s*)?(?:\*\*)?\s*(?:\(([A-Za-z])\)|([A-Z])(?![A-Za-z0-9]))"
)


def _last_answer_is(text: str) -> str | None:
    found = None
    for m in _ANSWER_IS_RE.finditer(text):
        found = (m.group(1) or m.group(2)).upper()
    return found


def extract_choice_letter(text: Any, n_options: int) -> str | None:
    """Chosen option letter (``"A"``..) of a response to an ``n_options``-way question, or None.

    Order: the last ``\\boxed{}`` (``B``, ``(B)``, ``B. text``, ``Option B``); else a lone letter
    as the final answer after ``</think>``; else the last "answer is (X)"-style phrase after
    ``</think>``; else the last one inside the reasoning. A boxed letter outside the option range
    yields None.
    """
    try:
        if not isinstance(text, str) or n_options < 1:
            return None
        valid = _LETTERS[: min(int(n_options), len(_LETTERS))]
        boxed = extract_boxed(text)
        if boxed is not None:
            letter = _pred_letter(boxed)
            if letter is not None:
                return letter if letter in valid else None
        final = strip_think(text)
        for candidate in (
            _pred_letter(final) if len(final) <= 3 else None,
            _last_answer_is(final),
            _last_answer_is(text),
        ):
            if candidate is not None and candidate in valid:
                return candidate
        return None
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------
# LLM-judge verdicts (free-form answers; the same strict rule at training and evaluation)
# ---------------------------------------------------------------------------------------------
def parse_json_object(text: Any) -> dict[str, Any] | None:
    """A judge's output as exactly one JSON object (after an optional ``</think>`` block; no
    prose, no code fences), else None. Shared by the training judge and every benchmark judge
    that answers in JSON. Non-finite numbers (``NaN``, ``Infinity``, ``1e999``) make the output
    malformed (None)."""
    if not isinstance(text, str):
        return None
    body = text.rsplit("</think>", 1)[-1].strip()
    if not (body.startswith("{") and body.endswith("}")):
        return None
    try:
        obj = json.loads(body, parse_constant=_reject_non_finite, parse_float=_finite_float)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _reject_non_finite(name: str) -> Any:
    """``NaN`` / ``Infinity`` / ``-Infinity`` are not JSON: the output is malformed."""
    raise ValueError(f"non-finite JSON number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to inf
        raise ValueError(f"non-finite JSON number {text}")
    return value


def parse_judge_verdict(text: Any) -> bool | None:
    """The shared judge's verdict: exactly one JSON object ``{"verdict": "correct"|"wrong"}``
    (see :func:`parse_json_object`; at most ``COMPARE_MAX_CHARS`` after the thinking). Returns
    True/False, or None when the output is malformed, which callers score as wrong (paper App. B.2)."""
    if not isinstance(text, str) or len(text.rsplit("</think>", 1)[-1].strip()) > COMPARE_MAX_CHARS:
        return None
    obj = parse_json_object(text)
    verdict = str(obj.get("verdict", "")).strip().lower() if obj else ""
    return {"correct": True, "wrong": False}.get(verdict)
