"""A pipeline error is printed once, in seconds: the preflight runs before Prefect starts, and
the engine's echoes of a failing stage (task, subflow, flow) stay out of the terminal."""

from __future__ import annotations

import logging
import time

from tests.pipeline.pipeline_helpers import base_env, run_pipeline
from tasks.common import FINAL_ERROR, RepeatedFailureFilter


def test_failed_preflight_is_one_line_before_prefect_starts(tmp_path):
    env = base_env(tmp_path)
    env.pop("PREFECT_HOME")
    t0 = time.monotonic()
    res = run_pipeline(tmp_path / "run", env, "--students", "builtin:nope", timeout=120)
    took = time.monotonic() - t0
    said = res.stdout + res.stderr
    assert res.returncode == 2, said[-3000:]
    assert said.count("unknown builtin 'nope'") == 1, said[-3000:]
    assert said.strip().splitlines()[-1].startswith("zppo pipeline: error: preflight failed: models: ")
    assert "Starting temporary server" not in said and "Beginning flow run" not in said
    assert took < 60  # a loose bound on a busy machine; the flow's own start alone takes ~11 s here


def _record(name: str, level: int, msg: str, **extra) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_the_console_filter_drops_engine_echoes_and_keeps_the_rest():
    f = RepeatedFailureFilter()
    dropped = [
        _record("prefect.task_runs", logging.ERROR, "Finished in state Failed('Task run encountered an exception X')"),
        _record("prefect.flow_runs", logging.ERROR, "Encountered exception during execution: X('boom')"),
        _record("prefect.flow_runs", logging.INFO, "Finished in state Failed('Flow run encountered an exception')"),
        _record("prefect.flow_runs", logging.ERROR, "preflight failed: gpus: 8", **{FINAL_ERROR: True}),
    ]
    kept = [
        _record("prefect.task_runs", logging.ERROR, "Task run failed with exception: X - Retry 1/2 will start 30 "
                "second(s) from now"),
        _record("prefect.task_runs", logging.ERROR, "preflight FAIL gpus: 8 training processes"),
        _record("prefect.flow_runs", logging.INFO, "Finished in state Completed()"),
        _record("tasks.train", logging.ERROR, "Finished in state Failed"),  # not the engine's logger
    ]
    assert [f.filter(r) for r in dropped] == [False] * 4
    assert [f.filter(r) for r in kept] == [True] * 4
