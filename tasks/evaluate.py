"""Evaluation stage: one Prefect task per (model, benchmark) around :func:`eval.runner.evaluate`,
and the ``evaluate-model`` flow that runs them in parallel (bounded by
``pipeline.eval_concurrency`` worker processes, plus the ``zppo-eval`` tag for a server-side concurrency
limit: ``prefect concurrency-limit create zppo-eval N``).

On a GPU node (:func:`run_gpu_workers`) the generation is done first by one worker process per
GPU slot (``pipeline.eval_gpus`` / ``eval_workers_per_gpu``, each pinned by
``CUDA_VISIBLE_DEVICES``), each building ONE engine for the model that serves its share of every
benchmark; the per-benchmark tasks then find every item done and only merge, score and log.

Every benchmark gets a nested MLflow run named ``<benchmark> · <method> · <student> · s<seed>``
(accuracy, n, per-item records as parquet and as an MLflow table the UI previews); its accuracy
is also logged as ``eval/acc/<benchmark>`` on the (student, method, seed) run, with family
averages as ``eval/family_avg/<family>``, so the UI's compare view puts methods side by side.
Prefect task runs are named ``eval[<student>/<method>/s<seed>/<benchmark>]``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import ProcessPoolTaskRunner

from tasks.common import TrackCtx, json_safe, run_name, stage_logger, stage_tag
from tasks.hashing import path_fingerprint, stage_key
from tasks.retry import retry_transient
from tasks.tracking import run_params
from zppo_core.config import Config, config_from_dict
from zppo_core.redact import SECRETS_ENV, masked_values, secrets_from_env, unmask

EVAL_TAG = "zppo-eval"
CODE = ("eval", "zppo_core", "tasks/evaluate.py")


def eval_key(context: Any, parameters: dict[str, Any]) -> str:
    cfg = parameters["cfg"]
    # the list of benchmarks in the sweep is not part of one benchmark's result: adding a
    # benchmark to the sweep must not re-run the finished ones
    ev = {k: v for k, v in cfg["eval"].items() if k != "benchmarks"}
    conf = {"eval": ev, "model": cfg["model"], "benchmark": parameters["benchmark"]}
    abbr = parameters["benchmark"]
    inputs = {
        "model": parameters.get("model_key") or path_fingerprint(parameters["model"]),
        "out": str(Path(parameters["out_dir"]).resolve()),
        # local inputs outside the code tree: the benchmark's data copy, judge prompts, videos
        "data": path_fingerprint(Path(ev["data_root"]) / abbr) if ev.get("data_root") else "",
        "judge_prompts": path_fingerprint(ev["judge_prompt_dir"]) if ev.get("judge_prompt_dir") else "",
        "videos": path_fingerprint(ev["video_dir"]) if ev.get("video_dir") else "",
    }
    return stage_key("eval", config=conf, inputs=inputs, packages=CODE)


@task(name="evaluate", cache_key_fn=eval_key, persist_result=True, result_serializer="json",
      retry_condition_fn=retry_transient, tags=[EVAL_TAG])
def evaluate_benchmark(model: str, benchmark: str, out_dir: str, cfg: dict[str, Any], track: dict[str, Any],
                       run_id: str, lab: dict[str, str], model_key: str = "") -> dict[str, Any]:
    """Evaluate ``model`` (an HF folder) on one benchmark into ``<out_dir>/<benchmark>/``;
    results JSON-safe (paths, numbers)."""
    from eval.runner import evaluate

    log = stage_logger()
    conf = config_from_dict(cfg)
    ctx = TrackCtx.from_dict(track)
    tracker = ctx.tracker()
    child = tracker.open_run(f"eval:{Path(out_dir).resolve() / benchmark}", run_name(lab, benchmark),
                             {**ctx.tags, **lab, "stage": "eval", "benchmark": benchmark}, run_id)
    tracker.log_params(child, {**run_params(lab), "benchmark": benchmark})
    ok = False
    try:
        log.info("eval %s/%s on %s ...", lab["student"], lab["method"], benchmark)
        reason = modality_skip(model, benchmark)
        if reason:
            res = _skipped(benchmark, reason)
        else:
            res = evaluate(model, benchmark, out_dir, eval_cfg=conf.eval, model_cfg=conf.model,
                           max_items=conf.eval.max_items or None,
                           progress=_progress(log, f"eval[{stage_tag(lab)}/{benchmark}]"))
        res = json_safe(res)
        if res.get("skipped"):
            tracker.client.set_tag(child, "skipped", res["skipped"])
            log.warning("eval %s skipped (not cached, a re-run retries it): %s", benchmark, res["skipped"])
            do_not_cache()
        else:
            tracker.log_metrics(child, {"accuracy": res["accuracy"], "n": res.get("n", 0)})
            tracker.log_metrics(run_id, {acc_key(benchmark): res["accuracy"]})
            log.info("eval %s/%s on %s: %.1f (n=%s)", lab["student"], lab["method"], benchmark,
                     res["accuracy"], res.get("n"))
        if res.get("records"):
            tracker.log_artifact(child, res["records"], "records")
            tracker.log_table(child, _preview(res["records"]), f"records/{benchmark}_items.json")
        res["run_id"] = child
        ok = True
        return res
    finally:
        tracker.finish(child, ok)


def do_not_cache() -> None:
    """Keep this task run's result out of the result store, so its cache key stays free.

    A skipped benchmark is not a result: the reason may be transient (hub unreachable, no
    decoder installed yet) and a re-run with the same inputs must try again. The run still
    returns its value to the flow (state ``Completed``, never ``Cached`` later). A failed run is
    never stored by Prefect in the first place.
    """
    from prefect.transactions import get_transaction

    txn = get_transaction()
    if txn is not None:
        txn.write_on_commit = False


#: files whose presence marks a saved HF model folder as able to take images / video
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json")


def modality_skip(model: str, benchmark: str) -> str | None:
    """Why a local text-only model folder cannot run an image/video benchmark (else None).

    Such a pair is reported as skipped (never as a zero), like a benchmark whose data or video
    decoder is missing. Hub ids are not inspected; their evaluation decides.
    """
    from eval.registry import get

    modality = get(benchmark).modality
    folder = Path(model)
    if modality == "text" or not folder.is_dir():
        return None
    if any((folder / f).exists() for f in PROCESSOR_FILES):
        return None
    return f"text-only model (no image processor in {folder.name}) cannot take {modality} inputs"


def _skipped(benchmark: str, reason: str) -> dict[str, Any]:
    from eval.registry import get

    return {"benchmark": benchmark, "family": get(benchmark).family, "accuracy": None, "n": 0,
            "records": None, "skipped": reason, "skip_kind": "modality"}


def _progress(log: Any, label: str) -> Any:
    from zppo_core.console import ProgressLine

    line = ProgressLine(label, "items", log.info)
    return line.update


#: per-item rows shown in the MLflow table of a benchmark run (the parquet keeps them all)
PREVIEW_ROWS = 500


def _preview(records_path: str) -> list[dict[str, Any]]:
    import pandas as pd

    return pd.read_parquet(records_path).head(PREVIEW_ROWS).to_dict("records")


def acc_key(benchmark: str) -> str:
    return f"eval/acc/{benchmark}"


def family_key(family: str) -> str:
    return f"eval/family_avg/{family}"


def family_averages(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Mean accuracy per family over the benchmarks that were not skipped."""
    fams: dict[str, list[float]] = {}
    for r in results.values():
        if not r.get("skipped") and r.get("accuracy") is not None:
            fams.setdefault(r["family"], []).append(float(r["accuracy"]))
    return {f: sum(v) / len(v) for f, v in fams.items()}


