"""The per-node launcher of a Slurm training job: ``srun`` starts ``python -m tasks.slurm_node
SPEC.json`` once per node.

On each node it

1. finds the first node of the allocation and its *address* (``scontrol show hostnames``, then
   ``NodeAddr`` of ``scontrol show node``: node names need not resolve), and its own address;
2. splits the node's GPUs through the mask it was given (:mod:`zppo_core.placement`): the last
   ``serve_gpus`` serve the teacher/judge, the others train;
3. starts ``vllm serve`` on the serving GPUs when the run needs a served model and this node
   serves (``serve_on``: ``first`` or ``every``), bound to the node's address, waits for health;
   nodes that do not serve wait until the first node's server answers;
4. runs ``accelerate launch`` with ``--machine_rank $SLURM_NODEID``, all ranks meeting at the first
   node's address, the served URL handed to every rank (``--set model.teacher_url=...``);
5. stops the server by its PID when the launcher ends, fails, or the job is cancelled (SIGTERM).

No Prefect, no MLflow here: the worker host streams ``metrics.jsonl`` from the shared folder.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tasks.slurm_script import parse_node_addr
from zppo_core.placement import NodeSplit, ranks_per_node, split_node, visible_devices

TRAINER_MODULE = "zppo_core.trainer.cli"


@dataclass(frozen=True)
class ServedModel:
    """The model the job serves and the config keys whose URL points at it."""

    model: str
    roles: tuple[str, ...]
    python: str
    max_model_len: int
    dtype: str
    startup_timeout_s: float

    @classmethod
    def from_json(cls, raw: dict | None) -> "ServedModel | None":
        """The ``served`` entry of a saved spec (None when the job serves nothing)."""
        return cls(**{**raw, "roles": tuple(raw["roles"])}) if raw else None


@dataclass(frozen=True)
class NodeSpec:
    """Everything one node needs (written by the stage to ``<train_dir>/node_spec.json``)."""

    config: str
    output: str
    run_id: str
    python: str
    accelerate_config: str
    nodes: int
    gpus_per_node: int
    serve_gpus: int
    serve_on: str
    server_port: int
    rdzv_port: int
    served: ServedModel | None = None
    extra_sets: tuple[str, ...] = field(default_factory=tuple)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> "NodeSpec":
        raw = json.loads(path.read_text())
        return cls(**{**raw, "served": ServedModel.from_json(raw.get("served")),
                      "extra_sets": tuple(raw.get("extra_sets", ()))})


def launcher_command(spec: NodeSpec, node_rank: int, master_addr: str, served_url: str) -> list[str]:
    """``accelerate launch`` of this node's ranks: ``nodes * ranks_per_node`` processes in all,
    static rendezvous at ``master_addr:rdzv_port``; the served URL overrides the config's."""
    per_node = ranks_per_node(spec.gpus_per_node, spec.serve_gpus)
    cmd = [spec.python, "-m", "accelerate.commands.launch", "--config_file", spec.accelerate_config,
           "--num_machines", str(spec.nodes), "--num_processes", str(spec.nodes * per_node),
           "--machine_rank", str(node_rank), "--main_process_ip", master_addr,
           "--main_process_port", str(spec.rdzv_port), "--rdzv_backend", "static", "--same_network",
           "-m", TRAINER_MODULE, "--config", spec.config, "--output", spec.output, "--run-id", spec.run_id]
    if spec.served and served_url:
        for role in spec.served.roles:
            cmd += ["--set", f"model.{role}_url={served_url}"]
    for item in spec.extra_sets:
        cmd += ["--set", item]
    return cmd


def serves_here(spec: NodeSpec, node_rank: int) -> bool:
    """Whether this node starts the served model (``every`` node, or the ``first`` only)."""
    return spec.served is not None and (spec.serve_on == "every" or node_rank == 0)


def _scontrol(*args: str) -> str:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def node_address(name: str) -> str:
    return parse_node_addr(_scontrol("show", "node", "-o", name))


def first_node(nodelist: str) -> str:
    names = _scontrol("show", "hostnames", nodelist).split()
    if not names:
        raise RuntimeError(f"scontrol show hostnames {nodelist!r} named no node")
    return names[0]


