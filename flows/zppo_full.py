"""The ``zppo-full`` flow: curate -> for each student x method x seed (a *lane*): train ->
evaluate each benchmark (parallel, bounded) -> report. The untrained student of each size is
evaluated too (the "Base" lane). Under ``cluster.executor: slurm`` the lanes run concurrently,
``cluster.max_jobs_in_flight`` at once (:func:`run_lanes`), each submitting its own training and
evaluation jobs; ``local`` runs them one after another on this host.

Stages are the Prefect tasks of :mod:`tasks` (persisted results, cache keys from resolved config
+ input data hash + code version), so re-running a failed pipeline with the same parameters
skips every completed stage and the trainer resumes from its last checkpoint. MLflow: one parent
run per pipeline (a re-run continues it), nested runs per stage, per (student, method, seed) and
per benchmark evaluation.
"""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.states import Failed

from tasks.common import FINAL_ERROR, TrackCtx, labels, run_name, slug, stage_tag
from tasks.curate import curate
from tasks.evaluate import eval_flow_for
from flows.profiles import refuse_per_lane_overrides, resolve_config, sweep_benchmarks, sweep_of
from tasks.hashing import git_sha, path_fingerprint, stable_hash
from tasks.preflight import preflight
from tasks.report import report
from tasks.mlflow_views import compare_url, results_view, runs_url, share_view
from tasks.tracking import artifact_root, resolve_tracking_uri, run_params, ui_base
from tasks.train import train
from zppo_core.config import Config, ConfigError, dump_config, replace
from zppo_core.locks import folder_lock
from zppo_core.preflight import PreflightError
from zppo_core.redact import SECRETS_ENV, install_log_redaction, masked_values, redact, secrets_from_env, unmask

BASE = "base"
T = TypeVar("T")


_WATCHED: set[int] = set()


def _watch_prefect_server() -> None:
    """The temporary Prefect server this process started dies with it, even on SIGKILL
    (:mod:`zppo_core.lifeline`); Prefect keeps its servers in ``SubprocessASGIServer._instances``."""
    from prefect.server.api.server import SubprocessASGIServer

    from zppo_core import lifeline

    for srv in list(SubprocessASGIServer._instances.values()):
        proc = srv.server_process
        if proc is not None and proc.poll() is None and proc.pid not in _WATCHED:
            lifeline.watch(proc.pid, group=False)
            _WATCHED.add(proc.pid)


def _result_storage(out: Path) -> str:
    """A saved :class:`tasks.results.JsonResultStorage` block rooted in the run folder (results
    are read back as plain JSON only); its slug for ``result_storage``."""
    from tasks.results import JsonResultStorage

    name = "zppo-results-" + stable_hash(str(out), length=12)
    JsonResultStorage(basepath=str(out / "prefect" / "results")).save(name, overwrite=True)
    return f"{JsonResultStorage.get_block_type_slug()}/{name}"


def _open_parent(cfg: Config, out: Path, sweep: dict[str, Any]) -> TrackCtx:
    from tasks.tracking import Tracker

    uri = resolve_tracking_uri(cfg.tracking.tracking_uri, out)
    if not cfg.tracking.tracking_uri:
        (out / "mlruns").mkdir(parents=True, exist_ok=True)
    art = artifact_root(out)
    tracker = Tracker(uri, cfg.tracking.experiment, art)
    tags = {"teacher": cfg.model.teacher, "git_sha": git_sha(), "config_hash": cfg.hash(),
            "profile": cfg.name, "output_dir": str(out)}
    try:
        from prefect.runtime import flow_run

        tags["prefect_flow_run_id"] = str(flow_run.id)
    except Exception:  # noqa: BLE001 - outside a flow run
        pass
    key = "pipeline:" + stable_hash({"out": str(out), "cfg": cfg.hash(), "sweep": sweep})
    rid = tracker.open_run(key, f"pipeline · {cfg.name}", {**tags, "stage": "pipeline",
                                                         "students": ",".join(sweep["students"]),
                                                         "methods": ",".join(sweep["methods"])})
    tracker.log_params(rid, {**cfg.flatten(), **{f"sweep.{k}": v for k, v in sweep.items()}, **_versions()})
    tracker.log_text(rid, dump_config(cfg, redacted=True), "config/resolved_config.yaml")
    return TrackCtx(uri, cfg.tracking.experiment, art, rid, tags)


