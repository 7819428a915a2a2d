"""The end-of-pipeline table (n, Δ vs Base, intervals over seeds), run / task names, compare URL,
seed bands in plots."""

from __future__ import annotations


from tasks import plots
from tasks.common import labels, run_name, short_name, stage_tag
from tasks.summary import cells, student_table
from tasks.tracking import run_params, ui_base


def _r(fam, acc, n):
    return {"family": fam, "accuracy": acc, "n": n, "skipped": None}


EVALS = {
    "base": {"-": {"A": _r("VLM", 40.0, 10), "B": _r("VLM", 60.0, 10), "C": _r("LLM", 30.0, 5)}},
    "zppo": {"0": {"A": _r("VLM", 50.0, 10), "B": _r("VLM", 70.0, 10), "C": _r("LLM", 30.0, 5)},
             "1": {"A": _r("VLM", 60.0, 10), "B": _r("VLM", 80.0, 10),
                   "C": {"family": "LLM", "accuracy": None, "n": 0, "skipped": "no data"}}},
}


def test_cells_mean_n_and_interval_over_seeds():
    c = cells(EVALS["zppo"])
    # VLM family: seed 0 -> 60, seed 1 -> 70; mean 65, sd 7.071, t(1)=12.706 -> half 12.706*7.071/sqrt(2) = 63.53
    assert c["VLM"].mean == 65.0 and c["VLM"].n == 40 and c["VLM"].seeds == 2
    lo, hi = c["VLM"].interval
    assert round(lo, 2) == 1.47 and round(hi, 2) == 128.53
    assert c["LLM"].mean == 30.0 and c["LLM"].n == 5 and c["LLM"].interval is None  # one seed scored it


def test_student_table_rows_and_delta():
    lines = student_table(EVALS).splitlines()
    assert lines[0].split() == ["method", "seeds", "LLM", "VLM", "Δ", "LLM", "Δ", "VLM"]
    assert lines[2].split() == ["Base", "-", "30.0", "(n=5)", "50.0", "(n=20)"]
    # Δ VLM over seeds: 60 - 50 = 10 and 70 - 50 = 20 -> 15 +- 12.706 * 7.071 / sqrt(2) = 63.53;
    # Δ LLM: one seed and no records to pair items -> the plain difference, no interval
    assert lines[3].split() == ["+ZPPO", "2", "30.0", "(n=5)", "65.0", "[1.5,", "128.5]", "(n=40)", "+0.0",
                                "+15.0", "[-48.5,", "+78.5]"]


def _records(tmp_path, name, scores):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table({"item_id": [f"i{k}" for k in range(len(scores))], "score": scores}), path)
    return {"family": "LLM", "accuracy": 100.0 * sum(scores) / len(scores), "n": len(scores), "skipped": None,
            "records": str(path)}


def test_one_seed_delta_is_a_paired_bootstrap_over_items_per_benchmark(tmp_path):
    from tasks.summary import delta_interval

    # 10 paired items, 5 gained and 5 unchanged: Δ = +50; resampled gains ~ Binomial(10, .5) / 10,
    # whose 2.5 / 97.5 % quantiles are 2 / 10 and 8 / 10
    base = {"-": {"A": _records(tmp_path, "bA", [0.0] * 10)}}
    one = {"0": {"A": _records(tmp_path, "mA", [1.0] * 5 + [0.0] * 5)}}
    d = delta_interval(one, base, "A", by="benchmark")
    assert (d.mean, d.lo, d.hi, d.n) == (50.0, 20.0, 80.0, 10)
    # two benchmarks in one family: the family Δ is the plain mean of the benchmarks' Δ (+100 on 4
    # items, 0 on 100), not the item-pooled one, and neither benchmark varies under resampling
    base = {"-": {"A": _records(tmp_path, "bA2", [0.0] * 4), "B": _records(tmp_path, "bB", [1.0] * 100)}}
    one = {"0": {"A": _records(tmp_path, "mA2", [1.0] * 4), "B": _records(tmp_path, "mB", [1.0] * 100)}}
    d = delta_interval(one, base, "LLM", by="family")
    assert (d.mean, d.lo, d.hi, d.n) == (50.0, 50.0, 50.0, 104)
    # a benchmark of the family without records: no interval rather than one over part of the family
    no_records = {"0": {**one["0"], "B": {**one["0"]["B"], "records": None}}}
    assert delta_interval(no_records, base, "LLM", by="family") is None
    table = student_table({"base": base, "zppo": one}, by="benchmark").splitlines()
    assert table[0].split() == ["method", "seeds", "A", "B", "Δ", "A", "Δ", "B"]
    assert table[3].split()[-6:] == ["+100.0", "[+100.0,", "+100.0]", "+0.0", "[+0.0,", "+0.0]"]


