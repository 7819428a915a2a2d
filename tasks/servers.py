"""Teacher / judge servers of the training stage: use a running one, or start `vllm serve`.

For each role the run needs over HTTP (``model.teacher_backend`` / ``judge_backend`` =
``openai``): when its URL answers ``/v1/models`` it is used as is; when it answers nothing and
``model.teacher_gpus`` / ``judge_gpus`` name GPUs, the stage starts ``vllm serve`` of that model
on those GPUs (``CUDA_VISIBLE_DEVICES``, tensor parallel over them) on the URL's host and port
(127.0.0.1 only), waits for health, and stops it by PID (its process group) when the stage ends
or fails. Teacher and judge on the same URL share one server. Those GPUs are reserved: the
trainer gets the others (:func:`training_gpus`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from zppo_core.config import Config
from zppo_core.engines.vllm_server import VLLMServer, VLLMServerConfig
from zppo_core.placement import device_env


@dataclass(frozen=True)
class ServerPlan:
    """One OpenAI-compatible server the run needs: roles it serves, model, URL, GPUs."""

    roles: tuple[str, ...]
    model: str
    url: str
    gpus: tuple[int, ...]


#: the stages that use servers: training (teacher, judge rewards) and evaluation (the judge)
STAGES = ("train", "eval")
_LOCAL_HOSTS = ("127.0.0.1", "localhost")


def needed_roles(cfg: Config, stage: str = "train") -> list[str]:
    """Roles whose backend is ``openai`` and that ``stage`` uses (training: the teacher for BCQ,
    compression, Off-Distill, Hint, Prefix; the judge for judge rewards. Evaluation: the judge
    when ``eval.use_judge``)."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} not in {'|'.join(STAGES)}")
    m = cfg.model
    roles = []
    if stage == "train" and m.teacher_backend == "openai" and cfg.uses_teacher():
        roles.append("teacher")
    if m.judge_backend == "openai" and cfg.uses_judge(stage):
        roles.append("judge")
    return roles


def plan_servers(cfg: Config, stage: str = "train") -> list[ServerPlan]:
    """The servers of ``stage``, one per distinct URL (teacher and judge may share one)."""
    m = cfg.model
    plans: dict[str, ServerPlan] = {}
    for role in needed_roles(cfg, stage):
        model, url, gpus = getattr(m, role), getattr(m, f"{role}_url"), tuple(getattr(m, f"{role}_gpus"))
        if url in plans:
            prev = plans[url]
            if prev.model != model:
                raise ValueError(f"model.{role}_url {url} also serves {prev.model!r}, not {model!r}")
            plans[url] = ServerPlan(prev.roles + (role,), model, url, tuple(dict.fromkeys(prev.gpus + gpus)))
        else:
            plans[url] = ServerPlan((role,), model, url, gpus)
    return list(plans.values())


def training_gpus(visible: int, plans: list[ServerPlan]) -> list[int]:
    """Node-local GPUs left to the training ranks after the servers' reservations."""
    reserved = {g for p in plans for g in p.gpus}
    bad = sorted(g for g in reserved if not 0 <= g < max(visible, 1)) if visible else []
    if bad:
        raise ValueError(f"model.teacher_gpus/judge_gpus: {bad} not among the {visible} visible GPUs")
    left = [g for g in range(visible) if g not in reserved]
    if visible and not left:
        raise ValueError(f"the servers reserve every GPU ({sorted(reserved)}): none left for training")
    return left


def check_local_reserved(plans: list[ServerPlan], visible: int) -> None:
    """Refuse a server on this node (127.0.0.1 / localhost) whose GPUs are not named while this
    node has GPUs: the training ranks / evaluation workers would be placed on its GPUs."""
    if not visible:
        return
    local = [p for p in plans if urlparse(p.url).hostname in _LOCAL_HOSTS]
    for p in local:
        if not p.gpus:
            raise ValueError(f"model.{p.roles[0]}_gpus is empty but {p.url} ({'/'.join(p.roles)}) is on this node: "
                             "name the GPUs it runs on so that no rank or worker is placed there")
    for i, a in enumerate(local):  # two servers of this node on one GPU (different URLs)
        for b in local[i + 1:]:
            if set(a.gpus) & set(b.gpus):
                raise ValueError(f"model.{a.roles[0]}_gpus and model.{b.roles[0]}_gpus share GPU(s) "
                                 f"{sorted(set(a.gpus) & set(b.gpus))} while {a.url} and {b.url} are two servers")


def reserved_gpus(plans: list[ServerPlan]) -> list[int]:
    """The GPUs the servers of ``plans`` hold, sorted."""
    return sorted({g for p in plans for g in p.gpus})


def alive(url: str, timeout_s: float = 3.0) -> bool:
    """Whether an OpenAI-compatible server answers ``<url>/models``."""
    try:
        return httpx.get(url.rstrip("/") + "/models", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def server_config(cfg: Config, plan: ServerPlan, on_gpu: bool) -> VLLMServerConfig:
    from zppo_core.models import resolve

    u = urlparse(plan.url)
    if u.hostname not in ("127.0.0.1", "localhost") or not u.port:
        raise ValueError(f"{plan.url}: a server started by the pipeline binds 127.0.0.1 on an explicit port")
    m = cfg.model
    env = device_env(plan.gpus, os.environ) if on_gpu else {}
    return VLLMServerConfig(
        model=resolve(plan.model), python=m.server_python or sys.executable, host="127.0.0.1", port=u.port,
        dtype="bfloat16" if on_gpu else m.dtype.replace("float32", "bfloat16"),
        max_model_len=m.server_max_model_len, served_model_name=plan.model, enforce_eager=not on_gpu,
        tensor_parallel_size=max(1, len(plan.gpus)) if on_gpu else 1, env=env,
        startup_timeout_s=m.server_startup_timeout_s, extra_args=["--seed", str(cfg.schedule.seed)])


@contextlib.contextmanager
def managed_servers(cfg: Config, log_dir: str | Path, on_gpu: bool | None = None,
                    stage: str = "train") -> Iterator[list[VLLMServer]]:
    """Start the servers ``stage`` needs and that are not running; stop them (by PID) on exit,
    also on failure. Yields the started servers (empty when all were running). Evaluation calls
    it too: the judge the training stage started is stopped when training ends."""
    if on_gpu is None:
        from tasks.evaluate import visible_gpu_count

        on_gpu = visible_gpu_count() > 0
    started: list[VLLMServer] = []
    try:
        for plan in plan_servers(cfg, stage):
            if alive(plan.url):
                continue
            if not plan.gpus:
                raise RuntimeError(
                    f"no server answers {plan.url} ({'/'.join(plan.roles)}: {plan.model}) and "
                    f"model.{plan.roles[0]}_gpus is empty: start one there or name GPUs to start it on")
            server = VLLMServer(server_config(cfg, plan, on_gpu), Path(log_dir) / f"server-{'-'.join(plan.roles)}.log")
            started.append(server)
            server.start()  # waits for /v1/models; stops itself on a failed start
        yield started
    finally:
        for server in reversed(started):
            server.stop()


__all__ = ["STAGES", "ServerPlan", "alive", "check_local_reserved", "managed_servers", "needed_roles", "plan_servers",
           "reserved_gpus", "server_config", "training_gpus"]
