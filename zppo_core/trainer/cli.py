"""``zppo train --config configs/tiny.yaml [--method zppo] [--max-steps N] [--output DIR]``.

``zppo train`` runs the trainer in this one process (CPU, one GPU, or a quick check).
``accelerate launch [--config_file configs/accelerate/...] -m zppo_core.trainer.cli --config ...``
runs the same module once per rank (FSDP across GPUs / nodes; only rank 0 prints and writes);
this is what the pipeline's training stage starts when ``pipeline.launcher`` is ``accelerate``.

Exit codes: 0 done (or nothing left to do); 2 a config error, missing training data, or a
checkpoint made by another method/config (``--force-new`` or another ``--output`` to proceed);
3 the output folder is in use by another writer (its PID is printed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from zppo_core.redact import SECRETS_ENV



#: what an interrupted ``zppo train`` leaves (the line :mod:`flows.zppo_cli` prints on Ctrl-C)
INTERRUPT_KEPT = "the checkpoints saved so far are kept in the output folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML config (e.g. configs/tiny.yaml)")
    from zppo_core.config import METHODS

    p.add_argument("--method", default=None, help=f"override zppo.method ({', '.join(METHODS)})")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this rollout step")
    p.add_argument("--output", default=None, help="run folder (default: the config's output_dir/train)")
    p.add_argument("--run-id", default=None, help="tracking run id to store in checkpoints")
    p.add_argument("--force-new", action="store_true",
                   help="start the output folder over instead of continuing its checkpoints (required when they "
                        "were made by another method or configuration); previous outputs move to superseded-<time>/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override, YAML value (repeatable), e.g. --set algo.iterations=1")


def _overrides(args: argparse.Namespace) -> dict:
    from zppo_core.config import parse_overrides

    # real values of settings masked in the config file (set by the pipeline's training stage)
    over = {**json.loads(os.environ.get(SECRETS_ENV) or "{}"), **parse_overrides(args.set)}
    if args.method:
        over["zppo.method"] = args.method
    return over


def run(args: argparse.Namespace) -> int:
    """Expected errors (config, model spec, missing path) propagate as exceptions; ``zppo`` and
    :func:`main` print them as one line (:func:`zppo_core.errors.guarded`)."""
    from zppo_core.config import load_config
    from zppo_core.console import ProgressLine, configure
    from zppo_core.preflight import PreflightError, Probe, check_vllm, spec_problem
    from zppo_core.trainer import train

    configure(verbose=bool(getattr(args, "verbose", False)) or None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = load_config(args.config, _overrides(args))
    why = spec_problem(cfg.model.student, "model.student", Probe())
    vllm = check_vllm(cfg, "train", Probe())
    if why or not vllm.ok:
        raise PreflightError(why or f"vllm: {vllm.detail}")
    out = args.output or f"{cfg.output_dir}/train"
    end = min(cfg.schedule.total_steps, args.max_steps or cfg.schedule.total_steps)
    line = ProgressLine(f"train {cfg.zppo.method}", "steps", lambda t: print(t, flush=True), every=0.0)

    first = [True]

    def show(step: int, m: dict) -> None:
        if first[0]:  # the pace counts training steps, not the model build before them
            line.restart_pace(step - 1, m["perf/step_time_s"])
            first[0] = False
        line.update(step, end)
        print(f"  reward/plain_mean={m['reward/plain_mean']:.3f} train/loss={m['train/loss']:.4f} "
              f"bcq={m['zppo/bcq_count']:.0f} ncq={m['zppo/ncq_count']:.0f} buffer={m['buffer/size']:.0f} "
              f"step_time={m['perf/step_time_s']:.1f}s", flush=True)

    from zppo_core.locks import FolderBusy
    from zppo_core.trainer.data import DataError
    from zppo_core.trainer.resume import ResumeMismatch

    try:
        res = train(cfg, out, max_steps=args.max_steps, callbacks=[show], run_id=args.run_id,
                    force_new=args.force_new)
    except FolderBusy as e:
        print(f"zppo train: {e}", file=sys.stderr)
        return 3
    except (ResumeMismatch, DataError) as e:
        print(f"zppo train: {e}", file=sys.stderr)
        return 2
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(json.dumps({k: v for k, v in res.items() if k != "last_metrics"}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zppo train", description="ZPPO / GRPO trainer (Algorithm 1)")
    add_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="show third-party progress bars and warnings")
    from zppo_core.errors import guarded

    try:
        code = guarded("train", run, p.parse_args(argv))
    except BaseException:
        if "torch" in sys.modules:  # a run that got as far as torch may have a process group
            from zppo_core.trainer.distributed import close_process_group

            close_process_group(barrier=False)  # another rank may never arrive at a barrier
        raise
    if "torch" in sys.modules:
        from zppo_core.trainer.distributed import finish_rank

        return finish_rank(code)  # a launched rank leaves here (see finish_rank)
    return code


if __name__ == "__main__":
    sys.exit(main())
