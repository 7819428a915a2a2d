"""Training stage: a Prefect task that launches the trainer as a subprocess.

* The command comes from :func:`tasks.launch.build_command` (``accelerate launch`` on GPU
  clusters, plain ``python -m zppo_core.trainer.cli`` on CPU); its output is streamed to the task log
  and to ``<train_dir>/train.log``.
* While it runs, new rows of ``<train_dir>/metrics.jsonl`` are logged to the (student, method,
  seed) MLflow run with their ``step``. The run id is stored in every checkpoint by the trainer;
  a resumed stage reads it back (``latest_run_id``) and continues the same run, skipping steps
  that run already has (no duplicate step metrics).
* The run is named ``<method> · <student> · s<seed>`` with ``method``/``student``/``seed`` params;
  at the end it gets the resolved config, ``metrics.jsonl``, its curves and the sample
  completions (``samples.jsonl``, BCQ/NCQ prompts included) as an MLflow table. The console
  shows one progress line per step with an ETA; the trainer's own output is in ``train.log``
  (and on the console with ``--verbose``).
* Teacher / judge servers (:mod:`tasks.servers`): a URL that answers is used; otherwise, with
  ``model.teacher_gpus`` / ``judge_gpus`` set, the stage starts ``vllm serve`` there, waits for
  health and stops it by PID when the trainer ends or fails. On a GPU node the trainer gets one
  rank per remaining GPU (``accelerate launch --num_processes``, ``CUDA_VISIBLE_DEVICES``).
* A collective hang (NCCL / gloo / rendezvous timeout in the log) fails once with the stalled
  rank named (:func:`tasks.retry.hang_report`); it is not retried as transient.
* Cache key: the resolved per-run config, the curated data's content hash, the code version of
  ``zppo_core``. A failed stage is not cached, so a re-run relaunches the trainer, which resumes
  from its latest checkpoint.

Fault injection (documented switch, used by the resume test): with
``ZPPO_FAULT_TRAIN_AFTER_STEP=k`` in the environment, the stage SIGKILLs the trainer once step
``k`` is in metrics.jsonl and a checkpoint exists, then fails with :class:`InjectedFault`
(deterministic, so it is not retried).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prefect import task

from tasks.common import TrackCtx, json_safe, run_name, stage_logger, stage_tag
from tasks.hashing import REPO_ROOT, path_fingerprint, stage_key
from tasks.launch import StreamedProcess, build_command, child_env
from tasks.evaluate import visible_gpu_count
from tasks.retry import CollectiveHang, InjectedFault, TransientStageError, classify_log, hang_report, retry_transient
from tasks.servers import check_local_reserved, managed_servers, plan_servers, training_gpus
from tasks.tracking import read_jsonl, run_params
from zppo_core.console import ProgressLine
from zppo_core.config import config_from_dict, dump_config
from zppo_core.placement import device_env
from zppo_core.redact import SECRETS_ENV, masked_values

FAULT_ENV = "ZPPO_FAULT_TRAIN_AFTER_STEP"
RUN_ID_ENV = "ZPPO_TRACKING_RUN_ID"
CODE = ("zppo_core", "tasks/train.py", "tasks/launch.py", "tasks/servers.py", "tasks/slurm.py", "tasks/slurm_node.py",
        "tasks/slurm_script.py", "tasks/slurm_train.py")
#: the config sections that determine a training run's output
TRAIN_SECTIONS = ("model", "rollout", "zppo", "algo", "optim", "schedule", "parallel", "data")


def train_key(context: Any, parameters: dict[str, Any]) -> str:
    cfg = parameters["cfg"]
    pipe = cfg["pipeline"]
    model = cfg["model"]
    inputs = {
        "data": parameters["data_hash"], "out": str(Path(parameters["train_dir"]).resolve()),
        # the launcher and its accelerate config decide the number of processes, sharding and
        # precision, hence the numbers; local model folders are fingerprinted (a spec as itself)
        "launcher": pipe["launcher"],
        "accelerate_config": path_fingerprint(_abs(pipe["accelerate_config"])) if pipe["launcher"] == "accelerate"
        else "",
        "student": path_fingerprint(model["student"]), "teacher": path_fingerprint(model["teacher"]),
        "judge": path_fingerprint(model["judge"]),
    }
    clu = cfg.get("cluster", {})
    if clu.get("executor", "local") == "slurm":  # nodes x ranks decide the world size, hence the numbers
        inputs["layout"] = [clu["nodes"], clu["gpus_per_node"], clu["serve_gpus_per_node"]]
    # only the sections training reads: tracking, the sweep (pipeline), curation and eval
    # settings do not change what training produces (adding a benchmark must not retrain)
    conf = {k: v for k, v in cfg.items() if k in TRAIN_SECTIONS}
    return stage_key("train", config=conf, inputs=inputs, packages=CODE)


def _fault_step() -> int | None:
    raw = os.environ.get(FAULT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(f"{FAULT_ENV}={raw!r}: expected a step number")
    return int(raw)


def _open_training_run(ctx: TrackCtx, cfg: dict[str, Any], train_dir: Path, lab: dict[str, str]) -> str:
    from zppo_core.trainer.checkpoint import latest_run_id

    tracker = ctx.tracker()
    tags = {**ctx.tags, **lab, "stage": "train", "run_config_hash": config_from_dict(cfg).hash()}
    rid = tracker.open_run(f"train:{train_dir.resolve()}", run_name(lab), tags, ctx.parent_run_id,
                           run_id=latest_run_id(train_dir))
    tracker.log_params(rid, {**run_params(lab), **config_from_dict(cfg).flatten()})
    return rid


def log_run_artifacts(tracker: Any, run_id: str, out: Path, label: str) -> None:
    """What a reader of one training run wants beside its metrics: the resolved config, the
    step metrics file, its reward / replay-buffer curves and the sample completions as a table."""
    from tasks import plots
    from zppo_core.trainer.samples import SAMPLES_FILE

    tracker.log_artifact(run_id, out / "config.yaml", "config")
    tracker.log_artifact(run_id, out / "metrics.jsonl", "metrics")
    rows = read_jsonl(out / "metrics.jsonl")
    if rows:
        for name, fig in (("reward_curves.png", plots.reward_curves({label: rows})),
                          ("replay_buffer.png", plots.buffer_curves({label: rows}))):
            tracker.log_figure(run_id, fig, f"plots/{name}")
            plots.close(fig)
    samples = read_jsonl(out / SAMPLES_FILE)
    tracker.log_table(run_id, samples, "samples/completions.json")


@task(name="train", cache_key_fn=train_key, persist_result=True, result_serializer="json",
      retry_condition_fn=retry_transient)
def train(cfg: dict[str, Any], train_dir: str, data_hash: str, track: dict[str, Any],
          lab: dict[str, str]) -> dict[str, Any]:
    """Train one (student, method, seed); return paths, step count, last metrics and run id."""
    from zppo_core.trainer.checkpoint import list_checkpoints

    log = stage_logger()
    conf = config_from_dict(cfg)
    out = Path(train_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.yaml"
    cfg_path.write_text(dump_config(conf, redacted=True))  # credentials go by environment, not to disk
    secrets = masked_values(conf.flatten())
    ctx = TrackCtx.from_dict(track)
    tracker = ctx.tracker()
    run_id = _open_training_run(ctx, cfg, out, lab)
    ckpts = list_checkpoints(out)
    resumed_from = ckpts[-1][0] if ckpts else 0
    tag = f"train[{stage_tag(lab)}]"
    if resumed_from:
        log.info("%s: resuming from checkpoint step %d", tag, resumed_from)
    total = conf.schedule.total_steps
    fault = _fault_step()
    metrics_path = out / "metrics.jsonl"
    state: dict[str, Any] = {"seen": resumed_from}
    line = ProgressLine(tag, "steps", log.info, every=0.0, start=resumed_from)

    def tick() -> None:
        rows = read_jsonl(metrics_path)
        tracker.log_step_rows(run_id, rows)
        step = max((int(r["step"]) for r in rows), default=0)
        if step > state["seen"]:
            if state["seen"] == resumed_from:  # first step of this launch: pace from its step time
                line.restart_pace(step - 1, float(rows[-1].get("perf/step_time_s", 0.0)))
            state["seen"] = step
            line.update(step, total)
        if fault is not None and step >= fault and list_checkpoints(out) and "kill" in state:
            state["kill"]()
            raise InjectedFault(f"{FAULT_ENV}={fault}: trainer killed after step {step}")

    ok = False
    try:
        if conf.cluster.executor == "slurm":
            servers, tail = [], _train_on_slurm(conf, cfg_path, out, run_id, secrets, stage_tag(lab), tick, tracker)
        else:
            servers, tail = _train_locally(conf, cfg_path, out, run_id, secrets, tick, state)
        result = _collect(out, run_id, resumed_from, _last_json_line(tail))
        log_run_artifacts(tracker, run_id, out, stage_tag(lab))
        result["servers_started"] = servers  # stopped by PID when the with-block ended
        if conf.cluster.executor == "slurm":
            from tasks.slurm import JobRecord

            result["slurm_jobs"] = JobRecord.load(out).jobs  # every job id the stage had, last = the one that ran
        if result.get("parallel"):  # the layout the trainer used (the config may say "auto")
            par = result["parallel"]
            tracker.log_params(run_id, {"parallel.layout": par["strategy"], "parallel.world_size": par["world_size"]})
        _log_dashboards(tracker, run_id, out, lab)
        ok = True
        return result
    finally:
        tracker.finish(run_id, ok)


def _train_locally(conf: Any, cfg_path: Path, out: Path, run_id: str, secrets: dict[str, Any], tick: Any,
                   state: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The trainer as a subprocess of this host (``cluster.executor: local``), its teacher/judge
    servers started here; returns the servers started and the last lines of its output."""
    log = stage_logger()
    with managed_servers(conf, out / "servers", on_gpu=visible_gpu_count() > 0) as started:
        servers = [{"model": srv.cfg.served_model_name, "url": srv.base_url, "pid": srv.pid,
                    "gpus": srv.cfg.env.get("CUDA_VISIBLE_DEVICES", ""), "log": str(srv.log_path)} for srv in started]
        for srv in servers:
            log.info("started vllm serve %s at %s on GPUs %s (pid %s)", srv["model"], srv["url"], srv["gpus"] or "-",
                     srv["pid"])
        cmd, env, world = _trainer_launch(conf, cfg_path, out, run_id)
        if secrets:  # credentials reach the trainer by environment, never through config.yaml
            env[SECRETS_ENV] = json.dumps(secrets)
        proc = StreamedProcess(cmd, env=child_env(env), cwd=REPO_ROOT, on_line=_forward(log),
                               log_file=out / "train.log")
        state["kill"] = proc.kill
        rc = proc.wait(conf.pipeline.poll_interval_s, tick)
    if rc != 0:
        tail = proc.tail_text()
        hang = hang_report(tail, world)
        if hang:  # the same collective would hang again: report once, no retry
            log.error("%s", hang)
            raise CollectiveHang(f"{hang} (log: {out / 'train.log'})")
        err = TransientStageError if classify_log(tail) else RuntimeError
        raise err(f"trainer exited with code {rc} (log: {out / 'train.log'}):\n{tail}")
    return servers, list(proc.tail)


