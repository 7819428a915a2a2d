"""ZPPO-77K curation: sources -> DuckDB stages -> ``zppo77k.parquet`` + images + report.

Entry point :func:`run_curation` (contract in docs/ARCHITECTURE.md, "Curated data"). Outputs in
``out_dir``: ``curation.duckdb`` (raw tables, ``work``, ``stages``, ``zppo77k``, ``rejected``),
``zppo77k.parquet``, ``images/<blake2b>.<ext>`` (each kept image written once), and
``report.json`` / ``report.md``. Library code reports progress only through ``progress(stage,
done, total)``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from data_prep import stages
from data_prep.export import export_outputs
from data_prep.imaging import AspectRatioError, image_tokens
from data_prep.ingest import ingest_all
from data_prep.report import build_report, write_report
from data_prep.sources import SourcePart, resolve_source
from data_prep.tokens import TokenCounter, resolve_counter
from zppo_core.config import CurationConfig
from zppo_core.prompts import strip_format_directives, strip_image_tags

Progress = Callable[[str, int, "int | None"], None]


class CurationError(RuntimeError):
    """Curation cannot run (no sources, bad config value)."""


#: every pattern of ``zppo_core.prompts.strip_format_directives`` contains one of these words
#: (case-folded); a text without any of them cannot hold a directive, so the (costly, ~0.3 ms)
#: directive regex is skipped for it. tests/data_prep/test_questions.py checks the equivalence.
DIRECTIVE_KEYWORDS: tuple[str, ...] = ("step", "answer", "think", "boxed", "fbox")


def clean_question(raw: str) -> str:
    """Question text as stored: ``<image>`` tags and upstream format directives removed."""
    folded = raw.lower() if raw.isascii() else raw.casefold()
    if any(k in folded for k in DIRECTIVE_KEYWORDS):
        raw = strip_format_directives(raw)
    return strip_image_tags(raw, numbered=True)


def _clean_chunk(texts: list[str]) -> list[str]:
    return [clean_question(t) for t in texts]


def clean_questions(texts: list[str], *, workers: int, chunk: int) -> list[str]:
    """:func:`clean_question` over ``texts`` (distinct texts once; ``workers`` processes)."""
    distinct = list(dict.fromkeys(texts))
    chunks = [distinct[i : i + chunk] for i in range(0, len(distinct), chunk)]
    if workers > 1 and len(chunks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as ex:
            cleaned = [c for part in ex.map(_clean_chunk, chunks) for c in part]
    else:
        cleaned = [c for part in map(_clean_chunk, chunks) for c in part]
    table = dict(zip(distinct, cleaned))
    return [table[t] for t in texts]


def _alive(con: duckdb.DuckDBPyConnection, cols: str) -> pa.Table:
    return con.sql(f"SELECT uid, {cols} FROM work WHERE reason IS NULL ORDER BY uid").to_arrow_table()


def _strip_rows(con: duckdb.DuckDBPyConnection, cfg: CurationConfig, where: str) -> int:
    """Set ``question`` (stripped) and ``qkey`` for alive rows matching ``where``; returns rows."""
    tbl = con.sql(f"SELECT uid, question_raw FROM work WHERE reason IS NULL AND question IS NULL AND ({where})").to_arrow_table()
    if tbl.num_rows == 0:
        return 0
    out = clean_questions(tbl.column("question_raw").to_pylist(), workers=cfg.threads, chunk=max(1, cfg.batch_rows // 4))
    stages.set_column(con, "question", pa.table({"uid": tbl.column("uid"), "value": pa.array(out, pa.string())}))
    con.execute(
        "UPDATE work SET qkey = md5(lower(regexp_replace(question, '\\s+', ' ', 'g'))) "
        "WHERE reason IS NULL AND qkey IS NULL AND question IS NOT NULL"
    )
    return tbl.num_rows


def dedup_stage(con: duckdb.DuckDBPyConnection, cfg: CurationConfig) -> None:
    """Cross-source (question, image) dedup. Only rows sharing an image hash across the sources
    can be duplicates, so only those questions are stripped here (both sides)."""
    _strip_rows(con, cfg, stages.SHARED_IMAGE)
    stages.run_stage(con, "question_missing", "empty after stripping <image> and format directives", "question = ''")
    stages.run_stage(con, "dedup", "question_image: same question and image hash as a Vero row", stages.QUESTION_DEDUP)


def _image_token_table(con: duckdb.DuckDBPyConnection, cfg: CurationConfig) -> pa.Table:
    sizes = con.execute("SELECT DISTINCT height, width FROM work WHERE reason IS NULL AND height IS NOT NULL").fetchall()
    hs, ws, toks = [], [], []
    for h, w in sizes:
        try:
            t = image_tokens(
                h, w, patch_size=cfg.patch_size, merge_size=cfg.merge_size,
                min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels, max_ratio=cfg.max_aspect_ratio,
            )
        except AspectRatioError:  # already dropped by image_aspect_ratio; keep the table total
            t = None
        hs.append(h)
        ws.append(w)
        toks.append(t)
    return pa.table({"height": pa.array(hs, pa.int32()), "width": pa.array(ws, pa.int32()), "tokens": pa.array(toks, pa.int64())})


def _count_tokens(con: duckdb.DuckDBPyConnection, cfg: CurationConfig, counter: TokenCounter) -> int:
    """``prompt_tokens`` of alive rows with a stripped question and no count yet."""
    tbl = con.sql("SELECT uid, question FROM work WHERE reason IS NULL AND question IS NOT NULL AND prompt_tokens IS NULL").to_arrow_table()
    if tbl.num_rows == 0:
        return 0
    questions = tbl.column("question").to_pylist()
    distinct = list(dict.fromkeys(questions))
    counts: dict[str, int] = {}
    for i in range(0, len(distinct), max(1, cfg.batch_rows)):
        chunk = distinct[i : i + cfg.batch_rows]
        counts.update(zip(chunk, counter.counts(chunk).tolist()))
    text = np.fromiter((counts[q] for q in questions), dtype=np.int64, count=len(questions))
    con.register("text_tokens", pa.table({"uid": tbl.column("uid"), "value": pa.array(text + counter.overhead())}))
    con.register("image_token_lut", _image_token_table(con, cfg))
    con.execute(
        "UPDATE work SET prompt_tokens = t.value + l.tokens FROM text_tokens t, image_token_lut l "
        "WHERE work.uid = t.uid AND work.height = l.height AND work.width = l.width"
    )
    # a text-only row (kept when curation.require_images is false) has no image tokens
    con.execute("UPDATE work SET prompt_tokens = t.value FROM text_tokens t WHERE work.uid = t.uid AND work.height IS NULL")
    con.unregister("image_token_lut")
    con.unregister("text_tokens")
    return tbl.num_rows


def sampled_stages(con: duckdb.DuckDBPyConnection, cfg: CurationConfig, counter: TokenCounter, progress: Progress | None) -> None:
    """Question stripping, ``question_missing`` and ``prompt_too_long`` on the rows the seeded
    sampler reaches, round by round, then ``cap``.

    Each round ranks the alive rows of every canonical sub-dataset by ``md5(seed:id)`` and
    evaluates the not-yet-evaluated rows within the cap; rejections free cap slots for the next
    round. Since these filters are per-row, the kept set equals evaluating every row first and
    sampling afterwards; rows the sampler never reaches are rejected as ``cap``.
    """
    for rnd in range(1, 1_000_000):
        stages.rank_alive(con, cfg)
        window = "uid IN (SELECT uid FROM sample_rank WHERE rk <= cap)"
        n = _strip_rows(con, cfg, window)
        n += _count_tokens(con, cfg, counter)
        if progress:
            progress(f"sampled round {rnd}", n, n)
        if n == 0:
            break
        stages.run_stage(con, "question_missing", "empty after stripping <image> and format directives", "question = ''")
        stages.run_stage(
            con, "prompt_too_long",
            f"question + closer + chat template + image tokens > {cfg.max_prompt_tokens} ({counter.name})",
            f"prompt_tokens > {int(cfg.max_prompt_tokens)}",
        )
    stages.cap_stage(con, cfg)


def source_parts(cfg: CurationConfig) -> list[SourcePart]:
    parts = resolve_source("vero", cfg.vero, split=cfg.vero_split, revision=cfg.vero_revision)
    parts += resolve_source("mmfr", cfg.mmfr, split=cfg.mmfr_split, revision=cfg.mmfr_revision)
    if not parts:
        raise CurationError("no sources: set curation.vero and/or curation.mmfr")
    return parts


def _connect(db: Path, cfg: CurationConfig) -> duckdb.DuckDBPyConnection:
    if db.exists():
        db.unlink()
    con = duckdb.connect(str(db))
    con.execute(f"SET threads = {int(cfg.threads)}")
    con.execute(f"SET memory_limit = '{cfg.memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def run_curation(
    cfg: CurationConfig, out_dir: str | Path, *, tokenizer: Any = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Curate ZPPO-77K from ``cfg.vero`` / ``cfg.mmfr`` into ``out_dir`` (see module doc).

    ``tokenizer``: a HF tokenizer object or spec; None -> ``cfg.tokenizer`` ("" -> the offline
    Qwen3.5 tokenizer). Returns ``parquet``, ``db``, ``report_json``, ``report_md``, ``counts``
    (``{source: {"in", "kept", "rejected"}}``) and ``content_hash`` (sha256 of the kept rows).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = source_parts(cfg)
    counter = resolve_counter(tokenizer if tokenizer is not None else cfg.tokenizer)
    db = out / "curation.duckdb"
    con = _connect(db, cfg)
    try:
        rows_in = ingest_all(con, parts, batch_rows=cfg.batch_rows, workers=cfg.threads, progress=progress)
        stages.build_work(con)
        for reason, detail, cond in stages.cheap_stages(cfg):
            stages.run_stage(con, reason, detail, cond)
            if progress:
                progress(f"stage {reason}", 1, 1)
        dedup_stage(con, cfg)
        sampled_stages(con, cfg, counter, progress)
        images = out / "images"
        if images.exists():
            shutil.rmtree(images)
        parquet, content_hash = export_outputs(con, parts, out, cfg, progress=progress)
        report = build_report(con, cfg, rows_in, content_hash, tokenizer_name=counter.name)
        report_json, report_md = write_report(report, out)
    finally:
        con.close()
    return {
        "parquet": str(parquet),
        "db": str(db),
        "report_json": str(report_json),
        "report_md": str(report_md),
        "counts": report["sources"],
        "content_hash": content_hash,
    }
