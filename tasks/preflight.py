"""Preflight stage: the flow's first task, :func:`zppo_core.preflight.run_checks` on the
resolved config (GPUs vs training processes, vLLM, teacher/judge servers, hub models and
datasets or local paths, model specs, a writable output folder), in seconds.

It returns the report instead of raising, so a failure is one line in the flow's log and in the
flow run's final state message (``prefect deployment run ... --watch`` shows it), never a
traceback. Not cached: the world it checks changes between runs.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from tasks.common import stage_logger
from tasks.hashing import REPO_ROOT
from zppo_core.config import config_from_dict


@task(name="preflight", task_run_name="preflight", persist_result=False)
def preflight(cfg: dict[str, Any], students: list[str], methods: list[str], output_dir: str) -> dict[str, Any]:
    """``PreflightReport.to_dict()``: ``ok``, ``problem`` (one line) and every check."""
    from zppo_core.preflight import run_checks

    log = stage_logger()
    rep = run_checks(config_from_dict(cfg), "pipeline", students=students, methods=methods, output_dir=output_dir,
                     config_root=REPO_ROOT)
    if rep.ok:
        log.info("preflight: all %d checks passed (%s)", len(rep.checks), ", ".join(c.name for c in rep.checks))
    for c in rep.checks:
        if not c.ok:
            log.error("preflight FAIL %s: %s", c.name, c.detail)
    return rep.to_dict()


__all__ = ["preflight"]
