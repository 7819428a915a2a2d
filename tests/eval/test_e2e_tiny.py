"""End to end on real tiny models: offline families through the transformers backend."""

from __future__ import annotations

import pandas as pd
import pytest

from eval.runner import evaluate
from zppo_core.config import replace, Config
from zppo_core.prompts import RL_CLOSER

#: the tiny profile's dtype. The paper's bfloat16 runs torch's bf16 SDPA kernel on CPU, which on a
#: CPU with AMX raises "pack_vnni2 is only supported when avx512 is supported" once CI forces
#: another CPU's kernels (ATEN_CPU_CAPABILITY=default): a torch limit of that emulation, and not
#: what these tests are about
CPU_DTYPE = "float32"


@pytest.mark.slow
@pytest.mark.parametrize("spec,benches", [
    ("builtin:tiny-qwen3.5-vl?warmstart=0", ("OfflineVLM", "OfflineVideo")),
    ("builtin:tiny-qwen3?warmstart=0", ("OfflineLLM",)),
])
def test_offline_family_with_tiny_model(spec: str, benches: tuple[str, ...], tmp_path) -> None:
    import torch

    torch.set_num_threads(2)
    cfg = replace(Config(), **{"model.student_backend": "transformers", "model.dtype": CPU_DTYPE,
                               "eval.use_judge": False, "eval.sampling.max_new_tokens": 8, "eval.batch_size": 3,
                               "eval.offline_size": 3})
    for abbr in benches:
        res = evaluate(spec, abbr, tmp_path, eval_cfg=cfg.eval, model_cfg=cfg.model)
        assert res["skipped"] is None and res["n"] == 3 and 0.0 <= res["accuracy"] <= 100.0
        recs = pd.read_parquet(res["records"])
        assert recs["prompt"].str.endswith(RL_CLOSER).all() and recs["response"].map(len).gt(0).all()
        assert set(recs["finish_reason"]) <= {"stop", "length"}


@pytest.mark.slow
def test_sampled_evaluation_is_reproducible(tmp_path) -> None:
    """T=0.6 sampling is seeded per batch (eval.seed): the same model gives the same responses."""
    cfg = replace(Config(), **{"model.student_backend": "transformers", "model.dtype": CPU_DTYPE,
                               "eval.use_judge": False, "eval.sampling.max_new_tokens": 8, "eval.batch_size": 2,
                               "eval.offline_size": 4})
    runs = [evaluate("builtin:tiny-qwen3?warmstart=0", "OfflineLLM", tmp_path / str(i), eval_cfg=cfg.eval,
                     model_cfg=cfg.model) for i in range(2)]
    a, b = (pd.read_parquet(r["records"]) for r in runs)
    assert a["response"].tolist() == b["response"].tolist()
    other = replace(cfg, **{"eval.seed": 1})
    c = pd.read_parquet(evaluate("builtin:tiny-qwen3?warmstart=0", "OfflineLLM", tmp_path / "2",
                                 eval_cfg=other.eval, model_cfg=other.model)["records"])
    assert c["response"].tolist() != a["response"].tolist()
