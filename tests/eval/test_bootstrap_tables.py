"""Benchmark-resampling bootstrap (Tab. 14) and the paper-table builder (Tabs. 1/2/4/10/11)."""

import pytest

from eval.bootstrap import bootstrap_diff
from eval.paper_results import PAPER_RESULTS
from eval.paper_tables import StudentResults, build_report, default_pairs, paper_family_avg
from eval.registry import by_family


def test_two_benchmark_case_by_hand():
    # diffs (A - B) = [1, 3]: a resample draws 2 benchmarks with replacement, so its mean is
    # 1 (p = 1/4), 2 (p = 1/2) or 3 (p = 1/4). Both tails carry 25 % > 2.5 %: CI = [1, 3].
    r = bootstrap_diff({"x": 2.0, "y": 5.0}, {"x": 1.0, "y": 2.0}, resamples=10_000, seed=0)
    assert (r.delta, r.low, r.high, r.wins, r.ties, r.n) == (2.0, 1.0, 3.0, 2, 0, 2)
    assert r.format() == "+2.00 [+1.00, +3.00] (2/2)"
    assert r.excludes_zero


def test_three_benchmark_case_with_a_tie_by_hand():
    # diffs [0, +1, -1]: the extreme means -1 and +1 each have p = 1/27 = 3.7 % > 2.5 %, so the
    # 2.5th / 97.5th percentiles are exactly -1 and +1; one win, one tie; mean 0.
    r = bootstrap_diff({"x": 1.0, "y": 1.0, "z": 0.0}, {"x": 1.0, "y": 0.0, "z": 1.0}, seed=0)
    assert (r.delta, r.low, r.high, r.wins, r.ties, r.n) == (0.0, -1.0, 1.0, 1, 1, 3)
    assert not r.excludes_zero


def test_fixed_seed_is_reproducible_and_unpaired_benchmarks_are_left_out():
    a = {"p": 50.0, "q": 40.0, "r": 61.0, "s": None}
    b = {"p": 45.0, "q": 41.0, "r": 55.0, "t": 10.0}
    r1, r2 = bootstrap_diff(a, b, seed=7), bootstrap_diff(a, b, seed=7)
    assert r1 == r2 and r1.benchmarks == ("p", "q", "r") and r1.n == 3
    assert r1.delta == pytest.approx((5 - 1 + 6) / 3)
    # percentiles of means of 3 draws from {5, -1, 6}: bounded by the extreme diffs
    assert -1.0 <= r1.low < r1.delta < r1.high <= 6.0
    with pytest.raises(ValueError, match="share no evaluated benchmark"):
        bootstrap_diff({"p": 1.0}, {"q": 1.0})


@pytest.mark.parametrize("size,family,delta,low,high,wins", [
    ("0.8B", "VLM", 4.79, 3.45, 6.12, 16),  # paper Tab. 14
    ("9B", "Video", 0.78, 0.30, 1.26, 5),
])
def test_reproduces_the_papers_tab14_from_its_per_benchmark_numbers(size, family, delta, low, high, wins):
    abbrs = [b.abbr for b in by_family(family)]
    r = bootstrap_diff(PAPER_RESULTS[size]["zppo"], PAPER_RESULTS[size]["grpo_replay"], order=abbrs, seed=0)
    assert round(r.delta, 2) == delta and r.wins == wins and r.n == len(abbrs)
    # a different resampling stream: the paper's printed bounds within 0.1 pp
    assert r.low == pytest.approx(low, abs=0.1) and r.high == pytest.approx(high, abs=0.1)


def test_report_tables_put_ours_beside_the_papers_with_delta_vs_base():
    ours = {"base": {"AI2D": 60.0, "MMLU": 50.0}, "zppo": {"AI2D": 70.0, "MMLU": 55.0}}
    rep = build_report([StudentResults("Qwen/Qwen3.5-2B", ours)], resamples=200)
    md = rep.markdown
    assert "Qwen/Qwen3.5-2B: VLM (Tab. 1)" in md and "Qwen/Qwen3.5-2B: LLM + Video (Tab. 2)" in md
    vlm = rep.tables[0]
    zrow = next(r for r in vlm.rows if r[0] == "+ZPPO")
    col = vlm.header.index
    assert zrow[col("AI2D")] == f"70.0 ({PAPER_RESULTS['2B']['zppo']['AI2D']:.1f})"
    assert zrow[col("BabyV")].startswith("– (")  # not evaluated by us, the paper's number beside
    assert zrow[col("VLM Avg")].startswith("70.0 (") and zrow[col("VLM Avg")].endswith("(1/16)")
    paper_delta = paper_family_avg("2B", "zppo", "VLM") - paper_family_avg("2B", "base", "VLM")
    assert zrow[col("VLM Δ Base")] == f"+10.0 ({paper_delta:+.1f})"
    # Tab. 4 family averages use the paper's Tab. 4 numbers
    tab4 = next(t for t in rep.tables if t.title.startswith("Family averages"))
    assert tab4.rows[1][1:4] == ["55.0 (50.4)", "70.0 (62.0)", "– (63.2)"]
    boot = [r for r in rep.bootstrap if r["family"] == "VLM"]
    assert boot[0]["a"] == "zppo" and boot[0]["b"] == "base" and boot[0]["ours"]["delta"] == 10.0
    assert boot[0]["paper"]["n"] == 16  # the paper column: its whole family, as in Tab. 14
    assert "<table>" in rep.html and "http" not in rep.html  # self-contained page


def test_default_pairs():
    assert default_pairs(["zppo", "base", "grpo"]) == [("zppo", "base"), ("zppo", "grpo")]
    assert default_pairs(["grpo", "base"]) == [("grpo", "base")]
    assert default_pairs(["grpo"]) == []


def test_offline_report_has_no_empty_column_and_flags_a_thin_bootstrap():
    """The demo's case: offline benchmarks, no paper numbers, one family evaluated. No column is
    empty, and a bootstrap over 1 benchmark says so instead of looking like Tab. 14's."""
    ours = {"base": {"OfflineLLM": 40.0}, "zppo": {"OfflineLLM": 55.0}}
    rep = build_report([StudentResults("builtin:tiny-qwen3", ours)], resamples=100)
    titles = [t.title for t in rep.tables]
    assert not any(": VLM (" in t for t in titles)  # no VLM table: nothing measured there
    llm = next(t for t in rep.tables if ": LLM + Video" in t.title)
    assert llm.header == ["Method", "OfflineLLM", "LLM Avg", "LLM Δ Base"]  # no Video columns
    tab4 = next(t for t in rep.tables if t.title.startswith("Family averages"))
    assert tab4.header == ["Method", "builtin:tiny-qwen3 LLM"]
    boot = next(t for t in rep.tables if t.title.startswith("Benchmark-resampling"))
    row = next(r for r in boot.rows if r[2] == "LLM")
    n_llm = len(by_family("LLM", offline=True))  # the offline LLM family; one of them evaluated
    assert n_llm > 1 and row[3] == f"+15.00 [+15.00, +15.00] (1/1) ⚠ 1/{n_llm} benchmarks (too few for an interval)"
    assert "under 5 the interval is not meaningful" in boot.note
