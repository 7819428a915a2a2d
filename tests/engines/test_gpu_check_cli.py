"""benchmarks/gpu_check.py runs without a GPU as far as it can: --help, --list, and a clear skip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_help_and_list():
    h = _run("--help")
    assert h.returncode == 0 and "--only" in h.stdout and "--sync-shape" in h.stdout
    items = _run("--list").stdout.split()
    assert items == ["versions", "render", "sync", "sync_speed", "update_memory", "eval_workers", "train_resume"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the check would run")
def test_skips_cleanly_without_cuda():
    p = _run()
    assert p.returncode == 0
    assert p.stdout.startswith("SKIP gpu_check: no CUDA device visible") and "PASS" not in p.stdout
