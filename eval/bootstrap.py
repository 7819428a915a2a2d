"""Benchmark-resampling bootstrap of a macro accuracy difference (paper Tab. 14).

For two methods A and B evaluated on the same benchmarks of one family, the statistic is the
macro difference ``mean_b (acc_A[b] - acc_B[b])`` over the benchmarks both have a number for.
The bootstrap resamples *benchmarks* (not items) with replacement, ``resamples`` times (paper:
10,000), and reports the percentile confidence interval (paper: 95 %, i.e. the 2.5th and 97.5th
percentiles of the resampled means, numpy's default linear interpolation) and the win count
(benchmarks where A is strictly above B).

Pure module (numpy only); seeded, so the same inputs always give the same interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: the paper's settings (Tab. 14)
PAPER_RESAMPLES = 10_000
PAPER_CI = 0.95


@dataclass(frozen=True)
class BootstrapResult:
    """Macro difference A - B with its percentile CI. ``benchmarks``: the paired abbreviations."""

    delta: float  # mean over benchmarks of (A - B), accuracy points
    low: float  # lower percentile bound of the resampled means
    high: float  # upper percentile bound
    wins: int  # benchmarks with A > B
    ties: int  # benchmarks with A == B
    n: int  # paired benchmarks
    resamples: int
    ci: float
    seed: int
    benchmarks: tuple[str, ...]

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of 0."""
        return self.low > 0 or self.high < 0

    def format(self) -> str:
        """``+4.79 [+3.45, +6.12] (16/16)`` as in the paper's Tab. 14."""
        return f"{self.delta:+.2f} [{self.low:+.2f}, {self.high:+.2f}] ({self.wins}/{self.n})"


def paired_differences(a: Mapping[str, float | None], b: Mapping[str, float | None],
                       order: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Benchmarks where both have a number (in ``order`` if given, else A's order) and A - B."""
    keys = order if order is not None else list(a)
    common = [k for k in keys if a.get(k) is not None and b.get(k) is not None]
    diffs = np.array([float(a[k]) - float(b[k]) for k in common], dtype=np.float64)
    return common, diffs


def bootstrap_diff(a: Mapping[str, float | None], b: Mapping[str, float | None], *,
                   resamples: int = PAPER_RESAMPLES, ci: float = PAPER_CI, seed: int = 0,
                   order: list[str] | None = None) -> BootstrapResult:
    """Benchmark-resampling bootstrap of ``mean(A - B)``.

    ``a``/``b``: ``{benchmark: accuracy}`` (None = not evaluated, left out of the pairing).
    Draws a ``[resamples, n]`` index matrix from ``numpy.random.default_rng(seed)``; each row's
    mean difference is one bootstrap replicate. Raises ``ValueError`` when no benchmark is paired.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    common, diffs = paired_differences(a, b, order)
    if not common:
        raise ValueError("bootstrap: the two methods share no evaluated benchmark")
    n = len(common)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    means = diffs[idx].mean(axis=1)
    tail = (1.0 - ci) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return BootstrapResult(
        delta=float(diffs.mean()), low=float(low), high=float(high), wins=int((diffs > 0).sum()),
        ties=int((diffs == 0).sum()), n=n, resamples=resamples, ci=ci, seed=seed, benchmarks=tuple(common),
    )


__all__ = ["PAPER_CI", "PAPER_RESAMPLES", "BootstrapResult", "bootstrap_diff", "paired_differences"]
