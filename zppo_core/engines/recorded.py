"""Recorded backend: replays stored responses (the offline teacher).

This is a *documented departure* from the paper, which samples the teacher online. Offline we
replay responses that were recorded by a real teacher, e.g. MMFineReason's
``qwen3vl_235b_thinking_response`` column (carried as ``teacher_response`` in the curated
parquet). Lookup order for each request:

1. ``request.request_id`` in the ``by_id`` table;
2. the text of the last user message (whitespace-normalised) in the ``by_question`` table.

A request with nothing recorded gets ``n`` empty-text samples with ``finish_reason="missing"``
(the caller decides what that means: the ZPPO trainer counts the teacher as having failed on
that question, so no BCQ is built from it). When ``n`` exceeds the number of stored responses
they are cycled deterministically: sample ``j`` is response ``j % len(responses)``.

Token ids are produced with ``tokenizer`` when given (so lengths can be counted); log-probs are
``None`` (a recording has none).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zppo_core.engines.base import BackendError, GenerationRequest, Sample, SamplingParams

MISSING = "missing"


def normalize_question(text: str) -> str:
    """Collapse whitespace so a question matches however the prompt was wrapped."""
    return " ".join(str(text).split())


def last_user_text(request: GenerationRequest) -> str:
    """Text of the last ``user`` message (text parts joined) of ``request``."""
    for msg in reversed(request.messages):
        if msg.get("role") != "user":
            continue
        content = msg.get("content", "")
        if isinstance(content, str):
            return content
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _as_list(value: Any, where: str) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # null in parquet
        return []
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy array from a list column
        value = value.tolist()
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        out = [v for v in value if isinstance(v, str)]
        if len(out) != len(value):
            raise BackendError(f"recorded backend: {where}: every response must be a string")
        return out
    raise BackendError(f"recorded backend: {where}: expected a string or list of strings")


class RecordedBackend:
    """Replays stored responses keyed by request id or by question text."""

    def __init__(
        self,
        by_id: Mapping[str, Any] | None = None,
        by_question: Mapping[str, Any] | None = None,
        *,
        tokenizer: Any = None,
    ) -> None:
        self.by_id = {str(k): _as_list(v, f"id {k!r}") for k, v in (by_id or {}).items()}
        self.by_question = {
            normalize_question(k): _as_list(v, f"question {k[:40]!r}")
            for k, v in (by_question or {}).items()
        }
        self.tokenizer = tokenizer

    # -- construction from data ---------------------------------------------------------------
    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        *,
        id_key: str = "id",
        question_key: str = "question",
        response_key: str = "teacher_response",
        tokenizer: Any = None,
    ) -> "RecordedBackend":
        """Build from records (e.g. the curated parquet's rows); rows with no response are skipped."""
        by_id: dict[str, list[str]] = {}
        by_q: dict[str, list[str]] = {}
        for i, row in enumerate(rows):
            if response_key not in row:
                raise BackendError(f"recorded backend: row {i} has no {response_key!r} field")
            resp = _as_list(row[response_key], f"row {i} field {response_key!r}")
            if not resp:
                continue
            if row.get(id_key) not in (None, ""):
                by_id.setdefault(str(row[id_key]), []).extend(resp)
            if row.get(question_key):
                by_q.setdefault(str(row[question_key]), []).extend(resp)
        return cls(by_id, by_q, tokenizer=tokenizer)

    @classmethod
    def from_file(cls, path: str | Path, **kw: Any) -> "RecordedBackend":
        """Load ``.parquet`` (via pandas) or ``.jsonl`` records; see :meth:`from_rows`."""
        path = Path(path)
        if not path.is_file():
            raise BackendError(f"recorded backend: file not found: {path}")
        if path.suffix == ".parquet":
            import pandas as pd

            try:
                rows = pd.read_parquet(path).to_dict("records")
            except Exception as e:  # noqa: BLE001 - pyarrow raises many types; name the file
                raise BackendError(f"recorded backend: {path}: cannot read parquet: {type(e).__name__}: {e}") from None
        elif path.suffix in (".jsonl", ".json"):
            rows = []
            for ln, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise BackendError(f"recorded backend: {path}:{ln}: bad JSON ({e})") from e
        else:
            raise BackendError(f"recorded backend: {path}: expected .parquet or .jsonl")
        return cls.from_rows(rows, **kw)

    # -- protocol -------------------------------------------------------------------------------
    def lookup(self, request: GenerationRequest) -> list[str]:
        if request.request_id and request.request_id in self.by_id:
            return self.by_id[request.request_id]
        return self.by_question.get(normalize_question(last_user_text(request)), [])

    def _sample(self, text: str, params: SamplingParams) -> Sample:
        if self.tokenizer is None:
            return Sample(text=text, token_ids=[], logprobs=None, finish_reason="stop")
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) > params.max_new_tokens:  # the recording is longer than the budget
            ids = ids[: params.max_new_tokens]
            return Sample(self.tokenizer.decode(ids), ids, None, "length")
        return Sample(text=text, token_ids=ids, logprobs=None, finish_reason="stop")

    def generate(
        self, requests: list[GenerationRequest], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        out: list[list[Sample]] = []
        for req in requests:
            stored = self.lookup(req)
            if not stored:
                out.append([Sample("", [], None, MISSING, req.prompt_ids) for _ in range(n)])
                continue
            out.append([self._sample(stored[j % len(stored)], params) for j in range(n)])
        return out
