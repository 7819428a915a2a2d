"""The result table the pipeline prints at its end (console and the flow's log).

Per student, one row per method (Base first), one column per group of benchmarks -- the
benchmark family (``pipeline.summary_columns: family``) or each benchmark (``benchmark``): the
group's average accuracy, the number of items behind it (``n``: items scored over the group's
benchmarks and every seed), with two or more seeds the 95 % t-interval of the average over
seeds, and the difference to Base (``Δ``) with its 95 % interval:

* two or more seeds: Student t over the per-seed differences (method seed - Base);
* one seed: paired bootstrap over items (each item scored by both; items resampled within each
  benchmark, :func:`eval.stats.stratified_paired_bootstrap`), read from the records files.

Functions over the flow's ``evals`` dict (``evals[student][method][seed] = {abbr: eval
result}``); the only I/O is reading the per-item records of a one-seed Δ. No Prefect, no MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from eval.stats import Interval, stratified_paired_bootstrap, t_interval

BASE = "base"
#: bootstrap resamples and seed of a one-seed Δ interval
DELTA_RESAMPLES = 2000
DELTA_SEED = 0


@dataclass(frozen=True)
class Cell:
    """One (method, group) entry: mean over seeds, 95 % interval (None for one seed), items."""

    mean: float
    interval: tuple[float, float] | None
    n: int
    seeds: int


def _scored(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {abbr: r for abbr, r in results.items() if not r.get("skipped") and r.get("accuracy") is not None}


def _group(abbr: str, r: dict[str, Any], by: str) -> str:
    return abbr if by == "benchmark" else r["family"]


def _group_of_seed(results: dict[str, Any], by: str) -> dict[str, tuple[float, int]]:
    """``{group: (mean accuracy over scored benchmarks, items scored)}`` of one seed."""
    accs: dict[str, list[float]] = {}
    items: dict[str, int] = {}
    for abbr, r in _scored(results).items():
        g = _group(abbr, r, by)
        accs.setdefault(g, []).append(float(r["accuracy"]))
        items[g] = items.get(g, 0) + int(r.get("n") or 0)
    return {g: (sum(v) / len(v), items[g]) for g, v in accs.items()}


def cells(per_seed: dict[str, dict[str, Any]], by: str = "family") -> dict[str, Cell]:
    """``{seed: {abbr: result}}`` -> ``{group: Cell}``."""
    by_group: dict[str, list[tuple[float, int]]] = {}
    for results in per_seed.values():
        for g, val in _group_of_seed(results, by).items():
            by_group.setdefault(g, []).append(val)
    out = {}
    for g, vals in by_group.items():
        accs = [a for a, _ in vals]
        iv = t_interval(accs) if len(accs) > 1 else None
        out[g] = Cell(sum(accs) / len(accs), (iv.lo, iv.hi) if iv else None, sum(n for _, n in vals), len(vals))
    return out


def _item_scores(r: dict[str, Any]) -> dict[str, float]:
    import pyarrow.parquet as pq

    t = pq.read_table(r["records"], columns=["item_id", "score"]).to_pydict()
    return {str(i): float(s) for i, s in zip(t["item_id"], t["score"])}


def delta_interval(method: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]], group: str,
                   by: str = "family") -> Interval | None:
    """Δ = method - Base on ``group`` (accuracy points) with its 95 % interval, or None when
    it cannot be computed (no Base; one seed and a benchmark of the group without paired records
    or common items)."""
    base_res = next(iter(base.values()), {})
    base_group = _group_of_seed(base_res, by).get(group)
    if not base_group:
        return None
    per_seed = [(res, _group_of_seed(res, by)) for res in method.values()]
    scored = [(res, g[group][0]) for res, g in per_seed if group in g]
    if len(scored) > 1:
        return t_interval([acc - base_group[0] for _, acc in scored])
    if not scored:
        return None
    base_scored = _scored(base_res)
    strata = []
    for abbr, r in _scored(scored[0][0]).items():
        if _group(abbr, r, by) != group:
            continue
        b = base_scored.get(abbr)
        if b is None or not r.get("records") or not b.get("records"):
            return None  # an interval over part of the group would not be the cell's Δ
        ms, bs = _item_scores(r), _item_scores(b)
        common = sorted(set(ms) & set(bs))
        if not common:
            return None
        strata.append([100.0 * (ms[i] - bs[i]) for i in common])
    return stratified_paired_bootstrap(strata, n_boot=DELTA_RESAMPLES, seed=DELTA_SEED)


def _fmt(c: Cell | None) -> str:
    if c is None:
        return "skip"
    iv = f" [{c.interval[0]:.1f}, {c.interval[1]:.1f}]" if c.interval else ""
    return f"{c.mean:.1f}{iv} (n={c.n})"


@dataclass(frozen=True)
class Delta:
    """Δ vs Base of one cell (accuracy points) with its 95 % interval (``lo``/``hi`` None when
    it cannot be computed) and how the interval was made."""

    mean: float
    lo: float | None
    hi: float | None
    how: str


@dataclass(frozen=True)
class Row:
    """One method of a student's table: its cells and Δ vs Base per group (Base has no Δ)."""

    method: str
    label: str
    seeds: int
    cells: dict[str, Cell]
    deltas: dict[str, Delta]


