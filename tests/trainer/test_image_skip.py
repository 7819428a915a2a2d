"""A question whose image cannot be loaded is skipped, named in a warning and counted; the step
goes on with the other questions (and a resume, whose cursor is past it, never meets it again)."""

from __future__ import annotations

import logging

from PIL import Image

from zppo_core import grading
from zppo_core.engines.base import SamplingParams
from zppo_core.engines.recorded import RecordedBackend
from zppo_core.engines.render import load_image
from zppo_core.metrics import TRAIN_METRICS
from zppo_core.trainer.rollout import RolloutIO, plain_stage


def _questions(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (32, 32), (10, 20, 30)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:40])
    bomb = tmp_path / "bomb.png"  # 20000 x 20000: over PIL's DecompressionBombError limit
    Image.new("1", (20_000, 20_000)).save(bomb)
    qs = []
    for qid, path in (("ok", good), ("trunc", truncated), ("bomb", bomb), ("missing", tmp_path / "gone.png")):
        qs.append({"id": qid, "question": f"q {qid}?", "answer": "1", "image_path": str(path)})
    qs.append({"id": "text", "question": "q text?", "answer": "1", "image_path": ""})
    return qs


def test_unloadable_images_are_skipped_named_and_counted(tmp_path, caplog):
    qs = _questions(tmp_path)
    io = RolloutIO(
        student=RecordedBackend(by_id={q["id"]: "\\boxed{1}" for q in qs}),
        teacher=None,
        render=lambda req: ([1, 2, 3], None),
        grade=lambda texts, q: [grading.reward(t, q["answer"]) for t in texts],
        load_image=lambda p: load_image(p, where=p),
    )
    with caplog.at_level(logging.WARNING, logger="zppo_core.trainer.rollout"):
        groups, rollouts, skipped = plain_stage(io, qs, [False, False, True, False, False], 2, SamplingParams(), step=7)
    assert [g.question_id for g in groups] == ["ok", "text"]
    assert skipped == 3
    assert [r.question_id for r in rollouts] == ["ok", "ok", "text", "text"]
    assert all(r.reward == 1.0 for r in rollouts)
    warned = "\n".join(r.getMessage() for r in caplog.records)
    for qid, name in (("trunc", "truncated.png"), ("bomb", "bomb.png"), ("missing", "gone.png")):
        assert repr(qid) in warned and name in warned
    assert "DecompressionBombError" in warned


def test_skip_count_reaches_the_step_metrics_under_a_documented_key(dist):
    from zppo_core.trainer.metrics_step import step_metrics
    from zppo_core.metrics import template_of
    from zppo_core.replay import entry_bins
    from zppo_core.trainer.rollout import StageCounts, StepRollouts

    sr = StepRollouts([], [], StageCounts(image_skipped=3))
    m = step_metrics(step=1, sr=sr, outcomes=[], n_new=4, n_replay=0,
                     buf_res={"admitted": 0, "graduated": 0, "evicted": []}, buffer=[], train_m={}, lr=0.0,
                     update_time=0.0, step_time=1.0, dist=dist, bins=entry_bins(8, 0.5))
    assert m["rollout/image_load_skipped"] == 3
    assert {template_of(k) for k in m} <= set(TRAIN_METRICS)