def _versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers (``versions.<dist>`` params)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("zppo", "torch", "transformers", "accelerate", "vllm", "mlflow", "prefect"):
        try:
            out[f"versions.{dist}"] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def resolve_run(config: str | None, profile: str | None, students: list[str] | None, teacher: str | None,
             methods: list[str] | None, benchmarks: list[str] | None, seeds: list[int] | None,
             output_dir: str | None, overrides: dict[str, Any] | None) -> tuple[Config, dict[str, Any]]:
    """The resolved config and the sweep (students, methods, seeds, benchmarks) of a flow run."""
    ov = unmask(dict(overrides or {}), secrets_from_env())  # the stored parameters are masked
    refuse_per_lane_overrides(ov)
    if teacher:
        ov["model.teacher"] = teacher
    if benchmarks:
        ov["eval.benchmarks"] = list(benchmarks)
    if output_dir:
        ov["output_dir"] = output_dir
    cfg = resolve_config(config, profile, ov)
    st, me, se = sweep_of(cfg, students, methods, seeds)
    return cfg, {"students": st, "methods": me, "seeds": se, "benchmarks": sweep_benchmarks(cfg)}


@flow(name="zppo-full", result_serializer="json")
def zppo_full(config: str | None = None, profile: str | None = "tiny", students: list[str] | None = None,
              teacher: str | None = None, methods: list[str] | None = None,
              benchmarks: list[str] | None = None, seeds: list[int] | None = None,
              output_dir: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole pipeline; returns paths and metric dicts (never models).

    Parameters: ``config`` (YAML path) or ``profile`` (``configs/<profile>.yaml``); ``students``
    (model specs), ``teacher``, ``methods`` (``zppo_core.config.METHODS`` names), ``benchmarks``
    (registry names, families, ``all``, ``offline``), ``seeds``; ``output_dir``; ``overrides``
    (dotted config keys). Unset sweep parameters come from the config's ``tracking`` section.
    """
    from zppo_core.console import configure

    configure()  # quiet third-party output unless ZPPO_VERBOSE=1 (also in deployments' workers)
    install_log_redaction()  # logs go to the Prefect database too
    _watch_prefect_server()
    log = get_run_logger()
    try:
        cfg, sweep = resolve_run(config, profile, students, teacher, methods, benchmarks, seeds, output_dir, overrides)
        os.environ[SECRETS_ENV] = json.dumps(masked_values(cfg.flatten()))  # for nested flows' masked parameters
        out = Path(cfg.output_dir).resolve()
        log.info("zppo-full %s: %s -> %s", cfg.name, ", ".join(f"{k}={v}" for k, v in sweep.items()), out)
        if cfg.pipeline.preflight:
            pre = preflight(cfg.to_dict(), sweep["students"], sweep["methods"], str(out))
            if not pre["ok"]:
                raise PreflightError(f"preflight failed: {pre['problem']}")
    except (ConfigError, PreflightError) as err:
        log.error("%s", err, extra={FINAL_ERROR: True})  # `zppo pipeline` prints it once itself
        _announce("zppo.preflight.failed" if isinstance(err, PreflightError) else "zppo.config.invalid", str(err))
        return Failed(message=str(err), data=err)  # one line in the final state, no traceback
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "zppo pipeline"):  # held already when started by `zppo pipeline`
        ctx = _open_parent(cfg, out, sweep)
        tracker = ctx.tracker()
        ok = False
        shared = _share_api_with_workers()
        try:
            result = _run_stages(cfg, out, sweep, ctx, _result_storage(out))
            ok = True
            # the table itself: summary.md and the run's Prefect artifact (`zppo pipeline` prints it once)
            log.info("result table: %s   report: %s   MLflow runs: %s   compare: %s",
                     result["report"].get("summary", ""), Path(out) / "report", result.get("runs_url", ""),
                     result.get("compare_url", ""))
            return result
        finally:
            tracker.finish(ctx.parent_run_id, ok)
            if shared:
                os.environ.pop("PREFECT_API_URL", None)


def _announce(event: str, message: str) -> None:
    """Send ``message`` as an event on this flow run, and wait until it is sent:
    ``prefect deployment run --watch`` prints the run's events (not its state message, nor its
    logs unless the server streams them) and stops at the terminal state, so the one-line reason
    shows there as ``<event> * <message>`` just before ``Failed``. Best effort."""
    try:
        from prefect.events import Event
        from prefect.events.clients import get_events_client
        from prefect.runtime import flow_run
        from prefect.utilities.asyncutils import run_coro_as_sync

        ev = Event(event=event, resource={"prefect.resource.id": f"zppo.flow-run.{flow_run.id}",
                                          "prefect.resource.name": message},
                   related=[{"prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
                             "prefect.resource.role": "flow-run"}])

        async def send() -> None:
            async with get_events_client() as client:
                await client.emit(ev)

        run_coro_as_sync(send())
    except Exception:  # noqa: BLE001 - the state message and the log carry it anyway
        pass


def _share_api_with_workers() -> bool:
    """In ephemeral mode, point the evaluation worker processes at this run's temporary API
    server (they would otherwise each start their own). True when the variable was set here."""
    if os.environ.get("PREFECT_API_URL"):
        return False
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    url = str(getattr(getattr(ctx, "client", None), "api_url", "") or "")
    if not url.startswith("http"):
        return False
    os.environ["PREFECT_API_URL"] = url
    return True


def _stage_opts(cfg: Config, storage: str) -> dict[str, Any]:
    return {"retries": cfg.pipeline.retries, "retry_delay_seconds": cfg.pipeline.retry_delay_s,
            "result_storage": storage}


def _run_stages(cfg: Config, out: Path, sweep: dict[str, Any], ctx: TrackCtx, storage: str) -> dict[str, Any]:
    opts = _stage_opts(cfg, storage)
    track = ctx.to_dict()
    cur = curate.with_options(**opts, task_run_name="curate")(cfg.to_dict(), str(out / "curation"), track)
    lanes = _lanes(cfg, out, sweep, cur)
    done = run_lanes([lambda lane=lane: _run_lane(lane, ctx, storage, opts) for lane in lanes],
                     cfg.cluster.max_jobs_in_flight if cfg.cluster.executor == "slurm" else 1)
    evals: dict[str, dict[str, dict[str, Any]]] = {}
    trainings: dict[str, dict[str, Any]] = {}
    for lane, (training, ev) in zip(lanes, done):
        evals.setdefault(lane.student, {}).setdefault(lane.method, {})[lane.seed_key] = ev
        if training is not None:
            trainings[lane.key] = training
    paper = {"pairs": list(cfg.pipeline.report_pairs), "resamples": cfg.pipeline.bootstrap_resamples,
             "seed": cfg.pipeline.bootstrap_seed}
    rep = report.with_options(result_storage=storage, task_run_name="report")(evals, trainings, str(out / "report"),
                                                                             track, paper)
    tracker = ctx.tracker()
    view = results_view(tracker.experiment_id, ctx.parent_run_id, evals)
    share_view(tracker.client, view)  # the links below open on it
    ui = ui_base(ctx.tracking_uri, cfg.tracking.ui_url)
    return redact({"output_dir": str(out), "curation": cur, "trainings": trainings, "evals": evals, "report": rep,
                   "parent_run_id": ctx.parent_run_id, "tracking_uri": ctx.tracking_uri, "ui_url": ui,
                   "experiment": ctx.experiment, "flow_run_id": ctx.tags.get("prefect_flow_run_id", ""),
                   "runs_url": runs_url(ui, view), "compare_url": compare_url(ui, view)})


@dataclass(frozen=True)
class Lane:
    """One row of the sweep: a (student, method, seed) to train then evaluate, or a student's
    Base evaluation (``method == BASE``, ``seed is None``, no ``train_dir``: nothing to train)."""

    student: str
    method: str
    seed: int | None
    cfg: Config
    eval_dir: Path
    benchmarks: tuple[str, ...]
    train_dir: Path | None = None
    data_hash: str = ""

    @property
    def key(self) -> str:
        return f"{slug(self.student)}/{self.method}/seed{self.seed}"

    @property
    def seed_key(self) -> str:
        return "-" if self.seed is None else str(self.seed)


def _lanes(cfg: Config, out: Path, sweep: dict[str, Any], cur: dict[str, Any]) -> list[Lane]:
    """The sweep's rows in report order: per student its Base row, then method x seed."""
    lanes, bench = [], tuple(sweep["benchmarks"])
    data = {"data.train_path": cur["parquet"], "data.image_root": str(Path(cur["parquet"]).parent)}
    for student in sweep["students"]:
        scfg = replace(cfg, **{"model.student": student})
        if cfg.pipeline.evaluate_base:
            lanes.append(Lane(student, BASE, None, scfg, out / "eval" / slug(student) / BASE, bench))
        for method in sweep["methods"]:
            for seed in sweep["seeds"]:
                tdir = out / "train" / slug(student) / method / f"seed{seed}"
                rcfg = replace(scfg, **{"zppo.method": method, "schedule.seed": seed, "output_dir": str(tdir), **data})
                lanes.append(Lane(student, method, seed, rcfg, out / "eval" / slug(student) / method / f"seed{seed}",
                                  bench, tdir, cur["content_hash"]))
    return lanes