def _train_on_slurm(conf: Any, cfg_path: Path, out: Path, run_id: str, secrets: dict[str, Any], tag: str, tick: Any,
                    tracker: Any) -> list[str]:
    """One Slurm job of ``cluster.nodes`` nodes (:mod:`tasks.slurm_train`): submitted, or attached
    to when a previous attempt's job still runs; its id is a tag of the MLflow run."""
    from tasks.slurm_train import run_training_job

    log = stage_logger()
    env = {RUN_ID_ENV: run_id}
    if secrets:  # by environment (sbatch exports it to the job), never through a file
        env[SECRETS_ENV] = json.dumps(secrets)

    def on_submit(job_id: str) -> None:
        log.info("train[%s]: slurm job %s (%d node(s)), log %s", tag, job_id, conf.cluster.nodes,
                 out / f"slurm-{job_id}.log")
        tracker.client.set_tag(run_id, "slurm_job_id", job_id)

    def on_attach(info: Any) -> None:  # a retried stage whose job still runs: no second job
        log.info("train[%s]: attached to slurm job %s (%s); nothing submitted", tag, info.job_id, info.state)

    _info, tail = run_training_job(conf, cfg_path, out, run_id, _abs(conf.pipeline.accelerate_config),
                                   child_env(env), tag, _forward(log), tick, on_submit, str(REPO_ROOT), on_attach)
    return tail


