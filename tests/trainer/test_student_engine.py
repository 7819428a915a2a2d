"""The student engine's lifecycle around an update, decided once per run from the config: a
transformers student (the live module) needs nothing; a vLLM engine sleeps for the update when
built with sleep mode, then gets the new weights by the configured sync (memory only in process)."""

from __future__ import annotations

import pytest

from zppo_core.config import Config, replace
from zppo_core.trainer.student_engine import StudentEngine


class FakeVLLM:
    def __init__(self, in_process: bool, sleep_enabled: bool):
        self.in_process, self.sleep_enabled, self.calls = in_process, sleep_enabled, []

    def sleep(self):
        self.calls.append("sleep")

    def update_weights(self, path):
        self.calls.append(("update_weights", path))


def _cfg(backend: str, sync: str = "memory") -> Config:
    return replace(Config(), **{"model.student_backend": backend, "model.weight_sync": sync})


@pytest.mark.parametrize("in_process,sleep_enabled,sync,want", [
    (True, True, "memory", ("memory", True)),
    (False, True, "memory", ("disk", True)),  # a multiprocess engine cannot take a tensor iterator
    (True, False, "disk", ("disk", False)),  # the CPU build: no sleep mode
])
def test_a_vllm_engine_sleeps_when_it_can_and_syncs_by_the_mode_it_can_take(in_process, sleep_enabled, sync, want):
    be = FakeVLLM(in_process, sleep_enabled)
    eng = StudentEngine.for_run(_cfg("vllm", sync), be)
    assert (eng.weight_sync, eng.sleeps) == want
    eng.before_update()
    assert be.calls == (["sleep"] if sleep_enabled else [])


@pytest.mark.parametrize("backend", ["transformers", "recorded", "openai"])
def test_other_students_need_nothing_around_the_update(backend):
    be = FakeVLLM(True, True)
    eng = StudentEngine.for_run(_cfg(backend), be)
    assert (eng.weight_sync, eng.sleeps) == ("", False)
    eng.before_update()
    assert eng.after_update(parts=None) == "" and be.calls == []
