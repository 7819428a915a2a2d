"""Confidence intervals of the result tables (hand-computed expectations)."""

from __future__ import annotations

import math

import pytest

from eval import registry
from eval.stats import bootstrap_interval, paired_bootstrap_diff, t_interval, t_quantile


def test_t_interval_three_seeds():
    iv = t_interval([0.2, 0.4, 0.6])  # mean .4, sd .2, half = 4.303 * .2 / sqrt(3)
    half = 4.303 * 0.2 / math.sqrt(3)
    assert iv.mean == pytest.approx(0.4)
    assert (iv.lo, iv.hi) == (pytest.approx(0.4 - half), pytest.approx(0.4 + half))
    assert not iv.excludes_zero and iv.method == "t-over-seeds"


def test_t_interval_one_seed_has_no_bounds():
    iv = t_interval([0.3])
    assert (iv.mean, iv.lo, iv.hi, iv.fmt()) == (0.3, None, None, "30.0")


def test_t_quantiles():
    assert t_quantile(1) == 12.706 and t_quantile(2) == 4.303 and t_quantile(100) == 1.96
    with pytest.raises(ValueError):
        t_quantile(0)


def test_bootstrap_of_constant_scores_is_a_point():
    iv = bootstrap_interval([1.0] * 10)
    assert (iv.mean, iv.lo, iv.hi) == (1.0, 1.0, 1.0) and iv.excludes_zero


def test_paired_diff_all_ones_vs_all_zeros_excludes_zero():
    iv = paired_bootstrap_diff([1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], seed=1)
    assert iv.mean == 0.75 and iv.lo >= 0.0 and iv.hi == 1.0
    assert paired_bootstrap_diff([1.0, 0.0], [1.0, 0.0]).fmt() == "0.0 [0.0, 0.0]"
    with pytest.raises(ValueError):
        paired_bootstrap_diff([1.0], [])


def test_miniature_selection_is_apart_from_offline():
    mini = [b.abbr for b in registry.select("miniature")]
    assert mini == ["MiniAdd", "MiniMul", "MiniSub"]
    assert not set(mini) & {b.abbr for b in registry.select("offline")}
