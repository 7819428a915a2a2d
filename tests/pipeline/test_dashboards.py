"""Training dashboards: the Fig. 4 / Fig. 23 / F.7 series by hand, PNG + offline HTML, MLflow logging."""

from __future__ import annotations

import json

import pytest

from tasks.dashboards import FIGURES, log_training_dashboards, write_dashboards
from tasks.tracking import Tracker
from zppo_core.dynamics import bin_curves, bins_in, buffer_fates, cumulative_match_rates

ROWS = [
    {"step": 1, "reward/plain_mean": 0.2, "buffer/size": 3, "train/entropy": 1.1,
     "buffer/admissions/0.000": 2, "buffer/admissions/0.125": 1, "buffer/graduations/0.000": 0,
     "buffer/evictions/0.000": 0, "audit/bcq_rollouts": 4, "audit/bcq_correct": 1, "audit/bcq_match_pos_count": 1,
     "audit/bcq_match_neg_count": 3, "audit/ncq_rollouts": 0, "audit/ncq_correct": 0, "audit/ncq_match_neg_count": 0},
    {"step": 2, "reward/plain_mean": 0.4, "buffer/size": 2, "train/entropy": 1.2,
     "buffer/admissions/0.000": 2, "buffer/graduations/0.000": 1, "buffer/graduations/0.125": 1,
     "buffer/evictions/0.000": 1, "audit/bcq_rollouts": 4, "audit/bcq_correct": 3, "audit/bcq_match_pos_count": 2,
     "audit/bcq_match_neg_count": 0, "audit/ncq_rollouts": 8, "audit/ncq_correct": 2, "audit/ncq_match_neg_count": 4},
]


def test_fig4_fig23_and_pooled_match_rates_by_hand():
    assert bins_in(ROWS) == ["0.000", "0.125"]
    c = bin_curves(ROWS)
    assert c["0.000"].admitted == [2, 4] and c["0.000"].graduated == [0, 1] and c["0.000"].graduated_frac == [0, 0.25]
    assert c["0.125"].admitted == [1, 1] and c["0.125"].graduated_frac == [0, 1.0]
    f = buffer_fates(ROWS)
    assert f["0.000"] == {"admitted": 4, "graduated": 1, "evicted": 1, "graduated_share": 0.5}
    assert f["all"] == {"admitted": 5, "graduated": 2, "evicted": 1, "graduated_share": pytest.approx(2 / 3)}
    r = cumulative_match_rates(ROWS)
    assert r["bcq_accuracy"] == ([1, 2], [0.25, 0.5])  # 1/4, then (1+3)/(4+4)
    assert r["bcq_match_pos"] == ([1, 2], [1.0, 0.75])  # 1/1, then 3/4 correct
    assert r["bcq_match_neg"] == ([1, 2], [1.0, 0.75])  # 3/3 wrong, then 3/(3+1)
    assert r["ncq_match_neg"] == ([2], [0.5])  # no NCQ rollout at step 1


def test_dashboards_png_and_offline_html_logged_to_the_run(tmp_path):
    files = write_dashboards(ROWS, tmp_path / "d", "tiny / zppo / seed0")
    assert [f.name for f in files] == [*FIGURES, "index.html"]
    assert all(f.stat().st_size > 1000 for f in files[:-1])
    page = files[-1].read_text()
    assert page.count("data:image/png;base64,") == len(FIGURES) and "http" not in page.replace("http-equiv", "")
    assert "bin 0.000: graduated / admitted" in page and "1 / 4 (25%)" in page
    train = tmp_path / "train"
    train.mkdir()
    (train / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (train / "bcq_debug.jsonl").write_text('{"kind": "bcq"}\n')
    t = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp", (tmp_path / "art").as_uri())
    rid = t.open_run("k", "tiny / zppo / seed0", {"stage": "train"})
    log_training_dashboards(t, rid, train, "tiny / zppo / seed0")
    dash = sorted(a.path for a in t.client.list_artifacts(rid, "dashboards"))
    assert dash == sorted(f"dashboards/{n}" for n in [*FIGURES, "index.html"])
    assert [a.path for a in t.client.list_artifacts(rid, "audit")] == ["audit/bcq_debug.jsonl"]
