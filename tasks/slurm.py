"""Run one stage as a Slurm batch job: submit, or re-attach to the job a previous attempt left;
wait while streaming its log; resubmit when the cluster (not the program) ended it.

Plain ``sbatch`` + ``scontrol`` (+ ``sacct`` when the cluster keeps accounting, + the
job-completion log when it does not): see docs/DECISIONS.md for why not submitit. The job of a
stage is recorded in ``<stage>/slurm_job.json`` (every id it ever had); a retried flow run reads
it first:

* the recorded job is PENDING / RUNNING (or another active state): attach, submit nothing;
* it COMPLETED: nothing to run again;
* it ended otherwise (``scancel``, time limit, node failure, preemption, a crash): resubmit; the
  trainer resumes from its last checkpoint in the same folder and MLflow run.

Within one attempt, a job ended by time limit / node failure / preemption is resubmitted up to
``cluster.max_resubmits`` times; a cancelled or failed one fails the stage with one line: the
Slurm state, the exit code and the tail of the job's log.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tasks.slurm_script import (UNKNOWN, BatchJob, JobInfo, parse_jobcomp, parse_jobcomp_loc, parse_sacct,
                                parse_scontrol_job, parse_submitted, render_batch_script, sbatch_argv)

RECORD = "slurm_job.json"
#: lines of the job's log kept for the error message
TAIL_LINES = 40
#: seconds any one Slurm client command may take
CLIENT_TIMEOUT_S = 60


class SlurmJobError(RuntimeError):
    """A Slurm job ended without completing; the message is one line (state, exit code, log tail)."""


@dataclass
class JobRecord:
    """``<stage>/slurm_job.json``: the current job and every id the stage has had."""

    job_id: str = ""
    jobs: list[str] = field(default_factory=list)
    script: str = ""

    @classmethod
    def load(cls, folder: Path) -> "JobRecord":
        path = folder / RECORD
        return cls(**json.loads(path.read_text())) if path.exists() else cls()

    def save(self, folder: Path) -> None:
        tmp = folder / (RECORD + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")
        os.replace(tmp, folder / RECORD)


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, env=env)


def job_info(job_id: str) -> JobInfo:
    """The job's state from the controller; after it forgot the job, from ``sacct``, else from
    the ``jobcomp/filetxt`` log; ``UNKNOWN`` when none of them knows it."""
    proc = _run(["scontrol", "show", "job", "-o", job_id])
    info = parse_scontrol_job(proc.stdout, job_id) if proc.returncode == 0 else None
    if info:
        return info
    acct = _run(["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode,NodeList,NNodes", "-j", job_id])
    info = parse_sacct(acct.stdout, job_id) if acct.returncode == 0 else None
    if info:
        return info
    loc = parse_jobcomp_loc(_run(["scontrol", "show", "config"]).stdout)
    if loc and Path(loc).exists():
        info = parse_jobcomp(Path(loc).read_text(errors="replace"), job_id)
    return info or JobInfo(job_id, UNKNOWN)


class LogFollower:
    """Reads the new lines of a job's log on every call (the file appears when the job starts)."""

    def __init__(self, path: Path, on_line: Callable[[str], None]):
        self.path, self.on_line, self.offset = path, on_line, 0
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def __call__(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # only whole lines; the rest next time
        self.offset += end
        for raw in data[:end].decode(errors="replace").splitlines():
            self.tail.append(raw)
            self.on_line(raw)


def failure_line(info: JobInfo, tail: list[str], log: Path) -> str:
    """One line: ``slurm job 12 CANCELLED (exit 0:15) on n[1-2]: <last log lines> (log: ...)``."""
    last = " | ".join(t.strip() for t in tail if t.strip())[-600:]
    where = f" on {info.node_list}" if info.node_list else ""
    return f"slurm job {info.job_id} {info.state} (exit {info.exit_code or '?'}){where}: {last or 'no output'} (log: {log})"


@dataclass
class SlurmRun:
    """One stage's job: where it lives, what it runs, how often to look."""

    folder: Path
    job: BatchJob
    workdir: str
    env: dict[str, str]
    poll_s: float
    max_resubmits: int
    on_line: Callable[[str], None]
    on_tick: Callable[[], None] = lambda: None
    on_submit: Callable[[str], None] = lambda job_id: None
    on_attach: Callable[[JobInfo], None] = lambda info: None
    #: (job id, attached?) of every job this attempt waited on
    history: list[tuple[str, bool]] = field(default_factory=list)
    #: the last lines of the log of the job waited on last
    tail: list[str] = field(default_factory=list)

    def log_path(self, job_id: str) -> Path:
        return self.folder / f"slurm-{job_id}.log"

    def submit(self, record: JobRecord) -> str:
        script = self.folder / "job.sbatch"
        script.write_text(render_batch_script(self.job))
        proc = _run(sbatch_argv(str(script), str(self.folder / "slurm-%j.log"), self.workdir), env=self.env)
        if proc.returncode != 0:
            raise SlurmJobError(f"sbatch failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-400:]}")
        job_id = parse_submitted(proc.stdout)
        record.job_id, record.script = job_id, str(script)
        record.jobs.append(job_id)
        record.save(self.folder)
        self.on_submit(job_id)
        return job_id

    def wait(self, job_id: str) -> JobInfo:
        follow = LogFollower(self.log_path(job_id), self.on_line)
        while True:
            info = job_info(job_id)
            follow()
            self.on_tick()
            if not info.active:
                follow()
                self.tail = list(follow.tail)
                return info
            time.sleep(self.poll_s)

    def run(self) -> JobInfo:
        """Attach to the recorded job or submit one; wait; resubmit after a cluster-side end."""
        self.folder.mkdir(parents=True, exist_ok=True)
        record = JobRecord.load(self.folder)
        prev = job_info(record.job_id) if record.job_id else None
        if prev is not None and prev.completed:
            return prev
        resubmits = 0
        if prev is not None and prev.active:
            job_id, attached = record.job_id, True
            self.on_attach(prev)
        else:
            job_id, attached = self.submit(record), False
        while True:
            self.history.append((job_id, attached))
            info = self.wait(job_id)
            if info.completed:
                return info
            if info.resubmittable and resubmits < self.max_resubmits:
                resubmits += 1
                self.on_line(f"slurm job {job_id} ended {info.state}: resubmitting ({resubmits}/{self.max_resubmits})")
                job_id, attached = self.submit(record), False
                continue
            raise SlurmJobError(failure_line(info, self.tail, self.log_path(job_id)))


__all__ = ["RECORD", "JobRecord", "LogFollower", "SlurmJobError", "SlurmRun", "failure_line", "job_info"]
