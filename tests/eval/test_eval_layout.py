"""Evaluation layout: one engine per model serves every benchmark (built once), items spread
over workers (shards) and merged, and the worker-to-GPU plan as a pure function."""

from __future__ import annotations

import pandas as pd
import pytest

from eval import runner
from eval.placement import Worker, available_gpus, plan_workers
from zppo_core.config import Config, replace


def test_plan_workers_round_robin_over_gpus():
    assert plan_workers([]) == [Worker(0, 1, None)]
    assert plan_workers([0, 1, 2]) == [Worker(0, 3, 0), Worker(1, 3, 1), Worker(2, 3, 2)]
    w = plan_workers([4, 6], workers_per_gpu=2)
    assert [(x.index, x.count, x.gpu) for x in w] == [(0, 4, 4), (1, 4, 6), (2, 4, 4), (3, 4, 6)]
    assert w[1].shard == (1, 4)
    assert w[1].env() == {"CUDA_VISIBLE_DEVICES": "6", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert Worker(0, 1, None).env() == {}
    with pytest.raises(ValueError, match="twice"):
        plan_workers([1, 1])
    with pytest.raises(ValueError, match=">= 1"):
        plan_workers([0], workers_per_gpu=0)


def test_available_gpus_minus_reserved():
    assert available_gpus([], 8, reserved=[6, 7]) == [0, 1, 2, 3, 4, 5]
    assert available_gpus([2, 3], 8, reserved=[3]) == [2]
    assert available_gpus([], 0) == []
    with pytest.raises(ValueError, match=r"\[9\]"):
        available_gpus([0, 9], 8)


@pytest.mark.slow
def test_suite_builds_one_engine_per_model_and_shards_merge(tmp_path, monkeypatch):
    cfg = replace(Config(), **{"model.student_backend": "transformers", "eval.use_judge": False,
                               "eval.sampling.max_new_tokens": 4, "eval.batch_size": 2, "eval.offline_size": 3})
    built: list[str] = []
    real = runner._student

    def counting(model, backend, model_cfg, eval_cfg, *gpu_share):
        if backend is None:  # a new engine (with a backend given, evaluate reuses it)
            built.append(model)
        return real(model, backend, model_cfg, eval_cfg, *gpu_share)

    monkeypatch.setattr(runner, "_student", counting)
    spec, benches = "builtin:tiny-qwen3.5-vl?warmstart=0", ["OfflineLLM", "OfflineVLM"]
    # two workers (as on two GPUs), each one engine for both benchmarks
    for w in range(2):
        res = runner.evaluate_suite(spec, benches, tmp_path, eval_cfg=cfg.eval, model_cfg=cfg.model, shard=(w, 2))
        assert [r["n_done"] for r in res.values()] == [2 - w, 2 - w]  # items w::2 of 3
    assert built == [spec, spec]
    # the merge finds every item done: no engine built, results over all items
    merged = runner.evaluate_suite(spec, benches, tmp_path, eval_cfg=cfg.eval, model_cfg=cfg.model)
    assert built == [spec, spec]
    for abbr in benches:
        assert merged[abbr]["n"] == 3 and merged[abbr]["skipped"] is None
        recs = pd.read_parquet(merged[abbr]["records"])
        assert len(set(recs["item_id"])) == 3
        assert sorted(p.name for p in (tmp_path / abbr).glob("partial*.jsonl")) == \
            ["partial.0of2.jsonl", "partial.1of2.jsonl"]
