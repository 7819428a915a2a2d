"""Preflight checks of ``cluster.executor: slurm`` (``zppo doctor`` and the flow's first task),
before anything is submitted:

* ``slurm``    ``sinfo`` and ``sbatch`` are on PATH and the controller answers; the configured
  partition exists (``sinfo -h -o %P``) and, with an account, ``sbatch --test-only`` accepts it;
* ``shared``   the run folder (checkpoints, metrics, job logs) can be written; the nodes read and
  write it, so it must be on a filesystem every node mounts (docs/cluster.md);
* ``tracking`` the MLflow location answers (a server's ``/health``) or, server-less, its store
  folder lies in the run folder. Only the worker host talks to MLflow: the nodes write
  ``metrics.jsonl`` into the shared folder and the stage logs it.

Every command goes through :class:`ClusterProbe`, so tests check the logic with exact answers.
No Prefect, no MLflow.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zppo_core.config import Config

#: seconds one Slurm client command or health probe may take
PROBE_TIMEOUT_S = 10.0


def _run(cmd: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, f"{type(e).__name__}: {e}"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _health(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ClusterProbe:
    """How the cluster checks look at the world (exact fakes in tests)."""

    which: Callable[[str], str | None] = shutil.which
    run: Callable[[list[str]], tuple[int, str]] = _run
    health: Callable[[str], bool] = _health


def check_slurm(cfg: Config, probe: ClusterProbe) -> tuple[str, bool, str]:
    c = cfg.cluster
    missing = [t for t in ("sinfo", "sbatch", "scontrol") if not probe.which(t)]
    if missing:
        return "slurm", False, f"cluster.executor=slurm but {', '.join(missing)} not on PATH (run on a login node)"
    rc, out = probe.run(["sinfo", "-h", "-o", "%P"])
    if rc != 0:
        return "slurm", False, f"sinfo failed ({rc}): {out[-300:]} (is SLURM_CONF / the controller right?)"
    parts = [p.rstrip("*") for p in out.split()]
    if c.partition and c.partition not in parts:
        return "slurm", False, f"cluster.partition={c.partition!r} not among the partitions {parts}"
    if c.account:
        cmd = ["sbatch", "--test-only", f"--account={c.account}", f"--nodes={c.nodes}", "--wrap=true"]
        if c.partition:
            cmd.append(f"--partition={c.partition}")
        rc, out = probe.run(cmd)
        if rc != 0:
            return "slurm", False, f"sbatch --test-only refuses cluster.account={c.account!r}: {out[-300:]}"
    return "slurm", True, f"partitions {parts}; jobs of {c.nodes} node(s)"


def check_shared(output_dir: str | Path) -> tuple[str, bool, str]:
    out = Path(output_dir).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_file = out / ".zppo-shared-probe"
        probe_file.write_text("ok\n")
        probe_file.unlink()
    except OSError as e:
        return "shared", False, f"output folder {out} is not writable: {e}"
    return "shared", True, f"{out} writable (must be mounted on every node)"


def check_tracking(cfg: Config, output_dir: str | Path, probe: ClusterProbe) -> tuple[str, bool, str]:
    uri = cfg.tracking.tracking_uri
    if not uri:
        return "tracking", True, f"server-less store under {Path(output_dir).resolve() / 'mlruns'} (worker host only)"
    if uri.startswith(("http://", "https://")):
        ok = probe.health(uri)
        return "tracking", ok, f"{uri} {'answers' if ok else 'does not answer'} /health"
    return "tracking", True, f"{uri} (a store the worker host writes)"


def cluster_checks(cfg: Config, output_dir: str | Path, probe: ClusterProbe | None = None) -> list[tuple[str, bool, str]]:
    """(name, ok, detail) of every check above, in order."""
    probe = probe or ClusterProbe()
    return [check_slurm(cfg, probe), check_shared(output_dir), check_tracking(cfg, output_dir, probe)]


__all__ = ["ClusterProbe", "check_shared", "check_slurm", "check_tracking", "cluster_checks"]
