"""The torch tier of benchmarks/gpu_check.py on CPU with tiny shapes, in a process that refuses
to import vLLM, Prefect, MLflow and DuckDB (absent on the lent GPU machine): its items run the
trainer's update code (FSDP2 over a one-rank gloo world here) and report PASS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"

#: installed before anything else in every process of the run (sitecustomize on PYTHONPATH)
BLOCKER = '''
import sys
FORBIDDEN = ("vllm", "prefect", "mlflow", "duckdb")
class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"torch tier imported {name} (refused)")
        return None
sys.meta_path.insert(0, _Refuse())
'''


@pytest.mark.timeout(300)
def test_torch_tier_runs_on_cpu_without_vllm_prefect_mlflow_duckdb(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    probe = subprocess.run([sys.executable, "-c", "import duckdb"], env=env, capture_output=True, text=True)
    assert "refused" in probe.stderr  # the blocker is active in child processes
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, str(SCRIPT), "--tier", "torch", "--device", "cpu", "--tiny", "--json", str(out)],
                       env=env, capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads(out.read_text())
    assert (res["tier"], res["passed"], res["total"]) == ("torch", 3, 3)
    items = res["items"]
    assert items["env"]["forbidden_imported"] == []
    assert items["sharded_equals_single"]["sharded_run_has_dtensor_params"] is True
    assert items["sharded_equals_single"]["max_abs_diff"] <= 1e-5 and items["sharded_equals_single"]["max_update"] > 0
    tiny = items["update"]["tiny"]
    assert not tiny["ac_and_chunk"]["oom"] and tiny["ac_and_chunk"]["loss_finite"]
    assert [ln.split()[0] for ln in p.stdout.splitlines()[:3]] == ["PASS", "PASS", "PASS"]


def test_torch_tier_lists_its_items_and_refuses_cpu_for_the_vllm_tier():
    run = lambda *a: subprocess.run([sys.executable, str(SCRIPT), *a], capture_output=True, text=True, timeout=60)  # noqa: E731
    assert run("--list", "--tier", "torch").stdout.split() == ["env", "update", "gdn", "sharded_equals_single",
                                                               "hf_generate"]
    p = run("--device", "cpu")
    assert p.returncode == 2 and "--device cpu runs only the torch tier" in p.stdout
