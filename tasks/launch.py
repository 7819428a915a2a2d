"""Launch the trainer as a subprocess and stream its logs.

The same path runs a real GPU job (``accelerate launch --config_file configs/accelerate/...``) and the
tiny CPU job (plain ``python -m zppo_core.trainer.cli``); only ``pipeline.launcher`` differs.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from zppo_core import lifeline
from zppo_core.config.schema import LAUNCHERS

from tasks.slurm_script import render_batch_script

TRAINER_MODULE = "zppo_core.trainer.cli"
#: lines of subprocess output kept for the error message
_TAIL_LINES = 60


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
    if run_id:
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


def slurm_script(config_path: str | Path, output_dir: str | Path, *, overrides: dict | None = None) -> str:
    """The batch script the ``zppo-full`` flow submits for one training run under
    ``cluster.executor: slurm`` (same function: :func:`tasks.slurm_train.batch_job`), for users who
    submit by hand: ``python -m tasks.launch slurm --config C --output O > job.sbatch``. It writes
    ``O/config.yaml`` and ``O/node_spec.json`` (the per-node launcher reads them; the folder must
    be on the shared filesystem), then ``sbatch --output=O/slurm-%j.log job.sbatch``."""
    from zppo_core.config import dump_config, load_config
    from tasks.slurm_train import batch_job, job_name, node_spec

    conf = load_config(config_path, overrides or {})
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "config.yaml"
    cfg.write_text(dump_config(conf, redacted=True))
    acc = Path(conf.pipeline.accelerate_config)
    acc = acc if acc.is_absolute() else Path(__file__).resolve().parent.parent / acc
    spec = node_spec(conf, cfg, out, "", str(acc))
    spec.save(out / "node_spec.json")
    c = conf.cluster
    cmd = [spec.python, "-m", "tasks.slurm_node", str((out / "node_spec.json").resolve())]
    return render_batch_script(batch_job(conf, job_name("train", conf.name), cmd, c.nodes, c.gpus_per_node))


def main(argv: list[str] | None = None) -> int:
    """``python -m tasks.launch slurm --config C --output O [--set K=V ...]`` prints the script."""
    from zppo_core.config import parse_overrides

    p = argparse.ArgumentParser(prog="python -m tasks.launch")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slurm", help="print the sbatch script of one multi-node training run (cluster: section)")
    s.add_argument("--config", required=True)
    s.add_argument("--output", required=True, help="training folder on the shared filesystem")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    a = p.parse_args(argv)
    print(slurm_script(a.config, a.output, overrides=parse_overrides(a.set)), end="")
    return 0


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


__all__ = ["LAUNCHERS", "StreamedProcess", "build_command", "child_env", "slurm_script"]


if __name__ == "__main__":
    raise SystemExit(main())
