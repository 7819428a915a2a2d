"""The result table the pipeline prints at its end (console and the flow's log).

Per student, one row per method (Base first), one column per benchmark family: the family
average accuracy, the number of items behind it (``n``: items scored over the family's
benchmarks and every seed), the difference to Base (``Δ``), and with two or more seeds the
95 % t-interval of the family average over seeds. Pure functions over the flow's ``evals``
dict (``evals[student][method][seed] = {abbr: eval result}``); no Prefect, no MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

BASE = "base"
#: two-sided 95 % Student-t quantiles by degrees of freedom (1..10); 1.96 beyond
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


@dataclass(frozen=True)
class Cell:
    """One (method, family) entry: mean over seeds, 95 % interval (None for one seed), items."""

    mean: float
    interval: tuple[float, float] | None
    n: int
    seeds: int


def t_interval(values: list[float]) -> tuple[float, float] | None:
    """95 % t-interval of the mean of ``values`` (None for fewer than two)."""
    k = len(values)
    if k < 2:
        return None
    mean = sum(values) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    half = _T95.get(k - 1, 1.96) * sd / math.sqrt(k)
    return mean - half, mean + half


def _family_of_seed(results: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """``{family: (mean accuracy over scored benchmarks, items scored)}`` of one seed."""
    accs: dict[str, list[float]] = {}
    items: dict[str, int] = {}
    for r in results.values():
        if r.get("skipped") or r.get("accuracy") is None:
            continue
        accs.setdefault(r["family"], []).append(float(r["accuracy"]))
        items[r["family"]] = items.get(r["family"], 0) + int(r.get("n") or 0)
    return {f: (sum(v) / len(v), items[f]) for f, v in accs.items()}


def cells(per_seed: dict[str, dict[str, Any]]) -> dict[str, Cell]:
    """``{seed: {abbr: result}}`` -> ``{family: Cell}``."""
    by_family: dict[str, list[tuple[float, int]]] = {}
    for results in per_seed.values():
        for fam, val in _family_of_seed(results).items():
            by_family.setdefault(fam, []).append(val)
    out = {}
    for fam, vals in by_family.items():
        accs = [a for a, _ in vals]
        out[fam] = Cell(sum(accs) / len(accs), t_interval(accs), sum(n for _, n in vals), len(vals))
    return out


def _fmt(c: Cell | None) -> str:
    if c is None:
        return "skip"
    iv = f" [{c.interval[0]:.1f}, {c.interval[1]:.1f}]" if c.interval else ""
    return f"{c.mean:.1f}{iv} (n={c.n})"


def student_table(by_method: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Plain-text table of one student (see the module docstring)."""
    from zppo_core.config import METHOD_LABELS

    table = {m: cells(per_seed) for m, per_seed in by_method.items()}
    families = sorted({f for c in table.values() for f in c})
    base = table.get(BASE, {})
    header = ["method", "seeds", *families, *([f"Δ {f}" for f in families] if base else [])]
    rows = []
    for m in sorted(table, key=lambda x: (x != BASE, list(by_method).index(x))):
        c = table[m]
        seeds = max((x.seeds for x in c.values()), default=0)
        row = ["Base" if m == BASE else METHOD_LABELS.get(m, m), "-" if m == BASE else str(seeds)]
        row += [_fmt(c.get(f)) for f in families]
        if base:
            row += ["" if m == BASE or f not in c or f not in base else f"{c[f].mean - base[f].mean:+.1f}"
                    for f in families]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def summary_text(result: dict[str, Any]) -> str:
    """Every student's table, titled; accuracy in percent."""
    parts = []
    for student, by_method in result.get("evals", {}).items():
        parts.append(f"{student}  (family average accuracy %, n = items scored, [95% interval over seeds], "
                     f"Δ = vs Base)\n{student_table(by_method)}")
    return "\n\n".join(parts)


__all__ = ["Cell", "cells", "student_table", "summary_text", "t_interval"]
