"""Preflight: check in seconds what a resolved config needs, before any expensive stage.

``run_checks(cfg, scope)`` returns a :class:`PreflightReport` of :class:`Check` rows:

* ``output``   the output folder can be created and written;
* ``models``   every model spec is valid: ``builtin:`` names parse, a local path exists, a hub id
  resolves (the hub, or the local cache under ``HF_HUB_OFFLINE=1``);
* ``gpus``     with ``pipeline.launcher: accelerate``, the CUDA devices this host sees cover the
  processes per machine of ``pipeline.accelerate_config`` (unless it says ``use_cpu``);
* ``vllm``     ``vllm`` importable when a role uses the in-process vLLM backend;
* ``teacher`` / ``judge``  the OpenAI-compatible server of an ``openai`` role answers
  ``GET <url>/models`` and serves the configured model -- or, on a loopback URL with
  ``model.<role>_gpus`` named, nothing answers yet and the stage will start it (its model
  spec must resolve);
* ``datasets`` curation sources (unless synthetic), ``eval.data_root`` / ``eval.video_dir``,
  and for a training run its ``data.train_path``, exist locally or resolve on the hub.

Scopes: ``pipeline`` (everything the ``zppo-full`` flow runs), ``train`` and ``eval``. Every
probe of the outside world goes through :class:`Probe`, so tests check the logic with exact
inputs. The first failed check, as one line, is :attr:`PreflightReport.problem`.

No Prefect, no MLflow.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from zppo_core.config import Config
from zppo_core.errors import UserError, looks_like_local_path

SCOPES = ("pipeline", "train", "eval")
#: seconds one network probe (server /models, hub lookup) may take
PROBE_TIMEOUT_S = 5.0


class PreflightError(UserError):
    """A preflight check failed; the message names the missing thing in one line."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class PreflightReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problem(self) -> str:
        """``"<check>: <detail>"`` of the first failed check ("" when all passed)."""
        bad = next((c for c in self.checks if not c.ok), None)
        return f"{bad.name}: {bad.detail}" if bad else ""

    def lines(self) -> list[str]:
        return [f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<9} {c.detail}" for c in self.checks]

    def raise_for_problem(self) -> None:
        if not self.ok:
            raise PreflightError(f"preflight failed: {self.problem}")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problem": self.problem,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _http_models(url: str, timeout: float) -> list[str]:
    """Model ids served at an OpenAI-compatible ``url`` (raises on any connection problem)."""
    import httpx

    key = os.environ.get("OPENAI_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.get(url.rstrip("/") + "/models", timeout=timeout, headers=headers)
    r.raise_for_status()
    return [str(m.get("id")) for m in r.json().get("data", [])]


def _hub_lookup(repo_id: str, repo_type: str, timeout: float) -> str | None:
    """None when ``repo_id`` resolves (hub, or local cache when offline); else why not."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        folder = Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}"
        return None if folder.is_dir() else "not in the local hub cache and HF_HUB_OFFLINE=1"
    from huggingface_hub import HfApi

    try:
        HfApi().repo_info(repo_id, repo_type=repo_type, timeout=timeout)
        return None
    except Exception as e:  # noqa: BLE001 - any failure is reported by its class name
        name = type(e).__name__
        if name in ("RepositoryNotFoundError", "GatedRepoError"):
            return "not found on the hub (or gated: run `huggingface-cli login`)"
        return f"hub unreachable ({name})"


@dataclass
class Probe:
    """How the checks look at the outside world (swapped for exact fakes in tests)."""

    gpu_count: Callable[[], int] = _gpu_count
    has_module: Callable[[str], bool] = lambda name: importlib.util.find_spec(name) is not None
    served_models: Callable[[str, float], list[str]] = _http_models
    hub_lookup: Callable[[str, str, float], str | None] = _hub_lookup


# -- individual checks -------------------------------------------------------------------------
def check_output(output_dir: str | Path) -> Check:
    """Whether ``output_dir`` can be written, without creating it (``zppo doctor`` leaves no
    trace): a scratch file in the folder, or in its nearest existing parent, made and removed."""
    out = Path(output_dir).absolute()
    probe_dir = next((p for p in (out, *out.parents) if p.exists()), out.anchor)
    try:
        if not Path(probe_dir).is_dir():
            raise NotADirectoryError(20, "not a folder", str(probe_dir))
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".preflight-"):
            pass
    except OSError as e:
        return Check("output", False, f"output folder {output_dir} is not writable ({e.strerror or e})")
    return Check("output", True, f"{output_dir} writable" + ("" if out.exists() else " (created by the run)"))


def spec_problem(spec: str, role: str, probe: Probe, repo_type: str = "model") -> str | None:
    """Why the model/dataset spec of ``role`` cannot be used (None when it can)."""
    if spec.startswith("builtin:"):
        if repo_type != "model":
            return f"{role}: {spec} is not a dataset"
        from zppo_core.models import ModelSpecError, parse_spec

        try:
            parse_spec(spec)
        except ModelSpecError as e:
            return str(e)
        return None
    if looks_like_local_path(spec) or Path(spec).exists():
        return None if Path(os.path.expanduser(spec)).exists() else f"{role}: local path {spec} does not exist"
    if spec.count("/") != 1:
        return f"{role}: {spec!r} is neither a builtin: spec, an existing local path, nor a hub id org/name"
    why = probe.hub_lookup(spec, repo_type, PROBE_TIMEOUT_S)
    return f"{role}: hub {repo_type} {spec} {why}" if why else None


def _model_roles(cfg: Config, scope: str, students: list[str]) -> list[tuple[str, str]]:
    """(role, spec) pairs whose weights this process loads (``openai`` roles are served)."""
    m = cfg.model
    roles = [(f"student {s}" if len(students) > 1 else "student", s) for s in students]
    if scope != "eval" and m.teacher_backend in ("transformers", "vllm"):
        roles.append(("teacher", m.teacher))
    if m.judge_backend in ("transformers", "vllm") and _uses_judge(cfg, scope):
        roles.append(("judge", m.judge))
    return roles


#: the stages (train, eval) a preflight scope runs
_STAGES_OF = {"pipeline": ("train", "eval"), "train": ("train",), "eval": ("eval",)}


def _uses_judge(cfg: Config, scope: str) -> bool:
    return any(cfg.uses_judge(stage) for stage in _STAGES_OF[scope])


def _uses_teacher(cfg: Config, scope: str, methods: list[str]) -> bool:
    from zppo_core.config import METHODS

    return "train" in _STAGES_OF[scope] and any(cfg.uses_teacher(m) for m in methods if m in METHODS)


def check_models(cfg: Config, scope: str, students: list[str], probe: Probe) -> Check:
    roles = _model_roles(cfg, scope, students)
    for role, spec in roles:
        why = spec_problem(spec, role, probe)
        if why:
            return Check("models", False, why)
    return Check("models", True, ", ".join(f"{r}={s}" for r, s in roles))


def accelerate_processes(path: str | Path) -> tuple[int, bool]:
    """(processes per machine, use_cpu) of an accelerate config YAML."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    n = int(data.get("num_processes", 1) or 1)
    machines = max(1, int(data.get("num_machines", 1) or 1))
    return max(1, n // machines), bool(data.get("use_cpu", False))


def check_gpus(cfg: Config, scope: str, probe: Probe, config_root: Path | None = None) -> Check:
    p = cfg.pipeline
    if scope != "pipeline" or p.launcher != "accelerate":
        n = probe.gpu_count()
        return Check("gpus", True, f"{n} CUDA device(s); training runs in this process" if scope != "pipeline"
                     else f"{n} CUDA device(s); pipeline.launcher={p.launcher}")
    path = Path(p.accelerate_config)
    if not path.is_absolute() and config_root is not None:
        path = config_root / path
    if not path.exists():
        return Check("gpus", False, f"pipeline.accelerate_config: file {p.accelerate_config} does not exist")
    procs, use_cpu = accelerate_processes(path)
    if use_cpu:
        return Check("gpus", True, f"{procs} CPU process(es) per machine ({path.name}: use_cpu)")
    n = probe.gpu_count()
    if n < procs:
        return Check("gpus", False, f"{procs} training processes per machine ({path.name}) need {procs} GPUs, this "
                     f"host sees {n}; on a CPU machine use `--profile tiny` or `--set pipeline.launcher=python`")
    return Check("gpus", True, f"{n} CUDA device(s) for {procs} training process(es) per machine")


def check_vllm(cfg: Config, scope: str, probe: Probe) -> Check:
    m = cfg.model
    roles = [r for r in ("student", "teacher", "judge") if getattr(m, f"{r}_backend") == "vllm"]
    if scope == "eval":
        roles = [r for r in roles if r != "teacher"]
    if not roles:
        return Check("vllm", True, "not needed (no role uses the in-process vLLM backend)")
    if not probe.has_module("vllm"):
        return Check("vllm", False, f"model.{roles[0]}_backend=vllm but vllm is not importable here "
                     "(pip install -e \".[gpu]\", or set the backend to transformers)")
    return Check("vllm", True, f"importable (for {', '.join(roles)})")


def check_server(cfg: Config, role: str, probe: Probe) -> Check:
    """The ``role`` server answers and serves its model; or nothing answers yet and the stage
    will start it (:func:`tasks.servers.managed_servers`: a loopback URL with
    ``model.<role>_gpus`` named), whose model spec must then resolve."""
    m = cfg.model
    url, model, gpus = getattr(m, f"{role}_url"), getattr(m, role), list(getattr(m, f"{role}_gpus"))
    try:
        served = probe.served_models(url, PROBE_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 - connection refused, timeout, HTTP error
        if _loopback(url) and gpus:
            why = spec_problem(model, f"model.{role}", probe)
            return Check(role, False, why) if why else Check(
                role, True, f"nothing answers {url} yet: the stage starts vllm serve {model} on GPUs {gpus}")
        return Check(role, False, f"{role} server {url} unreachable ({type(e).__name__}); start it: "
                     f"vllm serve {model} --host 127.0.0.1 --port {_port(url)}"
                     + (f" (or name model.{role}_gpus to let the stage start it)" if _loopback(url) else ""))
    if served and model not in served:
        return Check(role, False, f"{role} server {url} serves {served}, not model.{role}={model}")
    return Check(role, True, f"{url} serves {model}")


def _port(url: str) -> int:
    from urllib.parse import urlparse

    u = urlparse(url)
    return u.port or (443 if u.scheme == "https" else 80)


def check_datasets(cfg: Config, scope: str, probe: Probe) -> Check:
    wanted: list[tuple[str, str]] = []
    if scope == "pipeline" and not cfg.curation.synthetic:
        wanted += [("curation.vero", cfg.curation.vero), ("curation.mmfr", cfg.curation.mmfr)]
    if scope == "train" and not cfg.data.toy_kind:
        wanted.append(("data.train_path", cfg.data.train_path))
    for key in ("data_root", "video_dir"):
        if scope != "train" and getattr(cfg.eval, key):
            wanted.append((f"eval.{key}", getattr(cfg.eval, key)))
    for key, spec in wanted:
        if key.startswith("eval.") or key == "data.train_path":
            if not Path(os.path.expanduser(spec)).exists():
                return Check("datasets", False, f"{key}: local path {spec} does not exist")
            continue
        why = spec_problem(spec, key, probe, repo_type="dataset")
        if why:
            return Check("datasets", False, why)
    return Check("datasets", True, ", ".join(f"{k}={v}" for k, v in wanted) or "synthetic / offline sources")


def run_checks(cfg: Config, scope: str = "pipeline", *, students: list[str] | None = None,
               methods: list[str] | None = None, output_dir: str | Path | None = None,
               probe: Probe | None = None, config_root: Path | None = None,
               cluster_probe: Any = None) -> PreflightReport:
    """Every check of ``scope`` for the resolved ``cfg`` (see the module docstring)."""
    if scope not in SCOPES:
        raise ValueError(f"preflight scope {scope!r} not in {SCOPES}")
    probe = probe or Probe()
    students = list(students or cfg.pipeline.students or [cfg.model.student]) if scope == "pipeline" \
        else list(students or [cfg.model.student])
    methods = list(methods or (cfg.pipeline.methods if scope == "pipeline" else [cfg.zppo.method]))
    on_slurm = scope == "pipeline" and cfg.cluster.executor == "slurm"
    where = _slurm_checks(cfg, output_dir or cfg.output_dir, cluster_probe) if on_slurm \
        else [check_gpus(cfg, scope, probe, config_root)]
    rep = PreflightReport([check_output(output_dir or cfg.output_dir), *where,
                           check_vllm(cfg, scope, probe), check_models(cfg, scope, students, probe)])
    # under Slurm a loopback teacher/judge URL is served inside each job (tasks.slurm_node)
    if cfg.model.teacher_backend == "openai" and _uses_teacher(cfg, scope, methods) and not (
            on_slurm and _loopback(cfg.model.teacher_url)):
        rep.checks.append(check_server(cfg, "teacher", probe))
    if cfg.model.judge_backend == "openai" and _uses_judge(cfg, scope) and not (
            on_slurm and _loopback(cfg.model.judge_url)):
        rep.checks.append(check_server(cfg, "judge", probe))
    rep.checks.append(check_datasets(cfg, scope, probe))
    return rep


def _loopback(url: str) -> bool:
    from urllib.parse import urlparse

    return urlparse(url).hostname in ("127.0.0.1", "localhost")


def _slurm_checks(cfg: Config, output_dir: str | Path, cluster_probe: Any) -> list[Check]:
    """``slurm``, ``shared`` and ``tracking`` (:mod:`zppo_core.cluster_checks`) instead of this
    host's GPUs: the nodes' GPUs are Slurm's to give."""
    from zppo_core.cluster_checks import cluster_checks

    return [Check(*row) for row in cluster_checks(cfg, output_dir, cluster_probe)]


__all__ = ["SCOPES", "Check", "PreflightError", "PreflightReport", "Probe", "accelerate_processes", "check_datasets",
           "check_gpus", "check_models", "check_output", "check_server", "check_vllm", "run_checks", "spec_problem"]
