r"""Steps d-e of the rule grader (:mod:`zppo_core.grading`): the symbolic equivalence of two
answers by ``mathruler`` (the paper's library), then math-verify, unbounded.

Pure module. The grader runs :func:`symbolic_steps` inside a worker process
(:mod:`zppo_core.symbolic_worker`) under its time budget; both import it from here, so neither
imports the other.
"""

from __future__ import annotations

import re

from math_verify import parse as _mv_parse
from math_verify import verify as _mv_verify
from mathruler.grader import grade_answer as mathruler_grade

#: ``\text{...}``-like wrappers whose content is plain text
TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mbox)\s*\{([^{}]*)\}")
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def has_word(s: str) -> bool:
    """True when ``s`` holds a plain word (not a LaTeX command), e.g. ``cat`` or ``\\text{blue}``."""
    return bool(_WORD_RE.search(TEXT_WRAP_RE.sub(r" \1 ", s)))


def math_verify_equal(pred: str, gold: str) -> bool:
    """math-verify's ``verify(parse(gold), parse(pred))``, each side parsed as ``$x$`` first."""
    gold_parsed = _mv_parse(f"${gold}$", parsing_timeout=None) or _mv_parse(gold, parsing_timeout=None)
    pred_parsed = _mv_parse(f"${pred}$", parsing_timeout=None) or _mv_parse(pred, parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(_mv_verify(gold_parsed, pred_parsed, timeout_seconds=None))


def symbolic_steps(pred: str, gold: str) -> bool:
    """Steps d-e, unbounded: mathruler, then math-verify (skipped for word answers such as
    ``cat``, which sympy would read as the product c*a*t)."""
    if mathruler_grade(pred, gold):
        return True
    if has_word(pred) or has_word(gold):
        return False
    return math_verify_equal(pred, gold)


__all__ = ["TEXT_WRAP_RE", "has_word", "math_verify_equal", "mathruler_grade", "symbolic_steps"]
