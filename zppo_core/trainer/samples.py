"""Sample completions of each step, for reading: a few rollouts per group kind (plain, BCQ, NCQ)
with their full prompt (so the BCQ candidates / NCQ wrong answers are visible), the response and
its reward, appended by rank 0 to ``<output_dir>/samples.jsonl``. The pipeline logs them to
MLflow as a table. ``tracking.samples_per_kind`` per kind and step (0 = none).

Runs of one repeated special token (image placeholders: hundreds of ``<|image_pad|>``) are
collapsed to ``<|image_pad|>×N`` so a prompt stays readable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

SAMPLES_FILE = "samples.jsonl"
KINDS = ("plain", "bcq", "ncq")
_RUN = re.compile(r"(<\|[^|<>]+\|>)\1{3,}")


def collapse_runs(text: str) -> str:
    """``"a<|x|><|x|><|x|><|x|>b"`` -> ``"a<|x|>×4b"`` (runs of 4 or more)."""
    return _RUN.sub(lambda m: f"{m.group(1)}×{len(m.group(0)) // len(m.group(1))}", text)


def sample_rows(rollouts: Sequence[Any], decode: Callable[[list[int]], str], step: int,
                per_kind: int, gold: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The first ``per_kind`` rollouts of each kind, in rollout order, as plain rows whose columns
    read left to right as a reader checks a sample: step, kind, reward, the gold answer, the
    response, then the (long) prompt, the question id and the finish reason.

    ``rollouts``: :class:`zppo_core.trainer.batch.Rollout` (``kind``, ``question_id``,
    ``prompt_ids``, ``response_ids``, ``reward``, ``finish_reason``); ``decode``: token ids -> text;
    ``gold``: question id -> gold answer ("" when unknown).
    """
    rows: list[dict[str, Any]] = []
    taken = dict.fromkeys(KINDS, 0)
    for r in rollouts:
        if taken.get(r.kind, per_kind) >= per_kind:
            continue
        taken[r.kind] += 1
        rows.append({"step": step, "kind": r.kind, "reward": float(r.reward),
                     "gold": str((gold or {}).get(r.question_id, "")), "response": decode(list(r.response_ids)),
                     "prompt": collapse_runs(decode(list(r.prompt_ids))), "question_id": r.question_id,
                     "finish_reason": r.finish_reason})
    return rows


def append_samples(output_dir: str | Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with (Path(output_dir) / SAMPLES_FILE).open("a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


__all__ = ["KINDS", "SAMPLES_FILE", "append_samples", "collapse_runs", "sample_rows"]
