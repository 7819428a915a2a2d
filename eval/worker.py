"""One evaluation worker process: ``python -m eval.worker --config C --model M --benchmarks a,b
--out O --shard W/N [--set K=V]``. Started by the evaluation stage with ``CUDA_VISIBLE_DEVICES`` pinning it
to its GPU (:mod:`eval.placement`); builds one engine for the model and generates its share
(items ``W::N``) of every benchmark (:func:`eval.runner.evaluate_suite`)."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.worker")
    p.add_argument("--config", required=True, help="resolved run config (YAML)")
    p.add_argument("--model", required=True)
    p.add_argument("--benchmarks", required=True, help="comma list of abbreviations")
    p.add_argument("--out", required=True)
    p.add_argument("--shard", required=True, help="W/N: this worker's index and the worker count")
    p.add_argument("--gpu-share", type=int, default=1, help="engines sharing this worker's GPU")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override (repeatable), e.g. the judge a Slurm job serves itself")
    args = p.parse_args(argv)
    from eval.runner import evaluate_suite
    from zppo_core.config import load_config, parse_overrides
    from zppo_core.redact import secrets_from_env

    w, n = (int(x) for x in args.shard.split("/"))
    # the file is masked; real values by environment
    cfg = load_config(args.config, {**secrets_from_env(), **parse_overrides(args.set)})
    res = evaluate_suite(args.model, [b for b in args.benchmarks.split(",") if b], args.out, eval_cfg=cfg.eval,
                         model_cfg=cfg.model, shard=(w, n), max_items=cfg.eval.max_items or None,
                         gpu_share=args.gpu_share)
    print(json.dumps({"shard": [w, n], "done": {k: v.get("n_done") for k, v in res.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
