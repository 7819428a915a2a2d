"""The benchmark registry: 31 paper benchmarks + 3 offline families, one declarative entry each.

An entry says where the data lives (HF id, configs, split, revision), how a row maps to an
:class:`~eval.items.EvalItem` (a :class:`~eval.fields.FieldMap` or an adapter), how it is
scored (``scorer``, ``judge``, ``aggregate``) and how the paper scored it (``scoring``).
Adding a benchmark = one :func:`register` call (plus a scorer function if none fits).
Paper numbers come from :mod:`eval.paper_results`.

Revisions: the paper pins none and the hub commits could not be resolved offline, so every
entry reads the default branch (``revision="main"``) unless overridden; the resolved dataset
fingerprint is written into each result so runs stay comparable.
"""

from __future__ import annotations

from typing import Any, Callable

from eval import miniature, offline, suite
from eval.benchmark import FAMILIES, SCORING_KINDS, Benchmark, build
from eval.fields import FieldMap

REGISTRY: dict[str, Benchmark] = {}


def register(b: Benchmark) -> Benchmark:
    """Add an entry; the abbreviation must be new."""
    if b.abbr in REGISTRY:
        raise ValueError(f"benchmark {b.abbr!r} registered twice")
    REGISTRY[b.abbr] = b
    return b


def entry(abbr: str, name: str, family: str, hf_id: str, split: str, scoring: str,
          fields: FieldMap | None = None, adapter: Callable[..., list[Any]] | None = None,
          **kw: Any) -> Benchmark:
    """Build (:func:`eval.benchmark.build`) and register one entry: a benchmark of your own."""
    return register(build(abbr, name, family, hf_id, split, scoring, fields, adapter, **kw))


def get(abbr: str) -> Benchmark:
    """Look up by abbreviation (case-insensitive); the error lists what exists."""
    if abbr in REGISTRY:
        return REGISTRY[abbr]
    low = {k.lower(): v for k, v in REGISTRY.items()}
    if abbr.lower() in low:
        return low[abbr.lower()]
    raise KeyError(f"unknown benchmark {abbr!r}; known: {', '.join(REGISTRY)}")


def by_family(family: str, *, offline: bool = False) -> list[Benchmark]:
    """Entries of one family in registration (= paper column) order."""
    return [b for b in REGISTRY.values() if b.family == family and b.offline == offline]


def select(names: list[str] | str) -> list[Benchmark]:
    """Resolve a selection: names, family names ("VLM"), "all" (the 31), "offline" (the tiny
    profile's generated families) or "miniature" (the miniature world's test splits)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: list[Benchmark] = []
    for n in names:
        if n.lower() == "all":
            out += [b for b in REGISTRY.values() if not b.offline]
        elif n.lower() == "offline":
            out += [b for b in REGISTRY.values() if b.offline and not b.extra.get("world")]
        elif n.lower() == "miniature":
            out += [b for b in REGISTRY.values() if b.extra.get("world") == "miniature"]
        elif n in FAMILIES:
            out += by_family(n)
        else:
            out.append(get(n))
    seen: set[str] = set()
    return [b for b in out if not (b.abbr in seen or seen.add(b.abbr))]


def listing() -> str:
    """Human-readable table of the registry (``zppo eval --list``)."""
    head = f"{'abbr':<9} {'family':<6} {'scoring':<11} {'judge':<15} {'paper 2B':>8}  source"
    rows = [head, "-" * len(head)]
    for b in REGISTRY.values():
        p = b.paper("2B")
        cfg = "" if b.configs == (None,) else f" [{len(b.configs)} configs]"
        src = f"{b.hf_id}:{b.split}{cfg}" if b.hf_id else "generated offline"
        rows.append(f"{b.abbr:<9} {b.family:<6} {b.scoring:<11} {str(b.judge):<15} "
                    f"{'' if p is None else f'{p:.1f}':>8}  {src}")
    return "\n".join(rows)


# The 31 paper benchmarks (eval.suite, long and pure data), then the generated offline families
# and the miniature world's test splits, in this order.
for _catalog in (suite.CATALOG, offline.CATALOG, miniature.CATALOG):
    for _b in _catalog.benchmarks:
        register(_b)

__all__ = ["FAMILIES", "REGISTRY", "SCORING_KINDS", "Benchmark", "by_family", "entry", "get", "listing", "register",
           "select"]
