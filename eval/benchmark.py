"""One benchmark entry (:class:`Benchmark`) and the declarative way to write it.

The modules that declare benchmarks (:mod:`eval.suite`, :mod:`eval.offline`,
:mod:`eval.miniature`) each fill a :class:`Catalog` with ``entry(...)`` calls; the registry
(:mod:`eval.registry`) imports them and registers their entries, so none of them imports the
registry back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from eval import adapters as ad
from eval.fields import FieldMap
from eval.paper_results import PAPER_RESULTS

#: families in the paper's table order
FAMILIES: tuple[str, ...] = ("VLM", "LLM", "Video")
#: the paper's scoring legend (App. B.2)
SCORING_KINDS: tuple[str, ...] = ("Exact+Judge", "Rule+Judge", "Det.", "BenchJudge")


@dataclass(frozen=True)
class Benchmark:
    """One registry entry. ``family`` is VLM | LLM | Video; ``offline`` marks generated
    families of the embedded default (their ``hf_id`` is empty and ``generator`` builds the
    data files). ``judge``: None (rule only), "shared" (fallback on unresolved rows) or the
    name of a benchmark-specific judge (always called)."""

    abbr: str
    name: str
    family: str
    hf_id: str
    split: str
    adapter: Callable[..., list[Any]]
    scoring: str
    configs: tuple[str | None, ...] = (None,)
    revision: str = "main"
    scorer: str = "auto"
    judge: str | None = "shared"
    aggregate: str = "mean"
    modality: str = "image"  # image | text | video
    gated: bool = False
    offline: bool = False
    generator: Callable[..., Any] | None = None
    notes: str = ""
    fields: FieldMap | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def paper(self, size: str, method: str = "base") -> float | None:
        """The paper's number for this benchmark (None for offline families / missing rows)."""
        return PAPER_RESULTS.get(size, {}).get(method, {}).get(self.abbr)


def build(abbr: str, name: str, family: str, hf_id: str, split: str, scoring: str,
          fields: FieldMap | None = None, adapter: Callable[..., list[Any]] | None = None,
          **kw: Any) -> Benchmark:
    """A :class:`Benchmark` from either a declarative ``fields`` map or an ``adapter``, its family
    and scoring kind checked."""
    if (fields is None) == (adapter is None):
        raise ValueError(f"{abbr}: give exactly one of fields= or adapter=")
    if family not in FAMILIES:
        raise ValueError(f"{abbr}: family {family!r} not in {FAMILIES}")
    if scoring not in SCORING_KINDS:
        raise ValueError(f"{abbr}: scoring {scoring!r} not in {SCORING_KINDS}")
    fn = adapter if adapter is not None else ad.declarative(fields)  # type: ignore[arg-type]
    return Benchmark(abbr, name, family, hf_id, split, fn, scoring, fields=fields, **kw)


class Catalog:
    """The entries one module declares, in declaration (= paper column) order."""

    def __init__(self) -> None:
        self.benchmarks: list[Benchmark] = []

    def entry(self, *args: Any, **kw: Any) -> Benchmark:
        """Declare one entry (the arguments of :func:`build`)."""
        b = build(*args, **kw)
        self.benchmarks.append(b)
        return b


__all__ = ["Benchmark", "Catalog", "FAMILIES", "SCORING_KINDS", "build"]
