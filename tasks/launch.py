"""Launch the trainer as a subprocess and stream its logs.

The same path runs a real GPU job (``accelerate launch --config_file configs/accelerate/...``) and the
tiny CPU job (plain ``python -m zppo_core.trainer.cli``); only ``pipeline.launcher`` differs.
"""

from __future__ import annotations

import argparse
import collections
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from zppo_core import lifeline

TRAINER_MODULE = "zppo_core.trainer.cli"
LAUNCHERS = ("python", "accelerate")
#: lines of subprocess output kept for the error message
_TAIL_LINES = 60


def trainer_accepts(option: str) -> bool:
    """Whether the trainer CLI defines ``option`` (e.g. ``--run-id``), read from its own parser."""
    import importlib

    mod = importlib.import_module(TRAINER_MODULE)
    parser = argparse.ArgumentParser()
    mod.add_arguments(parser)
    return any(option in a.option_strings for a in parser._actions)


def build_command(config_path: str | Path, output_dir: str | Path, *, launcher: str,
                  accelerate_config: str = "", run_id: str | None = None,
                  python: str = sys.executable, num_processes: int | None = None) -> list[str]:
    """The command line of one training stage.

    ``launcher="python"``: ``python -m zppo_core.trainer.cli --config C --output O``;
    ``launcher="accelerate"``: ``python -m accelerate.commands.launch [--config_file A] -m zppo_core.trainer.cli ...``;
    ``num_processes``: one rank per GPU left after the teacher/judge servers (overrides the file's count).
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"pipeline.launcher: {launcher!r} not in {'|'.join(LAUNCHERS)}")
    args = ["--config", str(config_path), "--output", str(output_dir)]
    if run_id and trainer_accepts("--run-id"):
        args += ["--run-id", run_id]
    if launcher == "python":
        return [python, "-m", TRAINER_MODULE, *args]
    head = [python, "-m", "accelerate.commands.launch"]
    if accelerate_config:
        if not Path(accelerate_config).exists():
            raise FileNotFoundError(f"pipeline.accelerate_config: {accelerate_config} does not exist")
        head += ["--config_file", str(accelerate_config)]
    if num_processes:
        head += ["--num_processes", str(int(num_processes))]
    return [*head, "-m", TRAINER_MODULE, *args]


def slurm_script(config_path: str | Path, output_dir: str | Path, *, nodes: int, gpus_per_node: int,
                 accelerate_config: str, job_name: str = "zppo-train", port: int = 29500,
                 python: str = "python", time_limit: str = "48:00:00") -> str:
    """An ``sbatch`` script running the trainer on ``nodes`` nodes: ``srun`` starts one
    ``accelerate launch`` per node (``--machine_rank $SLURM_NODEID``) that spawns
    ``gpus_per_node`` ranks; all meet at the first node of the allocation (static rendezvous).
    Submit with ``sbatch``; the same checkpoint folder must be visible from every node."""
    if nodes < 1 or gpus_per_node < 1:
        raise ValueError("slurm_script: nodes and gpus_per_node must be >= 1")
    for name, val in (("job_name", job_name), ("time_limit", time_limit)):
        if not val or any(c.isspace() for c in val):
            raise ValueError(f"slurm_script: {name} {val!r} must be one word")
    launch = [python, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config),
              "--num_machines", str(nodes), "--num_processes", str(nodes * gpus_per_node),
              "--machine_rank", "$SLURM_NODEID", "--main_process_ip", "$MASTER_ADDR",
              "--main_process_port", str(port), "--rdzv_backend", "static", "--same_network",
              "-m", TRAINER_MODULE, "--config", str(config_path), "--output", str(output_dir)]
    return "\n".join([
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={gpus_per_node}",
        f"#SBATCH --time={time_limit}",
        "#SBATCH --exclusive",
        "set -euo pipefail",
        'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false",
        "# a collective that hangs fails at this timeout (reported once, not retried)",
        "export TORCH_NCCL_ASYNC_ERROR_HANDLING=1",
        # every word quoted (paths may hold spaces and quotes); $VARS expand on each node
        "srun --kill-on-bad-exit=1 bash -c " + shlex.quote(
            " ".join(f'"{a}"' if a.startswith("$") else shlex.quote(a) for a in launch)),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    """``python -m tasks.launch slurm --config C --output O --nodes N --gpus-per-node G`` prints the script."""
    p = argparse.ArgumentParser(prog="python -m tasks.launch")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slurm", help="print an sbatch script for a multi-node training run")
    s.add_argument("--config", required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--nodes", type=int, required=True)
    s.add_argument("--gpus-per-node", type=int, default=8)
    s.add_argument("--accelerate-config", default="configs/accelerate/multinode.yaml")
    s.add_argument("--port", type=int, default=29500)
    a = p.parse_args(argv)
    print(slurm_script(a.config, a.output, nodes=a.nodes, gpus_per_node=a.gpus_per_node,
                       accelerate_config=a.accelerate_config, port=a.port), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


class StreamedProcess:
    """A subprocess in its own process group whose merged stdout/stderr is streamed line by line."""

    def __init__(self, cmd: list[str], *, env: dict[str, str], cwd: str | Path,
                 on_line: Callable[[str], None], log_file: str | Path):
        self.cmd = cmd
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_file, "a", buffering=1)  # noqa: SIM115 - closed in wait()
        self._log.write(f"$ {' '.join(cmd)}\n")
        self.proc = subprocess.Popen(
            cmd, cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True,
        )
        lifeline.watch(self.proc.pid, group=True)  # dies with this process, even on SIGKILL
        self._on_line = on_line
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.tail.append(line)
            self._log.write(line + "\n")
            self._on_line(line)

    def poll(self) -> int | None:
        return self.proc.poll()

    def kill(self) -> None:
        """SIGKILL the process group this object started (by its pid), then reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def wait(self, poll_s: float, on_tick: Callable[[], None]) -> int:
        """Call ``on_tick`` every ``poll_s`` seconds until the process exits; return its code."""
        try:
            while self.proc.poll() is None:
                on_tick()
                time.sleep(poll_s)
            self._reader.join(timeout=10)
            on_tick()
            return int(self.proc.returncode)
        except BaseException:
            self.kill()
            raise
        finally:
            self._log.close()

    def tail_text(self) -> str:
        return "\n".join(self.tail)


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment of the trainer: ours, offline hub, repo on PYTHONPATH, plus ``extra``."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


__all__ = ["LAUNCHERS", "StreamedProcess", "build_command", "child_env", "slurm_script", "trainer_accepts"]
