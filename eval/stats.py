"""Confidence intervals of result tables: Student-t over seeds, bootstrap over items.

Pure functions over plain lists (no I/O). Accuracies are fractions in [0, 1].

* :func:`t_interval` -- mean and 95 % interval over k >= 2 seeds (two-sided Student t, k - 1
  degrees of freedom); for k = 1 the interval is undefined (``None`` bounds).
* :func:`bootstrap_interval` -- mean and percentile interval of item scores (one run).
* :func:`paired_bootstrap_diff` -- mean and interval of ``a - b`` over the same items
  (resampled together, so per-item difficulty cancels).
* :func:`stratified_paired_bootstrap` -- the same for an average of several benchmarks' mean
  differences (items resampled within each benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: two-sided 97.5 % quantiles of Student's t, by degrees of freedom (1..30); >30 uses 1.96
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


@dataclass(frozen=True)
class Interval:
    """A mean with its 95 % interval (``lo``/``hi`` None when undefined) and sample size."""

    mean: float
    lo: float | None
    hi: float | None
    n: int
    method: str  # "t-over-seeds" | "bootstrap-over-items" | "none"

    @property
    def excludes_zero(self) -> bool:
        return self.lo is not None and self.hi is not None and (self.lo > 0 or self.hi < 0)

    def fmt(self, scale: float = 100.0) -> str:
        if self.lo is None or self.hi is None:
            return f"{self.mean * scale:.1f}"
        return f"{self.mean * scale:.1f} [{self.lo * scale:.1f}, {self.hi * scale:.1f}]"


def t_quantile(df: int) -> float:
    """97.5 % quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"t quantile needs df >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def t_interval(values: Sequence[float]) -> Interval:
    """Mean of ``values`` (one per seed) with the two-sided 95 % t interval."""
    k = len(values)
    if k == 0:
        raise ValueError("t_interval of no values")
    mean = sum(values) / k
    if k == 1:
        return Interval(mean, None, None, 1, "none")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    half = t_quantile(k - 1) * sd / math.sqrt(k)
    return Interval(mean, mean - half, mean + half, k, "t-over-seeds")


def _percentile(sorted_vals: Sequence[float], q: float) -> float:
    idx = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[idx]


def bootstrap_interval(scores: Sequence[float], *, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Mean item score with the 2.5/97.5 percentile bootstrap interval (items resampled)."""
    return paired_bootstrap_diff(scores, [0.0] * len(scores), n_boot=n_boot, seed=seed)


def paired_bootstrap_diff(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Mean of ``a[i] - b[i]`` with its percentile bootstrap interval (pairs resampled): the
    one-stratum case of :func:`stratified_paired_bootstrap`."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired bootstrap needs two equal, non-empty lists, got {len(a)} and {len(b)}")
    return stratified_paired_bootstrap([[x - y for x, y in zip(a, b)]], n_boot=n_boot, seed=seed)


def stratified_paired_bootstrap(strata: Sequence[Sequence[float]], *, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Unweighted mean over strata of each stratum's mean, with its percentile bootstrap interval.

    Args:
        strata: per stratum (a benchmark), the paired per-item differences ``a[i] - b[i]``.
    Items are resampled within their stratum, so each benchmark keeps its weight (a family
    average is the plain mean of its benchmarks' accuracies). ``n`` of the result: all items.
    """
    import numpy as np

    if not strata or any(len(d) == 0 for d in strata):
        raise ValueError(f"stratified bootstrap needs non-empty strata, got sizes {[len(d) for d in strata]}")
    rng = np.random.default_rng(seed)
    boots = np.zeros(n_boot)
    for d in strata:
        arr = np.asarray(d, dtype=float)
        boots += arr[rng.integers(0, len(arr), size=(n_boot, len(arr)))].mean(axis=1)
    boots = np.sort(boots / len(strata))
    mean = float(np.mean([np.mean(d) for d in strata]))
    return Interval(mean, _percentile(boots.tolist(), 0.025), _percentile(boots.tolist(), 0.975),
                    sum(len(d) for d in strata), "bootstrap-over-items")


__all__ = ["Interval", "bootstrap_interval", "paired_bootstrap_diff", "stratified_paired_bootstrap", "t_interval",
           "t_quantile"]