def _run_lane(lane: Lane, ctx: TrackCtx, storage: str, opts: dict[str, Any]) -> tuple[dict[str, Any] | None, dict]:
    """Train (unless Base) then evaluate one lane: ``(training result or None, evaluation)``."""
    from zppo_core.models import resolve

    bench = list(lane.benchmarks)
    if lane.train_dir is None:
        return None, _evaluate(lane.cfg, resolve(lane.student), lane.eval_dir, bench, ctx,
                               labels(lane.student, BASE, None), storage)
    lab = labels(lane.student, lane.method, lane.seed)
    tr = train.with_options(**opts, task_run_name=f"train[{stage_tag(lab)}]")(
        lane.cfg.to_dict(), str(lane.train_dir), lane.data_hash, ctx.to_dict(), lab)
    return tr, _evaluate(lane.cfg, tr["final_model"], lane.eval_dir, bench, ctx, lab, storage, run_id=tr["run_id"])


def run_lanes(work: list[Callable[[], T]], in_flight: int) -> list[T]:
    """Run ``work`` with at most ``in_flight`` at once, results in ``work``'s order; each in a copy
    of this thread's context (the Prefect flow run's, so its tasks and nested flows belong to it).
    ``in_flight == 1``: one after another in this thread. The first failure is raised after every
    started item has finished (a failed lane does not cancel the others' Slurm jobs)."""
    if in_flight <= 1 or len(work) <= 1:
        return [w() for w in work]
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="zppo-lane") as pool:
        futures = [pool.submit(contextvars.copy_context().run, w) for w in work]
        wait(futures)
    bad = next((f.exception() for f in futures if f.exception() is not None), None)
    if bad is not None:
        raise bad
    return [f.result() for f in futures]


def _evaluate(cfg: Config, model: str, out: Path, benchmarks: list[str], ctx: TrackCtx, lab: dict[str, str],
              storage: str, run_id: str | None = None) -> dict[str, Any]:
    """Evaluate one model on every benchmark (nested flow); opens the base run when none is given."""
    base = run_id is None
    if base:
        tracker = ctx.tracker()
        run_id = tracker.open_run(f"base:{out}", run_name(lab), {**ctx.tags, **lab, "stage": "eval"},
                                  ctx.parent_run_id)
        tracker.log_params(run_id, run_params(lab))
        tracker.finish(run_id)
    cd = cfg.to_dict()
    res = eval_flow_for(cd, f"evaluate[{stage_tag(lab)}]")(model, benchmarks, str(out), redact(cd), ctx.to_dict(), run_id,
                                                            lab, storage, path_fingerprint(model))
    return res


__all__ = ["BASE", "Lane", "resolve_config", "run_lanes", "zppo_full"]