@flow(name="evaluate-model", result_serializer="json")
def evaluate_model(model: str, benchmarks: list[str], out_dir: str, cfg: dict[str, Any], track: dict[str, Any],
                   run_id: str, lab: dict[str, str], storage: str | None = None,
                   model_key: str = "") -> dict[str, Any]:
    """All benchmarks of one model as parallel tasks; logs family averages; ``{abbr: result}``.

    ``cfg`` (a stored flow parameter) may be masked; the real credentials come from
    :data:`zppo_core.redact.SECRETS_ENV`."""
    cfg = unmask(cfg, secrets_from_env())
    conf = config_from_dict(cfg)
    opts: dict[str, Any] = {"retries": conf.pipeline.retries, "retry_delay_seconds": conf.pipeline.retry_delay_s}
    if storage:
        opts["result_storage"] = storage
    from tasks.servers import managed_servers

    runnable = [b for b in benchmarks if not modality_skip(model, b)]
    if conf.cluster.executor == "slurm":  # generation and judging in Slurm jobs (their own judge)
        run_slurm_workers(model, runnable, out_dir, conf, stage_tag(lab))
        servers: Any = contextlib.nullcontext()
    else:  # the judge: used as is when it answers, else started here on model.judge_gpus
        servers = managed_servers(conf, Path(out_dir) / "servers", on_gpu=visible_gpu_count() > 0, stage="eval")
    with servers:  # the per-benchmark tasks find the workers' items done: merge, score, log
        if conf.cluster.executor != "slurm":
            run_gpu_workers(model, runnable, out_dir, conf)
        futures = {
            b: evaluate_benchmark.with_options(**opts, task_run_name=f"eval[{stage_tag(lab)}/{b}]").submit(
                model, b, out_dir, cfg, track, run_id, lab, model_key)
            for b in benchmarks
        }
        results = {b: f.result() for b, f in futures.items()}
    tracker = TrackCtx.from_dict(track).tracker()
    tracker.log_summary(run_id, {family_key(k): v for k, v in family_averages(results).items()})
    return results


def visible_gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no CUDA runtime: no GPUs
        return 0


