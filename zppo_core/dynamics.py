"""Training-dynamics views from per-step metric rows (``metrics.jsonl``), for the dashboards.

* :func:`bin_curves` -- paper Fig. 4: per entry-accuracy bin, cumulative admissions, graduations
  and the graduated fraction ``graduated / admitted`` after each step;
* :func:`buffer_fates` -- paper Fig. 23: per bin (and in total), how many entries that left the
  buffer graduated vs were evicted;
* :func:`cumulative_match_rates` -- paper F.7 rates pooled over all steps so far (counts summed
  before dividing, so a step with few BCQ rollouts weighs what it holds).

Rows are dicts with ``step`` and the keys of :mod:`zppo_core.metrics`. Pure module: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Row = Mapping[str, Any]
_BIN_PREFIX = {"admitted": "buffer/admissions/", "graduated": "buffer/graduations/", "evicted": "buffer/evictions/"}


def bins_in(rows: Sequence[Row]) -> list[str]:
    """Entry-accuracy bins that appear in any row's ``buffer/<event>/<bin>`` keys, ascending."""
    found = {k.rsplit("/", 1)[1] for r in rows for k in r for p in _BIN_PREFIX.values() if k.startswith(p)}
    return sorted(found, key=float)


def _num(row: Row, key: str) -> float:
    v = row.get(key, 0.0)
    return float(v) if isinstance(v, (int, float)) else 0.0


@dataclass
class BinCurve:
    """Fig. 4 series of one bin, parallel to ``steps``."""

    steps: list[int] = field(default_factory=list)
    admitted: list[float] = field(default_factory=list)  # cumulative
    graduated: list[float] = field(default_factory=list)  # cumulative
    graduated_frac: list[float] = field(default_factory=list)  # graduated / admitted (0 before any admission)


def bin_curves(rows: Sequence[Row]) -> dict[str, BinCurve]:
    """``{bin: BinCurve}`` over the rows in step order."""
    out = {b: BinCurve() for b in bins_in(rows)}
    for b, c in out.items():
        adm = grad = 0.0
        for r in sorted(rows, key=lambda r: int(r["step"])):
            adm += _num(r, _BIN_PREFIX["admitted"] + b)
            grad += _num(r, _BIN_PREFIX["graduated"] + b)
            c.steps.append(int(r["step"]))
            c.admitted.append(adm)
            c.graduated.append(grad)
            c.graduated_frac.append(grad / adm if adm else 0.0)
    return out


def buffer_fates(rows: Sequence[Row]) -> dict[str, dict[str, float]]:
    """``{bin | "all": {"admitted", "graduated", "evicted", "graduated_share"}}`` (share of the
    entries that LEFT the buffer which graduated; 0 when none left)."""
    bins = bins_in(rows)
    out = {b: {ev: sum(_num(r, p + b) for r in rows) for ev, p in _BIN_PREFIX.items()} for b in bins}
    out["all"] = {ev: sum(out[b][ev] for b in bins) for ev in _BIN_PREFIX}
    for v in out.values():
        left = v["graduated"] + v["evicted"]
        v["graduated_share"] = v["graduated"] / left if left else 0.0
    return out


#: (rate name, numerator count key, denominator: count key or (total key, minus key))
_RATES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("bcq_accuracy", "audit/bcq_correct", ("audit/bcq_rollouts",)),
    ("bcq_match_pos", "audit/bcq_match_pos_count", ("audit/bcq_correct",)),
    ("bcq_match_neg", "audit/bcq_match_neg_count", ("audit/bcq_rollouts", "audit/bcq_correct")),
    ("ncq_accuracy", "audit/ncq_correct", ("audit/ncq_rollouts",)),
    ("ncq_match_neg", "audit/ncq_match_neg_count", ("audit/ncq_rollouts",)),
)


def cumulative_match_rates(rows: Sequence[Row]) -> dict[str, tuple[list[int], list[float]]]:
    """``{rate: (steps, pooled rate so far)}``; a step enters a series once its denominator > 0."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for name, num_key, den_keys in _RATES:
        num = den = 0.0
        steps, vals = [], []
        for r in sorted(rows, key=lambda r: int(r["step"])):
            num += _num(r, num_key)
            den += _num(r, den_keys[0]) - (_num(r, den_keys[1]) if len(den_keys) > 1 else 0.0)
            if den > 0:
                steps.append(int(r["step"]))
                vals.append(num / den)
        out[name] = (steps, vals)
    return out


__all__ = ["BinCurve", "bin_curves", "bins_in", "buffer_fates", "cumulative_match_rates"]
