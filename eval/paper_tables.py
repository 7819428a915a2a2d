"""The paper's result tables from our numbers, with the paper's beside them (Markdown + HTML).

Layouts (arXiv 2606.18216):

* **Tab. 1 / Tab. 10** -- the 16 VLM benchmarks (0.8B/2B in Tab. 1, 4B/9B in Tab. 10);
* **Tab. 2 / Tab. 11** -- the 10 LLM + 5 Video benchmarks;
* **Tab. 4** -- family averages (LLM / VLM / Video) of Base, GRPO†, +Hint, +Prefix, +BCQ, ZPPO;
* **Tab. 14** -- benchmark-resampling bootstrap of the macro difference of a pair of methods
  (:mod:`eval.bootstrap`), with the same bootstrap run on the paper's per-benchmark numbers.

Cells read ``ours (paper)`` where the paper has a number for that student size, method and
benchmark; family averages are over the benchmarks we evaluated (``(k/n)`` marks a partial
average) and ``Δ Base`` is the family average minus the Base row's. A student whose results are
all offline benchmarks gets the same layout over the offline families, without paper numbers.

Pure module: plain data in, strings out (no MLflow, no Prefect).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from eval.bootstrap import PAPER_RESAMPLES, BootstrapResult, bootstrap_diff
from eval.paper_results import PAPER_RESULTS, PAPER_TAB4, SIZES
from eval.registry import FAMILIES, by_family, get
from zppo_core.config import METHOD_LABELS

BASE = "base"
#: Tab. 4's rows, in the paper's order
TAB4_METHODS = ("base", "grpo_replay", "grpo_replay_hint", "grpo_replay_prefix", "grpo_replay_bcq", "zppo")
#: method order of the paper's tables (others follow in the order they come)
ROW_ORDER = ("base", "off_distill", "off_distill_replay", "on_distill", "on_distill_replay", "grpo", "grpo_replay",
             "grpo_both", "grpo_replay_hint", "grpo_replay_prefix", "grpo_replay_bcq", "grpo_replay_ncq", "zppo")

Accs = dict[str, float | None]  # {benchmark abbr: accuracy in %}


@dataclass
class StudentResults:
    """One student's accuracies: ``methods[method][abbr]`` (seeds already averaged)."""

    student: str
    methods: dict[str, Accs]
    seeds: dict[str, int] = field(default_factory=dict)  # method -> number of seeds averaged

    @property
    def paper_size(self) -> str | None:
        return paper_size_of(self.student)

    @property
    def offline(self) -> bool:
        abbrs = {a for r in self.methods.values() for a in r}
        return bool(abbrs) and all(get(a).offline for a in abbrs)


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class PaperReport:
    markdown: str
    html: str
    tables: list[Table]
    bootstrap: list[dict[str, Any]]  # one dict per (student, pair, family), JSON-ready


def paper_size_of(student: str) -> str | None:
    """The paper's student size a spec names (``Qwen/Qwen3.5-2B`` -> ``2B``), else None."""
    m = re.search(r"(\d+(?:\.\d+)?)B\b", student)
    return f"{m.group(1)}B" if m and f"{m.group(1)}B" in SIZES else None


def label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def ordered(methods: list[str]) -> list[str]:
    known = [m for m in ROW_ORDER if m in methods]
    return known + [m for m in methods if m not in known]


