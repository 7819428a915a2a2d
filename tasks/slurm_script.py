"""The Slurm side of the executor as pure functions: the batch script, the ``sbatch`` command
line, and parsers of what ``scontrol`` / ``sacct`` / the job-completion log answer.

Nothing here runs a command. Every path and argument that reaches a shell is quoted with
:func:`shlex.quote`; ``#SBATCH`` directives take only plain values (a newline or a quote in a
partition name would smuggle a line into the script), and paths (``--output``, ``--chdir``) go on
``sbatch``'s own argument vector, never through a shell.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

#: states of a job that is still in the queue or running: a retried stage attaches to it
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                           "REQUEUE_FED", "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT"})
#: ended by the cluster, not by the program: resubmitted, the trainer resumes from its checkpoint
RESUBMIT_STATES = frozenset({"TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"})
COMPLETED = "COMPLETED"
UNKNOWN = "UNKNOWN"
_PLAIN = re.compile(r"^[A-Za-z0-9_.:,=@%+/\-\[\]]*$")


@dataclass(frozen=True)
class BatchJob:
    """One batch job: resources, the set-up line, and the command ``srun`` starts once per node."""

    name: str
    nodes: int
    node_command: tuple[str, ...]
    gpus_per_node: int = 0
    partition: str = ""
    account: str = ""
    qos: str = ""
    time_limit: str = ""
    extra_lines: tuple[str, ...] = ()
    setup: str = ""
    #: environment exported in the script (values quoted); secrets never go here
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobInfo:
    """What the cluster says about one job."""

    job_id: str
    state: str
    exit_code: str = ""
    node_list: str = ""
    node_count: int = 0
    reason: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def completed(self) -> bool:
        return self.state == COMPLETED

    @property
    def resubmittable(self) -> bool:
        return self.state in RESUBMIT_STATES


def _plain(key: str, value: str) -> str:
    if not _PLAIN.match(value):
        raise ValueError(f"cluster.{key}: {value!r} may hold only letters, digits and _.:,=@%+/-[]")
    return value


def directives(job: BatchJob) -> list[str]:
    """The ``#SBATCH`` lines of ``job`` (one task per node: the node launcher starts the ranks)."""
    if job.nodes < 1:
        raise ValueError(f"cluster.nodes must be >= 1, got {job.nodes}")
    lines = [f"--job-name={_plain('job name', job.name)}", f"--nodes={job.nodes}", "--ntasks-per-node=1"]
    if job.gpus_per_node:
        lines.append(f"--gpus-per-node={job.gpus_per_node}")
    for key in ("partition", "account", "qos"):
        if getattr(job, key):
            lines.append(f"--{key}={_plain(key, getattr(job, key))}")
    if job.time_limit:
        lines.append(f"--time={_plain('time_limit', job.time_limit)}")
    for extra in job.extra_lines:
        if "\n" in extra or "\r" in extra:
            raise ValueError(f"cluster.sbatch_lines: {extra!r} spans lines")
        lines.append(extra.strip())
    return [f"#SBATCH {line}" for line in lines]


def render_batch_script(job: BatchJob) -> str:
    """The batch script: directives, ``set -euo pipefail``, the set-up line, the environment,
    then ``srun`` with one task per node running ``job.node_command`` (each argument quoted)."""
    env = [f"export {k}={shlex.quote(v)}" for k, v in sorted(job.env.items()) if re.match(r"^[A-Z_][A-Z0-9_]*$", k)]
    srun = ["srun", "--nodes", str(job.nodes), "--ntasks-per-node=1", "--kill-on-bad-exit=1", *job.node_command]
    return "\n".join([
        "#!/bin/bash",
        *directives(job),
        "# submitted by the zppo-full flow: sbatch --parsable --output=LOG --chdir=REPO THIS_SCRIPT",
        "set -euo pipefail",
        *([f"# cluster.setup\n{job.setup}"] if job.setup else []),
        *env,
        'echo "zppo: job $SLURM_JOB_ID on $SLURM_JOB_NODELIST ($SLURM_NNODES nodes)"',
        # exec: the batch shell becomes srun, so scancel's signal reaches the steps directly
        "exec " + shlex.join(srun),
        "",
    ])


