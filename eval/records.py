"""Per-item record files of one benchmark run: an append-only JSONL of finished items (the
resume point) and the final parquet.

Record keys: ``item_id, subset, gold, answer_type, prompt, response, finish_reason, extracted,
rule_score, score, judge, judge_output, judge_malformed, meta, model_fingerprint, eval_config_hash`` (``meta`` JSON-encoded in the
parquet; ``rule_score``/``judge`` null when unused).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

PARTIAL = "partial.jsonl"
RECORDS = "records.parquet"
RESULT = "result.json"
#: record fields tying an answer to what produced it (see :func:`read_partial`)
STAMP_KEYS = ("model_fingerprint", "eval_config_hash")

log = logging.getLogger("zppo.eval")


def read_partial(path: Path, stamp: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Finished records by item id; a torn last line (crash mid-write) is ignored.

    With ``stamp`` (``{"model_fingerprint": ..., "eval_config_hash": ...}``) only records made by
    that model under that evaluation config are returned. When the file holds others (another
    model or config wrote into this folder), it is moved aside to ``partial.jsonl.stale-<k>``
    (nothing is deleted) and rewritten with the matching records only.
    """
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    stale = 0
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if stamp is not None and any(rec.get(k) != v for k, v in stamp.items()):
            stale += 1
            continue
        done[rec["item_id"]] = rec
    if stale:
        k = 1
        while path.with_name(f"{path.name}.stale-{k}").exists():
            k += 1
        aside = path.with_name(f"{path.name}.stale-{k}")
        log.warning("%s: %d record(s) from another model or evaluation config moved aside to %s; "
                    "they are not reused", path, stale, aside.name)
        os.replace(path, aside)
        if done:
            append_partial(path, list(done.values()))
    return done


def append_partial(path: Path, records: list[dict[str, Any]]) -> None:
    """Append finished records durably (flush + fsync) so a crash loses at most one batch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_parquet(path: Path, records: list[dict[str, Any]]) -> None:
    """Write the final per-item table."""
    import pandas as pd

    rows = [{**r, "meta": json.dumps(r.get("meta", {}), ensure_ascii=False, default=str)} for r in records]
    cols = ["item_id", "subset", "gold", "answer_type", "prompt", "response", "finish_reason", "extracted",
            "rule_score", "score", "judge", "judge_output", "judge_malformed", "meta", *STAMP_KEYS]
    pd.DataFrame(rows, columns=cols).to_parquet(path, index=False)


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