def student_rows(by_method: dict[str, dict[str, dict[str, Any]]], by: str = "family") -> tuple[list[str], list[Row]]:
    """``(groups, rows)`` of one student: Base first, then the methods in sweep order."""
    from zppo_core.config import METHOD_LABELS

    table = {m: cells(per_seed, by) for m, per_seed in by_method.items()}
    groups = sorted({g for c in table.values() for g in c})
    base = table.get(BASE, {})
    rows = []
    for m in sorted(table, key=lambda x: (x != BASE, list(by_method).index(x))):
        c = table[m]
        deltas = {}
        for g in groups if base and m != BASE else ():
            if g in c and g in base:
                d = delta_interval(by_method[m], by_method[BASE], g, by)
                plain = c[g].mean - base[g].mean
                deltas[g] = Delta(d.mean, d.lo, d.hi, d.method) if d is not None else Delta(plain, None, None, "none")
        rows.append(Row(m, "Base" if m == BASE else METHOD_LABELS.get(m, m),
                        max((x.seeds for x in c.values()), default=0), c, deltas))
    return groups, rows


def _fmt_d(d: Delta | None) -> str:
    if d is None:
        return ""
    return f"{d.mean:+.1f}" if d.lo is None or d.hi is None else f"{d.mean:+.1f} [{d.lo:+.1f}, {d.hi:+.1f}]"


def _cells_of(groups: list[str], rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    has_base = any(r.method == BASE for r in rows)
    header = ["method", "seeds", *groups, *([f"Δ {g}" for g in groups] if has_base else [])]
    body = [[r.label, "-" if r.method == BASE else str(r.seeds), *(_fmt(r.cells.get(g)) for g in groups),
             *([_fmt_d(r.deltas.get(g)) for g in groups] if has_base else [])] for r in rows]
    return header, body


def student_table(by_method: dict[str, dict[str, dict[str, Any]]], by: str = "family") -> str:
    """Plain-text table of one student (see the module docstring)."""
    header, rows = _cells_of(*student_rows(by_method, by))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def student_markdown(by_method: dict[str, dict[str, dict[str, Any]]], by: str = "family") -> str:
    """The same table as GitHub Markdown."""
    header, rows = _cells_of(*student_rows(by_method, by))
    line = lambda r: "| " + " | ".join(v or " " for v in r) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


LEGEND = ("average accuracy % per {by}, n = items scored, [95% interval over seeds]; Δ = vs Base "
          "[95% interval: over seeds, or paired bootstrap over items with one seed]")


def summary_text(result: dict[str, Any], by: str = "family") -> str:
    """Every student's table, titled; accuracy in percent."""
    parts = []
    for student, by_method in result.get("evals", {}).items():
        parts.append(f"{student}  ({LEGEND.format(by=by)})\n{student_table(by_method, by)}")
    return "\n\n".join(parts)


def summary_markdown(evals: dict[str, Any], plots: list[str] = ()) -> str:
    """``summary.md``: per student the per-family and the per-benchmark table (n, Δ vs Base and
    its interval), then the figures (``plots``: file names beside it)."""
    parts = ["# ZPPO pipeline summary"]
    for student, by_method in evals.items():
        parts.append(f"## {student}")
        for by in ("family", "benchmark"):
            parts.append(f"### Per {by}\n\n{LEGEND.format(by=by)}.\n\n{student_markdown(by_method, by)}")
    if plots:
        parts.append("## Figures\n\n" + "\n".join(f"![{p}]({p})" for p in plots))
    return "\n\n".join(parts) + "\n"


def summary_json(evals: dict[str, Any]) -> dict[str, Any]:
    """``summary.json``: ``{student: {by: {method: {group: {mean, interval, n, seeds, delta}}}}}``."""
    out: dict[str, Any] = {}
    for student, by_method in evals.items():
        out[student] = {}
        for by in ("family", "benchmark"):
            _groups, rows = student_rows(by_method, by)
            out[student][by] = {r.method: {g: {"mean": c.mean, "interval": list(c.interval) if c.interval else None,
                                               "n": c.n, "seeds": c.seeds,
                                               "delta": asdict(r.deltas[g]) if g in r.deltas else None}
                                           for g, c in r.cells.items()} for r in rows}
    return out


__all__ = ["Cell", "Delta", "Row", "cells", "delta_interval", "student_markdown", "student_rows", "student_table",
           "summary_json", "summary_markdown", "summary_text"]