def test_summary_files_hold_both_tables_and_the_parent_metrics():
    from tasks.report import summary_metrics
    from tasks.summary import summary_json, summary_markdown

    evals = {"builtin:tiny": EVALS}
    md = summary_markdown(evals, ["accuracy_by_family_tiny.png", "reward_curves.png"])
    assert md.startswith("# ZPPO pipeline summary\n\n## builtin:tiny\n\n### Per family")
    assert "| method | seeds | LLM | VLM | Δ LLM | Δ VLM |" in md and "### Per benchmark" in md
    assert "| +ZPPO | 2 | 30.0 (n=5) | 65.0 [1.5, 128.5] (n=40) | +0.0 | +15.0 [-48.5, +78.5] |" in md
    assert "| A | B | C | Δ A | Δ B | Δ C |" in md  # the per-benchmark table
    assert "![reward_curves.png](reward_curves.png)" in md
    data = summary_json(evals)
    vlm = data["builtin:tiny"]["family"]["zppo"]["VLM"]
    assert (vlm["mean"], vlm["n"], vlm["seeds"]) == (65.0, 40, 2)
    assert vlm["delta"]["mean"] == 15.0 and round(vlm["delta"]["lo"], 1) == -48.5
    assert data["builtin:tiny"]["family"]["base"]["VLM"]["delta"] is None
    assert summary_metrics(data) == {"summary/builtin_tiny/base/LLM": 30.0, "summary/builtin_tiny/base/VLM": 50.0,
                                     "summary/builtin_tiny/zppo/LLM": 30.0, "summary/builtin_tiny/zppo/VLM": 65.0,
                                     "summary/builtin_tiny/zppo/delta/LLM": 0.0,
                                     "summary/builtin_tiny/zppo/delta/VLM": 15.0}


def test_names_lead_with_what_differs():
    lab = labels("builtin:tiny-qwen3.5-vl", "zppo", 0)
    assert run_name(lab) == "zppo · tiny-qwen3.5-vl · s0"
    assert run_name(labels("Qwen/Qwen3.5-2B", "base", None), "AI2D") == "AI2D · base · Qwen3.5-2B"
    assert stage_tag(lab) == "tiny-qwen3.5-vl/zppo/s0"
    assert short_name("/ckpt/zppo-2b/final_model") == "zppo-2b/final_model"
    assert run_params(lab) == {"method": "zppo", "student": "builtin:tiny-qwen3.5-vl", "seed": "0"}


def test_ui_base_is_the_configured_ui_else_the_server_else_the_local_ui():
    assert ui_base("sqlite:///x/mlflow.db") == "http://127.0.0.1:5000"
    assert ui_base("http://mlflow.lab:5000/") == "http://mlflow.lab:5000"
    assert ui_base("sqlite:///x/mlflow.db", "http://127.0.0.1:5001/") == "http://127.0.0.1:5001"
    assert ui_base("http://10.0.0.5:5000", "https://mlflow.lab.org") == "https://mlflow.lab.org"


def test_seed_groups_and_band():
    assert plots.seed_groups(["t/zppo/seed0", "t/zppo/seed1", "t/grpo/seed0"]) == {
        "t/zppo": ["t/zppo/seed0", "t/zppo/seed1"], "t/grpo": ["t/grpo/seed0"]}
    xs, mean, lo, hi = plots.band([([1, 2, 3], [0.0, 0.5, 1.0]), ([1, 2], [1.0, 0.5])])
    assert (xs, mean, lo, hi) == ([1, 2], [0.5, 0.5], [0.0, 0.5], [1.0, 0.5])


def test_reward_plot_has_integer_steps_and_a_seed_band():
    rows = lambda off: [{"step": s, "reward/plain_mean": 0.1 * s + off} for s in (1, 2, 3)]  # noqa: E731
    fig = plots.reward_curves({"t/zppo/seed0": rows(0.0), "t/zppo/seed1": rows(0.2)})
    ax = fig.axes[0]
    ax.figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert [l.get_label() for l in ax.get_lines()] == ["t/zppo (mean of 2 seeds)"]
    assert len(ax.collections) == 1  # the min-max band
    plots.close(fig)
