"""What `make demo` runs: `zppo pipeline --profile miniature`, shrunk to one RL step and a few
items. The miniature world's sources go through the real curation (text-only rows kept), the
curated parquet is what both methods train on, and the end-of-run table has one column per
benchmark with Δ vs Base and its one-seed interval (paired bootstrap over the records' items)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from pipeline_helpers import REPO, base_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SMALL = {"schedule.total_steps": 1, "schedule.rollout_batch": 4, "rollout.group_size": 4,
         "eval.offline_size": 6, "eval.batch_size": 6, "pipeline.retry_delay_s": 1.0,
         "pipeline.poll_interval_s": 0.5}


def test_demo_profile_curates_the_miniature_sources_and_prints_the_benchmark_table(tmp_path, prefect_server):
    env = {**base_env(tmp_path), "PREFECT_API_URL": prefect_server}  # the session's server (tests/conftest.py)
    env.pop("PREFECT_HOME")
    env["OMP_NUM_THREADS"] = "1"
    out = tmp_path / "demo"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in SMALL.items()]
    proc = subprocess.run([sys.executable, "-m", "flows.zppo_cli", "pipeline", "--profile", "miniature",
                           "--output", str(out), *sets], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=1100)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]

    res = json.loads((out / "report" / "pipeline_result.json").read_text())
    cur = res["curation"]
    rows = pq.read_table(cur["parquet"]).to_pylist()
    assert rows and all(r["image"] == "" and r["question"].startswith("What is ") for r in rows)
    assert set(cur["counts"]) == {"vero", "mmfr"}
    assert all(c["in"] > 0 and c["in"] == c["kept"] + c["rejected"] for c in cur["counts"].values())
    for method in ("grpo", "zppo"):  # each trained on the curated parquet, not a generated toy set
        cfg = (out / "train" / "builtin_mini-student" / method / "seed0" / "config.yaml").read_text()
        assert cur["parquet"] in cfg

    header = next(ln for ln in proc.stdout.splitlines() if ln.startswith("method"))
    assert header.split() == ["method", "seeds", "MiniAdd", "MiniMul", "MiniSub", "Δ", "MiniAdd", "Δ", "MiniMul",
                              "Δ", "MiniSub"]
    grpo = next(ln for ln in proc.stdout.splitlines() if ln.startswith("+GRPO "))
    assert re.search(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]", grpo), grpo  # Δ with its interval