def eval_gpus(conf: Config, visible: int) -> list[int]:
    """The GPUs evaluation workers use: ``pipeline.eval_gpus`` (or every visible one) minus the
    GPUs of the servers evaluation needs (the judge's ``model.judge_gpus``); a judge on this node
    without named GPUs is refused (:func:`tasks.servers.check_local_reserved`)."""
    from eval.placement import available_gpus
    from tasks.servers import check_local_reserved, plan_servers, reserved_gpus

    plans = plan_servers(conf, "eval")
    check_local_reserved(plans, visible)
    return available_gpus(list(conf.pipeline.eval_gpus), visible, reserved=reserved_gpus(plans))


def run_gpu_workers(model: str, benchmarks: list[str], out_dir: str, conf: Config) -> list[int]:
    """Generate every benchmark's items with one pinned worker per GPU slot (no-op without GPUs).

    Returns the workers' exit codes; a failed worker raises with its log path (its finished
    items stay in its partial file, so a retry resumes)."""
    from eval.placement import plan_workers
    from tasks.launch import StreamedProcess, child_env
    from tasks.hashing import REPO_ROOT
    from zppo_core.config import dump_config

    gpus = eval_gpus(conf, visible_gpu_count())
    if not gpus or not benchmarks:
        return []
    log = stage_logger()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "eval_config.yaml"
    cfg_path.write_text(dump_config(conf, redacted=True))  # credentials go by environment, not to disk
    secrets = json.dumps(masked_values(conf.flatten()))
    procs = []
    for w in plan_workers(gpus, conf.pipeline.eval_workers_per_gpu):
        cmd = [sys.executable, "-m", "eval.worker", "--config", str(cfg_path), "--model", model,
               "--benchmarks", ",".join(benchmarks), "--out", str(out), "--shard", f"{w.index}/{w.count}",
               "--gpu-share", str(conf.pipeline.eval_workers_per_gpu)]
        procs.append(StreamedProcess(cmd, env={**child_env(w.env()), SECRETS_ENV: secrets}, cwd=REPO_ROOT, log_file=out / f"worker{w.index}.log",
                                     on_line=lambda line, i=w.index: log.info("[eval worker %d] %s", i, line)))
    codes = [p.wait(conf.pipeline.poll_interval_s, lambda: None) for p in procs]
    bad = [i for i, c in enumerate(codes) if c != 0]
    if bad:
        raise RuntimeError(f"evaluation worker(s) {bad} failed (logs: {out}/worker<i>.log):\n{procs[bad[0]].tail_text()}")
    return codes


def run_slurm_workers(model: str, benchmarks: list[str], out_dir: str, conf: Config, tag: str) -> list[str]:
    """``cluster.executor: slurm``: every item generated by ``cluster.eval_jobs`` one-node jobs
    (:mod:`tasks.slurm_eval`); returns their job ids (none when there is nothing to run)."""
    from tasks.hashing import REPO_ROOT
    from tasks.launch import child_env
    from tasks.slurm_eval import run_eval_jobs
    from zppo_core.config import dump_config
    from eval.runner import finished
    from zppo_core.console import is_verbose

    log = stage_logger()
    todo = [b for b in benchmarks if not finished(model, b, out_dir, eval_cfg=conf.eval, model_cfg=conf.model)]
    if len(todo) < len(benchmarks):  # a re-run: no job for what is already scored
        log.info("eval[%s]: %d benchmark(s) already evaluated, no job for them", tag, len(benchmarks) - len(todo))
    if not todo:
        return []
    benchmarks = todo
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "eval_config.yaml"
    cfg_path.write_text(dump_config(conf, redacted=True))  # credentials go by environment, not to disk
    env = child_env({SECRETS_ENV: json.dumps(masked_values(conf.flatten())), "PYTHONUNBUFFERED": "1"})
    verbose = is_verbose()

    def on_line(text: str) -> None:
        if verbose or text.startswith("[eval job") and "zppo-eval" in text:
            log.info("%s", text)

    jobs = run_eval_jobs(conf, cfg_path, model, benchmarks, out, env, tag, on_line, str(REPO_ROOT))
    log.info("eval[%s]: generated by slurm job(s) %s", tag, ", ".join(jobs))
    return jobs


def eval_flow_for(cfg: dict[str, Any], name: str | None = None) -> Any:
    """``evaluate_model`` with a process pool sized from ``pipeline.eval_concurrency``.

    Processes, not threads: each benchmark task loads its own model, and loading models from
    several threads at once is not safe in transformers (meta-device initialisation); a process
    per task also gives every evaluation its own (GPU) memory that is freed when it ends.
    """
    n = max(1, int(cfg["pipeline"]["eval_concurrency"]))
    opts: dict[str, Any] = {"flow_run_name": name} if name else {}
    return evaluate_model.with_options(task_runner=ProcessPoolTaskRunner(max_workers=n), **opts)


__all__ = ["EVAL_TAG", "acc_key", "do_not_cache", "eval_flow_for", "eval_key", "evaluate_benchmark", "evaluate_model",
           "family_averages", "family_key"]