def mean(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def _f(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.1f}" if signed else f"{x:.1f}"


def _cell(ours: float | None, paper: float | None, signed: bool = False) -> str:
    return _f(ours, signed) if paper is None else f"{_f(ours, signed)} ({_f(paper, signed)})"


def family_benchmarks(family: str, offline: bool) -> list[str]:
    return [b.abbr for b in by_family(family, offline=offline)]


def paper_family_avg(size: str | None, method: str, family: str) -> float | None:
    """The paper's family average: Tab. 4's number if it has one, else the mean of the paper's
    per-benchmark numbers when it reports every benchmark of the family."""
    if size is None:
        return None
    tab4 = PAPER_TAB4.get(size, {}).get(method, {}).get(family)
    if tab4 is not None:
        return tab4
    row = PAPER_RESULTS.get(size, {}).get(method, {})
    vals = [row.get(a) for a in family_benchmarks(family, False)]
    return None if not vals or any(v is None for v in vals) else sum(vals) / len(vals)


def _our_avg(accs: Accs, benches: list[str]) -> tuple[float | None, str]:
    vals = [accs.get(a) for a in benches]
    got = [v for v in vals if v is not None]
    avg = mean(vals)
    tag = "" if len(got) == len(benches) or avg is None else f" ({len(got)}/{len(benches)})"
    return avg, tag


def _measured(sr: StudentResults, benches: list[str]) -> list[str]:
    """The benchmarks of ``benches`` with a number in the table: ours for some method, or the
    paper's for the student's size (the paper's layout, its number beside our "–")."""
    size = None if sr.offline else sr.paper_size
    paper = PAPER_RESULTS.get(size or "", {})
    return [a for a in benches if any(accs.get(a) is not None for accs in sr.methods.values())
            or any(paper.get(m, {}).get(a) is not None for m in sr.methods)]


def benchmark_table(sr: StudentResults, families: tuple[str, ...], title: str) -> Table:
    """Per-benchmark table (Tab. 1/10 or 2/11 layout) of one student over ``families``; a
    benchmark, or a whole family, with no number (ours or the paper's) gets no column; the
    family average says how many of its benchmarks it covers: ``(k/N)``."""
    size, offline = (None if sr.offline else sr.paper_size), sr.offline
    header, cols = ["Method"], []
    for fam in families:
        benches = family_benchmarks(fam, offline)
        shown = _measured(sr, benches)
        if not shown:
            continue
        header += [*shown, f"{fam} Avg", f"{fam} Δ Base"]
        cols.append((fam, benches, shown))
    base = sr.methods.get(BASE)
    rows = []
    for m in ordered(list(sr.methods)):
        accs, paper = sr.methods[m], PAPER_RESULTS.get(size or "", {}).get(m, {})
        row = [label(m) + (f" ×{sr.seeds[m]} seeds" if sr.seeds.get(m, 1) > 1 else "")]
        for fam, benches, shown in cols:
            row += [_cell(accs.get(a), paper.get(a)) for a in shown]
            avg, tag = _our_avg(accs, benches)
            p_avg = paper_family_avg(size, m, fam)
            row.append(_cell(avg, p_avg) + tag)
            b_avg = _our_avg(base, benches)[0] if base is not None else None
            p_base = paper_family_avg(size, BASE, fam)
            d = None if avg is None or b_avg is None else avg - b_avg
            pd = None if p_avg is None or p_base is None else p_avg - p_base
            row.append("" if m == BASE else _cell(d, pd, signed=True))
        rows.append(row)
    note = ("cells: ours (paper, same student size)" if size else
            "no paper numbers: " + ("offline benchmarks" if offline else "the student is not one of the paper's sizes"))
    return Table(title, header, rows, note)


def tab_number(size: str | None, family_layout: str) -> str:
    small = size in ("0.8B", "2B")
    if family_layout == "VLM":
        return "Tab. 1" if small else "Tab. 10" if size else "Tab. 1/10 layout"
    return "Tab. 2" if small else "Tab. 11" if size else "Tab. 2/11 layout"


def family_average_table(students: list[StudentResults]) -> Table:
    """Tab. 4 layout: family averages per student size of the Tab. 4 methods we have."""
    header, rows = ["Method"], []
    # (student, family) columns some method has a number for: no empty column
    cols = [(sr, fam) for sr in students for fam in ("LLM", "VLM", "Video")
            if _measured(sr, family_benchmarks(fam, sr.offline))]
    header += [f"{sr.student} {fam}" for sr, fam in cols]
    present = [m for m in TAB4_METHODS if any(m in sr.methods for sr in students)]
    for m in present:
        row = [label(m)]
        for sr, fam in cols:
            size = None if sr.offline else sr.paper_size
            ours = _our_avg(sr.methods[m], family_benchmarks(fam, sr.offline))[0] if m in sr.methods else None
            row.append(_cell(ours, paper_family_avg(size, m, fam)))
        rows.append(row)
    return Table("Family averages (Tab. 4 layout: Hint / Prefix vs BCQ)", header, rows,
                 "cells: ours (paper); the paper reports Tab. 4 for 0.8B and 2B, other sizes use its per-benchmark averages")


def default_pairs(methods: list[str]) -> list[tuple[str, str]]:
    """ZPPO against every other method present; without ZPPO, every method against Base."""
    ms = ordered(methods)
    if "zppo" in ms:
        return [("zppo", m) for m in ms if m != "zppo"]
    return [(m, BASE) for m in ms if m != BASE] if BASE in ms else []


def _boot(a: Accs, b: Accs, order: list[str], resamples: int, seed: int) -> BootstrapResult | None:
    try:
        return bootstrap_diff(a, b, resamples=resamples, seed=seed, order=order)
    except ValueError:
        return None


def bootstrap_rows(sr: StudentResults, pairs: list[tuple[str, str]], resamples: int, seed: int) -> list[dict[str, Any]]:
    """One record per (pair, family, and "All" over the families) with ours and the paper's."""
    size = None if sr.offline else sr.paper_size
    out = []
    groups = [(fam, family_benchmarks(fam, sr.offline)) for fam in FAMILIES]
    groups.append(("All", [a for _, bs in groups for a in bs]))
    for a, b in pairs:
        if a not in sr.methods or b not in sr.methods:
            continue
        pa, pb = PAPER_RESULTS.get(size or "", {}).get(a), PAPER_RESULTS.get(size or "", {}).get(b)
        for fam, benches in groups:
            ours = _boot(sr.methods[a], sr.methods[b], benches, resamples, seed)
            if ours is None:
                continue
            paper = _boot(pa, pb, benches, resamples, seed) if pa and pb else None
            out.append({"student": sr.student, "a": a, "b": b, "family": fam, "ours": ours, "paper": paper,
                        "family_size": len(benches)})
    return out


#: fewer paired benchmarks than this and a benchmark-resampling interval says little (a handful
#: of values resampled): such rows are marked, never shown as if they were Tab. 14's
MIN_BOOTSTRAP_BENCHMARKS = 5


def _thin(r: dict[str, Any]) -> str:
    n, full = r["ours"].n, r.get("family_size", r["ours"].n)
    if n >= MIN_BOOTSTRAP_BENCHMARKS and n == full:
        return ""
    return f" ⚠ {n}/{full} benchmarks" + (" (too few for an interval)" if n < MIN_BOOTSTRAP_BENCHMARKS else "")


def bootstrap_table(records: list[dict[str, Any]], resamples: int) -> Table:
    rows = [[r["student"], f"{label(r['a'])} − {label(r['b'])}", r["family"], r["ours"].format() + _thin(r),
             r["paper"].format() if r["paper"] else "–"] for r in records]
    thin = any(_thin(r) for r in records)
    note = ("paper column: the same bootstrap on the paper's per-benchmark numbers of that student size (its whole "
            "family, as in Tab. 14)")
    if thin:
        note += (f"; ⚠ k/N: ours resamples only the k benchmarks evaluated of the family's N (Tab. 14 resamples "
                 f"all N); under {MIN_BOOTSTRAP_BENCHMARKS} the interval is not meaningful")
    return Table(
        f"Benchmark-resampling bootstrap (Tab. 14 layout; {resamples:,} resamples, 95 % percentile CI, wins/n)",
        ["Student", "Pair (A − B)", "Family", "ours Δ [CI] (wins)", "paper Δ [CI] (wins)"], rows, note)


def to_markdown(t: Table) -> str:
    lines = [f"### {t.title}", "", "| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(r) + " |" for r in t.rows]
    if t.note:
        lines += ["", f"_{t.note}_"]
    return "\n".join(lines)


_CSS = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:.5em}"
        "th,td{border:1px solid #bbb;padding:2px 6px;font-size:12px;text-align:right;white-space:nowrap}"
        "td:first-child,th:first-child{text-align:left}th{background:#eee}.note{color:#555;font-size:12px}")