def _log_dashboards(tracker: Any, run_id: str, out: Path, lab: dict[str, str]) -> None:
    """Dashboards (PNG + offline HTML) and the candidate-match audit files on the training run."""
    from tasks.dashboards import log_training_dashboards

    try:
        log_training_dashboards(tracker, run_id, out, f"{lab['student']} / {lab['method']} / seed{lab['seed']}")
    except Exception as e:  # noqa: BLE001 - a figure never fails a finished training
        stage_logger().warning("dashboards of %s not logged: %s", out, e)


def _forward(log: Any) -> Any:
    """Trainer output goes to ``train.log``; on the console only with ``--verbose`` (the stage
    prints its own progress line, and a failure carries the log's tail)."""
    from zppo_core.console import is_verbose

    verbose = is_verbose()

    def on_line(text: str) -> None:
        if verbose and text.strip():
            log.info("[trainer] %s", text)

    return on_line


def _trainer_launch(conf: Any, cfg_path: Path, out: Path, run_id: str) -> tuple[list[str], dict[str, str], int | None]:
    """Trainer command, extra environment and rank count: on a GPU node, one rank per GPU left
    after the teacher/judge servers' reservations (pinned by CUDA_VISIBLE_DEVICES)."""
    env = {RUN_ID_ENV: run_id}
    world = None
    visible = visible_gpu_count()
    if visible and conf.pipeline.launcher == "accelerate":
        plans = plan_servers(conf)
        check_local_reserved(plans, visible)
        gpus = training_gpus(visible, plans)
        world = len(gpus)
        env.update(device_env(gpus, os.environ))  # through an existing mask, in its device order
    cmd = build_command(cfg_path, out, launcher=conf.pipeline.launcher,
                        accelerate_config=_abs(conf.pipeline.accelerate_config), run_id=run_id, num_processes=world)
    return cmd, env, world