def sbatch_argv(script: str, log: str, workdir: str, sbatch: str = "sbatch") -> list[str]:
    """``sbatch --parsable --output=LOG --chdir=DIR SCRIPT``: an argument vector, no shell."""
    return [sbatch, "--parsable", f"--output={log}", f"--chdir={workdir}", script]


def parse_submitted(stdout: str) -> str:
    """The job id of ``sbatch --parsable`` (``"42"`` or ``"42;cluster"``)."""
    first = stdout.strip().splitlines()[0] if stdout.strip() else ""
    job_id = first.split(";")[0].strip()
    if not job_id.isdigit():
        raise ValueError(f"sbatch answered {stdout.strip()!r}, not a job id")
    return job_id


def _key_values(line: str) -> dict[str, str]:
    """``Key=value Key2=value with spaces`` -> dict (a value runs to the next `` Key=``)."""
    out: dict[str, str] = {}
    for part in re.split(r"\s+(?=[A-Za-z][A-Za-z0-9_:/]*=)", line.strip()):
        key, sep, value = part.partition("=")
        if sep:
            out[key] = value.strip()
    return out


def _info(job_id: str, kv: dict[str, str]) -> JobInfo:
    count = kv.get("NodeCnt") or kv.get("NumNodes") or "0"
    return JobInfo(job_id, kv.get("JobState", UNKNOWN).split()[0] or UNKNOWN, kv.get("ExitCode", ""),
                   kv.get("NodeList", ""), int(re.sub(r"\D.*", "", count) or 0), kv.get("Reason", ""))


def parse_scontrol_job(text: str, job_id: str) -> JobInfo | None:
    """``scontrol show job -o ID``: ``None`` when the controller no longer knows the job."""
    for line in text.splitlines():
        kv = _key_values(line)
        if kv.get("JobId") == job_id:
            return _info(job_id, kv)
    return None


def parse_sacct(text: str, job_id: str) -> JobInfo | None:
    """``sacct -X -n -P -o JobID,State,ExitCode,NodeList,NNodes -j ID``; states like
    ``CANCELLED by 0`` keep their first word."""
    for line in text.splitlines():
        cols = line.strip().split("|")
        if len(cols) >= 5 and cols[0] == job_id:
            return JobInfo(job_id, cols[1].split()[0], cols[2], cols[3], int(cols[4] or 0))
    return None


def parse_jobcomp(text: str, job_id: str) -> JobInfo | None:
    """The last line of ``jobcomp/filetxt`` (``JobId=.. JobState=.. NodeCnt=..``) for ``job_id``."""
    found = None
    for line in text.splitlines():
        kv = _key_values(line)
        if kv.get("JobId") == job_id:
            found = _info(job_id, kv)
    return found


def parse_node_addr(text: str) -> str:
    """``NodeAddr`` of ``scontrol show node -o NAME`` (names need not resolve; addresses do)."""
    addr = _key_values(text.splitlines()[0] if text.strip() else "").get("NodeAddr", "")
    if not addr:
        raise ValueError(f"no NodeAddr in {text.strip()[:200]!r}")
    return addr


def parse_jobcomp_loc(text: str) -> str:
    """``JobCompLoc`` of ``scontrol show config`` when ``JobCompType`` is ``jobcomp/filetxt``."""
    conf = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            conf[key.strip()] = value.strip()
    return conf.get("JobCompLoc", "") if conf.get("JobCompType") == "jobcomp/filetxt" else ""


__all__ = ["ACTIVE_STATES", "COMPLETED", "RESUBMIT_STATES", "UNKNOWN", "BatchJob", "JobInfo", "directives",
           "parse_jobcomp", "parse_jobcomp_loc", "parse_node_addr", "parse_sacct", "parse_scontrol_job",
           "parse_submitted", "render_batch_script", "sbatch_argv"]
