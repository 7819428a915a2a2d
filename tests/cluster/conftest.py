"""The local 2-node Slurm cluster (tests/cluster/slurm_cluster.sh) as a session fixture of the
slow cluster tests: started on private free ports under a scratch folder, stopped by PID."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
#: seconds `slurm_cluster.sh up` may take (apt-get install on a fresh machine included)
UP_TIMEOUT_S = 600


@dataclass(frozen=True)
class LocalCluster:
    conf: str
    folder: Path

    @property
    def jobcomp(self) -> Path:
        return self.folder / "jobcomp.txt"

    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": self.conf}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> LocalCluster:
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (slurmd as SlurmUser=root); run `make slurm-up` as root")
    folder = tmp_path_factory.mktemp("slurm")
    ctld, n1, n2 = _free_ports(3)
    env = dict(os.environ, SLURM_CTLD_PORT=str(ctld), SLURM_NODE1_PORT=str(n1), SLURM_NODE2_PORT=str(n2))
    script = str(HERE / "slurm_cluster.sh")
    up = subprocess.run([script, "up", str(folder)], env=env, capture_output=True, text=True, timeout=UP_TIMEOUT_S)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield LocalCluster(str(folder / "slurm.conf"), folder)
    finally:
        subprocess.run([script, "down", str(folder)], env=env, capture_output=True, text=True, timeout=120)
