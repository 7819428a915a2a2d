"""One writer per folder: the OS lock refuses a second writer at once, names the holder, is
released when the holder dies, and lets the other ranks of one run through."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lock_holder import lock_held  # noqa: E402

from zppo_core.locks import FolderBusy, folder_lock, rank_zero_folder_lock  # noqa: E402


def test_second_writer_refused_with_holder_pid_then_free_after_holder_dies(tmp_path) -> None:
    with lock_held(tmp_path) as pid:
        with pytest.raises(FolderBusy, match=rf"in use by another writer \(PID {pid} \(holder"):
            with folder_lock(tmp_path, "second"):
                pass
    # the holder was SIGKILLed: the kernel dropped its lock, the stale lock file does not block
    with folder_lock(tmp_path, "third") as path:
        assert path.read_text().startswith(f"{__import__('os').getpid()} (third")


def test_other_ranks_of_a_run_do_not_take_the_lock(tmp_path, monkeypatch) -> None:
    with lock_held(tmp_path):
        monkeypatch.setenv("RANK", "1")
        with rank_zero_folder_lock(tmp_path, "rank 1"):  # no refusal: rank 0 of this run holds it
            pass
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(FolderBusy):
            with rank_zero_folder_lock(tmp_path, "rank 0"):
                pass


def test_reentrant_within_one_process(tmp_path) -> None:
    with folder_lock(tmp_path, "cli"):
        with folder_lock(tmp_path, "flow"):  # the CLI holds it and runs the flow in-process
            pass
