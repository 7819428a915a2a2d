"""Curation stage: a thin Prefect task around :func:`data_prep.curate.run_curation`.

Cache key: the ``curation`` config section, the output folder, fingerprints of local source
paths, and the code version of ``data_prep`` (+ the prompt/config modules it uses). A re-run of
the pipeline with the same inputs reports this task ``Cached`` and never touches DuckDB again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from tasks.common import TrackCtx, json_safe, stage_logger
from tasks.hashing import path_fingerprint, stage_key
from tasks.retry import retry_transient
from zppo_core.config import config_from_dict

CODE = ("data_prep", "zppo_core/prompts.py", "zppo_core/config", "zppo_core/vision.py", "tasks/curate.py")


def curate_key(context: Any, parameters: dict[str, Any]) -> str:
    cur = parameters["cfg"]["curation"]
    inputs = {
        "out_dir": str(Path(parameters["out_dir"]).resolve()),
        "vero": path_fingerprint(cur["vero"]),
        "mmfr": path_fingerprint(cur["mmfr"]),
        # a local tokenizer folder decides the prompt-length filter
        "tokenizer": path_fingerprint(cur["tokenizer"]) if cur.get("tokenizer") else "",
    }
    return stage_key("curate", config=cur, inputs=inputs, packages=CODE)


def _progress(log: Any) -> Any:
    """One progress line per curation stage every ~10 % (rows done / total, elapsed, ETA)."""
    from zppo_core.console import ProgressLine

    lines: dict[str, ProgressLine] = {}

    def report(stage: str, done: int | None = None, total: int | None = None, **_: Any) -> None:
        if stage not in lines:
            lines[stage] = ProgressLine(f"curate: {stage}", "rows", log.info)
        lines[stage].update(int(done or 0), total)

    return report


@task(name="curate", cache_key_fn=curate_key, persist_result=True, result_serializer="json",
      retry_condition_fn=retry_transient)
def curate(cfg: dict[str, Any], out_dir: str, track: dict[str, Any]) -> dict[str, Any]:
    """Run the ZPPO-77K recipe into ``out_dir``; log report and counts to a ``curation`` run.

    Returns ``run_curation``'s dict (paths, counts, content_hash) plus ``run_id``.
    """
    from data_prep.curate import run_curation

    log = stage_logger()
    conf = config_from_dict(cfg)
    ctx = TrackCtx.from_dict(track)
    tracker = ctx.tracker()
    run_id = tracker.open_run(
        f"curation:{ctx.parent_run_id}", "curation", {**ctx.tags, "stage": "curation"}, ctx.parent_run_id
    )
    ok = False
    try:
        log.info("curation -> %s (synthetic=%s)", out_dir, conf.curation.synthetic)
        res = run_curation(_sources(conf.curation, Path(out_dir), log), out_dir, progress=_progress(log))
        tracker.log_params(run_id, {f"curation.{k}": v for k, v in cfg["curation"].items()})
        counts = res.get("counts") or {}
        tracker.log_metrics(run_id, _flat_counts(counts, "curation/"))
        for key in ("report_json", "report_md"):
            if res.get(key):
                tracker.log_artifact(run_id, res[key], "curation")
        ok = True
        out = json_safe(res)
        out["run_id"] = run_id
        kept = sum(c.get("kept", 0) for c in counts.values() if isinstance(c, dict))
        log.info("curation done: %d rows kept, content hash %s", kept, str(res.get("content_hash"))[:16])
        return out
    finally:
        tracker.finish(run_id, ok)


def _sources(cur: Any, out: Path, log: Any) -> Any:
    """With ``curation.synthetic``, generate both sources offline (real schemas) under
    ``<out>/sources`` first, exactly as ``zppo curate --synthetic`` does; else the config as is."""
    if not cur.synthetic:
        return cur
    from data_prep.synthetic import synthetic_mmfr_rows, with_synthetic_sources

    log.info("curation: generating offline sources (%s world: %d Vero rows, %d MMFineReason rows)",
             cur.synthetic_world, cur.synthetic_scale, synthetic_mmfr_rows(cur.synthetic_scale))
    return with_synthetic_sources(cur, out / "sources", progress=_progress(log))


def _flat_counts(counts: Any, prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(counts, dict):
        for k, v in counts.items():
            out.update(_flat_counts(v, f"{prefix}{k}/"))
    elif isinstance(counts, (int, float)) and not isinstance(counts, bool):
        out[prefix.rstrip("/")] = float(counts)
    return out


__all__ = ["curate", "curate_key"]