def _abs(path: str) -> str:
    if not path:
        return ""
    p = Path(path)
    return str(p if p.is_absolute() else REPO_ROOT / p)


def _last_json_line(lines: Any) -> dict[str, Any]:
    """The trainer CLI prints ``train()``'s result as one JSON line at the end (rank 0)."""
    for line in reversed(list(lines)):
        line = line.strip()
        if line.startswith("{") and '"final_model"' in line:
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return {}


def _collect(out: Path, run_id: str, resumed_from: int, printed: dict[str, Any]) -> dict[str, Any]:
    """The stage's return value: the trainer's printed result, completed from its files."""
    from zppo_core.trainer.checkpoint import list_checkpoints, read_state

    rows = read_jsonl(out / "metrics.jsonl")
    res: dict[str, Any] = dict(printed)
    ckpts = list_checkpoints(out)
    res.setdefault("checkpoint_dir", str(ckpts[-1][1]) if ckpts else "")
    res.setdefault("final_model", _final_model(out, ckpts))
    res.setdefault("metrics_path", str(out / "metrics.jsonl"))
    res.setdefault("steps", max((int(r["step"]) for r in rows), default=0))
    res.setdefault("last_metrics", rows[-1] if rows else {})
    if ckpts and "parallel" not in res:
        res["parallel"] = read_state(ckpts[-1][1]).get("parallel")
    res["run_id"] = run_id
    res["resumed_from_step"] = resumed_from
    res["train_dir"] = str(out)
    if not res["final_model"] or not Path(res["final_model"]).exists():
        raise RuntimeError(f"trainer finished but no final model was found under {out}")
    return json_safe(res)


def _final_model(out: Path, ckpts: list[tuple[int, Path]]) -> str:
    for cand in (out / "final_model", out / "final"):
        if (cand / "config.json").exists():
            return str(cand)
    if ckpts and (ckpts[-1][1] / "model" / "config.json").exists():
        return str(ckpts[-1][1] / "model")
    return ""


__all__ = ["FAULT_ENV", "RUN_ID_ENV", "train", "train_key"]
