"""docs/python-api.md's notebook block runs as written (offline, CPU), in a scratch folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_python_api_page_runs_as_written(tmp_path):
    block = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "python-api.md").read_text(), re.S)[0]
    (tmp_path / "configs").symlink_to(REPO / "configs")  # the page's relative paths
    proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "0.5 4 2" and lines[1] == "2 runs/notebook/train/final_model"
    acc, n, records = lines[-1].split()
    assert 0.0 <= float(acc) <= 100.0 and n == "4" and (tmp_path / records).exists()