def to_html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return f"<h3>{html.escape(t.title)}</h3><table><tr>{head}</tr>{body}</table>{note}"


def html_page(title: str, body: str) -> str:
    """A self-contained page (inline CSS, no external resource: opens offline)."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def build_report(students: list[StudentResults], *, pairs: list[tuple[str, str]] | None = None,
                 resamples: int = PAPER_RESAMPLES, seed: int = 0, title: str = "ZPPO results") -> PaperReport:
    """All tables for ``students``; ``pairs`` = (A, B) method pairs to bootstrap (default:
    :func:`default_pairs` per student)."""
    tables: list[Table] = []
    boot: list[dict[str, Any]] = []
    for sr in students:
        size = None if sr.offline else sr.paper_size
        for fams, layout in ((("VLM",), "VLM"), (("LLM", "Video"), "LLM")):
            if any(family_benchmarks(f, sr.offline) for f in fams) and any(
                    r.get(a) is not None for r in sr.methods.values() for f in fams for a in family_benchmarks(f, sr.offline)):
                tables.append(benchmark_table(sr, fams, f"{sr.student}: {' + '.join(fams)} ({tab_number(size, layout)})"))
        boot += bootstrap_rows(sr, pairs if pairs is not None else default_pairs(list(sr.methods)), resamples, seed)
    if students:
        tables.append(family_average_table(students))
    if boot:
        tables.append(bootstrap_table(boot, resamples))
    md = f"# {title}\n\n" + "\n\n".join(to_markdown(t) for t in tables) + "\n"
    page = html_page(title, "".join(to_html_table(t) for t in tables))
    records = [{**r, "ours": _boot_json(r["ours"]), "paper": _boot_json(r["paper"])} for r in boot]
    return PaperReport(md, page, tables, records)


def _boot_json(b: BootstrapResult | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return {"delta": b.delta, "low": b.low, "high": b.high, "wins": b.wins, "ties": b.ties, "n": b.n,
            "resamples": b.resamples, "ci": b.ci, "seed": b.seed, "benchmarks": list(b.benchmarks)}


__all__ = [
    "PaperReport", "StudentResults", "Table", "benchmark_table", "bootstrap_rows", "build_report", "default_pairs",
    "family_average_table", "html_page", "paper_family_avg", "paper_size_of", "to_html_table", "to_markdown",
]
