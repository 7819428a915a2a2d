"""Family tables in the paper's column order, with the paper's numbers beside ours.

``results_by_method``: ``{method: {abbr: result dict (from runner.evaluate) or accuracy}}``.
Family averages are over the benchmarks that produced a number; a skipped benchmark shows
"skip" and the average is marked with the count it covers (e.g. "61.2 (4/5)").
"""

from __future__ import annotations

from typing import Any

from eval.paper_results import PAPER_RESULTS
from eval.registry import FAMILIES, by_family
from zppo_core.config import METHOD_LABELS


def _acc(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, dict):
        return None if v.get("skipped") or v.get("accuracy") is None else float(v["accuracy"])
    return float(v)


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def paper_order(methods) -> list[str]:
    """``methods`` in the paper's row order (``METHOD_LABELS``: Base, Off-/On-Distill(†), GRPO rows,
    GRPO†+Hint/+Prefix, GRPO†+BCQ/NCQ, ZPPO); names the paper does not have keep their order, last."""
    rank = {m: i for i, m in enumerate(METHOD_LABELS)}
    listed = list(methods)
    return sorted(listed, key=lambda m: (rank.get(m, len(rank)), listed.index(m)))


def _fmt(x: float | None) -> str:
    return "skip" if x is None else f"{x:.1f}"


def family_rows(results_by_method: dict[str, dict[str, Any]], family: str, *, paper_size: str | None = None,
                offline: bool = False) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of one family: per method "ours" then, when ``paper_size`` is given and
    the paper has that row, "paper <size>"."""
    benches = by_family(family, offline=offline)
    present = [b for b in benches if any(b.abbr in r for r in results_by_method.values())] if offline else benches
    header = ["Method", *[b.abbr for b in present], f"{family} Avg"]
    rows: list[list[str]] = []
    for method in paper_order(results_by_method):
        res = results_by_method[method]
        accs = [_acc(res.get(b.abbr)) for b in present]
        got = [a for a in accs if a is not None]
        avg = sum(got) / len(got) if got else None
        tag = "" if len(got) == len(present) or avg is None else f" ({len(got)}/{len(present)})"
        rows.append([_label(method), *[_fmt(a) for a in accs], _fmt(avg) + tag])
        paper = PAPER_RESULTS.get(paper_size or "", {}).get(method)
        if paper and not offline:
            vals = [paper.get(b.abbr) for b in present]
            pv = [v for v in vals if v is not None]
            rows.append([f"{_label(method)} (paper {paper_size})", *[_fmt(v) for v in vals],
                         _fmt(sum(pv) / len(pv) if pv else None)])
    return header, rows


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def family_table(results_by_method: dict[str, dict[str, Any]], *, paper_size: str | None = None,
                 families: tuple[str, ...] = FAMILIES, offline: bool = False) -> str:
    """Markdown: one table per family (VLM, LLM, Video), paper column order.

    ``paper_size``: "0.8B" | "2B" | "4B" | "9B" puts the paper's row of the same method under
    each of ours; ``offline=True`` tabulates the offline families instead (no paper numbers).
    """
    parts = []
    for fam in families:
        header, rows = family_rows(results_by_method, fam, paper_size=paper_size, offline=offline)
        if len(header) > 2:
            parts.append(f"### {fam}\n\n{to_markdown(header, rows)}")
    return "\n\n".join(parts)


def family_averages(results: dict[str, Any], *, offline: bool = False) -> dict[str, float | None]:
    """{family: mean accuracy over its benchmarks that produced a number} for one method."""
    out: dict[str, float | None] = {}
    for fam in FAMILIES:
        accs = [a for b in by_family(fam, offline=offline) if (a := _acc(results.get(b.abbr))) is not None]
        out[fam] = sum(accs) / len(accs) if accs else None
    return out