def _start_server(served: ServedModel, port: int, split: NodeSplit, addr: str, log_dir: Path, node: str):
    from zppo_core.engines.vllm_server import VLLMServer, VLLMServerConfig
    from zppo_core.models import resolve

    s = served
    on_gpu = bool(split.serve)
    env = {"CUDA_VISIBLE_DEVICES": split.serve_mask} if on_gpu else {}
    cfg = VLLMServerConfig(model=resolve(s.model), python=s.python or sys.executable, host=addr,
                           port=port, dtype="bfloat16" if on_gpu else s.dtype,
                           max_model_len=s.max_model_len, served_model_name=s.model, enforce_eager=not on_gpu,
                           tensor_parallel_size=max(1, len(split.serve)), env=env,
                           startup_timeout_s=s.startup_timeout_s)
    server = VLLMServer(cfg, log_dir / f"server-{node}.log")
    server.start()
    print(f"zppo-node {node}: vllm serve {s.model} at {server.base_url} on GPUs {split.serve_mask or '-'} "
          f"(pid {server.pid})", flush=True)
    (log_dir / f"server-{node}.pid").write_text(f"{server.pid}\n")
    return server


@contextmanager
def allocation_server(served: ServedModel | None, serves: bool, url_host: str, port: int, split: NodeSplit,
                      addr: str, log_dir: Path, node: str) -> Iterator[str]:
    """The served model's URL for this node's processes (``""`` when the job serves none): started
    here (bound to ``addr``) when ``serves``, else waited for at ``url_host``; stopped by PID when
    the block ends, fails, or the job is cancelled (SIGTERM -> SystemExit)."""
    if served is None:
        yield ""
        return
    url = f"http://{url_host}:{port}/v1"
    server = _start_server(served, port, split, addr, log_dir, node) if serves else None
    try:
        if server is None:
            _wait_url(url, served.startup_timeout_s)
        yield url
    finally:
        if server is not None:
            server.stop()
            print(f"zppo-node {node}: stopped vllm serve (pid {server.pid})", flush=True)


def _wait_url(url: str, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url.rstrip("/") + "/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise RuntimeError(f"the served model at {url} did not answer within {timeout_s:.0f}s")


def run_node(spec: NodeSpec, env: dict[str, str]) -> int:
    """This node's part of the job; returns the launcher's exit code."""
    node_rank, node = int(env["SLURM_NODEID"]), env.get("SLURMD_NODENAME", "node")
    master = node_address(first_node(env["SLURM_JOB_NODELIST"]))
    addr = node_address(node)
    split = split_node(visible_devices(env, spec.gpus_per_node), spec.serve_gpus if spec.served else 0)
    print(f"zppo-node {node}: rank {node_rank}/{spec.nodes}, rendezvous {master}:{spec.rdzv_port}, "
          f"train GPUs {split.train_mask or '-'}", flush=True)
    log_dir = Path(spec.output) / "servers"
    log_dir.mkdir(parents=True, exist_ok=True)
    host = addr if spec.serve_on == "every" else master
    with allocation_server(spec.served, serves_here(spec, node_rank), host, spec.server_port, split, addr,
                           log_dir, node) as served_url:
        child_env = dict(env)
        if split.train:
            child_env["CUDA_VISIBLE_DEVICES"] = split.train_mask
        proc = subprocess.Popen(launcher_command(spec, node_rank, master, served_url), env=child_env)
        return proc.wait()


def job_main(prog: str, spec_help: str, run: Callable[[Path, dict[str, str]], int], argv: list[str] | None) -> int:
    """The entry point of a job's node command: ``prog SPEC.json``; SIGTERM (``scancel``, the time
    limit) becomes ``SystemExit`` so the ``finally`` blocks stop the served model by PID."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("spec", help=spec_help)
    a = p.parse_args(argv)

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    return run(Path(a.spec), dict(os.environ))


def main(argv: list[str] | None = None) -> int:
    return job_main("python -m tasks.slurm_node", "node_spec.json written by the training stage",
                    lambda spec, env: run_node(NodeSpec.load(spec), env), argv)


if __name__ == "__main__":
    raise SystemExit(main())
