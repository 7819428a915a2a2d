"""The curation recipe as ordered SQL stages over one working table.

``work`` holds every input row of both sources with ``reason`` NULL while the row is alive. Each
stage is one visible ``UPDATE work SET reason = <stage> WHERE reason IS NULL AND <condition>``,
so a rejected row carries exactly the *first* stage that dropped it, and the ``stages`` table
logs how many rows each stage removed. Order is cheap-first (full list in data_prep/README.md):
text that is not UTF-8 (``text_undecodable``), metadata (``untiered``, sub-dataset ``dedup``, ``pass_rate``), text and image-header facts, the
(question, image) ``dedup``, then the per-row expensive checks (question stripping, prompt
tokens) on the rows the seeded sampler reaches, then ``cap``.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from data_prep.recipe import DEFAULT_REWARD_TYPE, MMFR_REWARD_TYPE, VERO_REWARD_TYPES, canonical_name, tier_of
from zppo_core.config import CurationConfig


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_subdataset_map(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``subdataset_map(source, raw_sub, canonical, tier)`` of every raw name seen."""
    raw = con.execute(
        "SELECT DISTINCT 'vero' AS source, raw_sub FROM raw_vero UNION SELECT DISTINCT 'mmfr', raw_sub FROM raw_mmfr"
    ).fetchall()
    rows = [(s, r, canonical_name(r), tier_of(canonical_name(r))) for s, r in raw]
    tbl = pa.table({
        "source": [r[0] for r in rows], "raw_sub": [r[1] for r in rows],
        "canonical": [r[2] for r in rows], "tier": pa.array([r[3] for r in rows], pa.int32()),
    })
    con.register("subdataset_map_arrow", tbl)
    con.execute("CREATE TABLE subdataset_map AS SELECT * FROM subdataset_map_arrow")
    con.unregister("subdataset_map_arrow")


def _reward_case() -> str:
    whens = " ".join(f"WHEN {_sql_str(k)} THEN {_sql_str(v)}" for k, v in VERO_REWARD_TYPES.items())
    vero = f"CASE lower(trim(r.reward_type_raw)) {whens} ELSE {_sql_str(DEFAULT_REWARD_TYPE)} END"
    return f"CASE WHEN r.source = 'vero' THEN {vero} ELSE {_sql_str(MMFR_REWARD_TYPE)} END"


def build_work(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``work``: raw rows of both sources + image facts + canonical names + stable ids."""
    build_subdataset_map(con)
    con.execute(f"""
        CREATE TABLE work AS
        WITH r AS (
            SELECT 'vero' AS source, * FROM raw_vero UNION ALL SELECT 'mmfr' AS source, * FROM raw_mmfr
        ), named AS (
            SELECT r.*, m.canonical, m.tier, {_reward_case()} AS reward_type,
                   i.img_format, i.width, i.height, i.img_hash, i.img_bytes,
                   r.source || '/' || r.raw_sub || '/' || r.upstream_id AS base_id,
                   f.name AS file_name
            FROM r
            JOIN files f USING (file_id)
            LEFT JOIN subdataset_map m ON m.source = r.source AND m.raw_sub = r.raw_sub
            LEFT JOIN image_meta i ON i.file_id = r.file_id AND i.row_idx = r.row_idx
        )
        SELECT row_number() OVER (ORDER BY file_name, row_idx) AS uid, *,
               CASE WHEN count(*) OVER (PARTITION BY base_id) = 1 THEN base_id
                    ELSE base_id || '#' || row_number() OVER (PARTITION BY base_id ORDER BY file_name, row_idx)
               END AS id,
               NULL::VARCHAR AS question, NULL::VARCHAR AS qkey, NULL::BIGINT AS prompt_tokens,
               NULL::VARCHAR AS reason, NULL::VARCHAR AS detail
        FROM named
    """)
    con.execute("CREATE TABLE stages (step INTEGER, stage VARCHAR, detail VARCHAR, dropped BIGINT, alive BIGINT)")


def run_stage(con: duckdb.DuckDBPyConnection, reason: str, detail: str, condition: str) -> int:
    """Mark alive rows matching ``condition`` with ``reason``; log and return how many."""
    before = con.execute("SELECT count(*) FROM work WHERE reason IS NULL").fetchone()[0]
    con.execute(
        f"UPDATE work SET reason = ?, detail = ? WHERE reason IS NULL AND ({condition})", [reason, detail]
    )
    alive = con.execute("SELECT count(*) FROM work WHERE reason IS NULL").fetchone()[0]
    step = con.execute("SELECT count(*) FROM stages").fetchone()[0] + 1
    con.execute("INSERT INTO stages VALUES (?, ?, ?, ?, ?)", [step, reason, detail, before - alive, alive])
    return before - alive


def cheap_stages(cfg: CurationConfig) -> list[tuple[str, str, str]]:
    """(reason, detail, SQL condition) of the metadata / text / header stages, in order."""
    return [
        ("text_undecodable", "a text field is not valid UTF-8",
         "uid IN (SELECT w.uid FROM work w JOIN text_undecodable t ON w.file_id = t.file_id AND w.row_idx = t.row_idx)"),
        ("untiered", "sub-dataset in neither tier", "tier IS NULL"),
        ("dedup", "sub_dataset: Vero supplies this canonical sub-dataset",
         "source = 'mmfr' AND canonical IN (SELECT DISTINCT canonical FROM work WHERE source = 'vero' AND tier IS NOT NULL)"),
        ("pass_rate", f"MMFineReason pass_rate > {cfg.max_pass_rate} or missing",
         f"source = 'mmfr' AND (pass_rate IS NULL OR isnan(pass_rate) OR pass_rate > {float(cfg.max_pass_rate)!r})"),
        ("question_missing", "null or empty question",
         "question_raw IS NULL OR trim(regexp_replace(question_raw, '<image>', '', 'gi')) = ''"),
        ("answer_missing", "null or empty gold answer", "answer IS NULL"),
        ("answer_too_long", f"answer longer than {cfg.max_answer_chars} characters",
         f"length(answer) > {int(cfg.max_answer_chars)}"),
        ("image_missing", "no image bytes", "img_bytes IS NULL OR img_bytes = 0") if cfg.require_images else
        ("image_missing", "none: rows without an image are kept (curation.require_images = false)", "FALSE"),
        ("image_undecodable", "image header unreadable", "img_bytes > 0 AND img_format IS NULL"),
        ("image_too_large", f"w x h > {cfg.max_image_pixels} px (header size; never decoded)",
         f"CAST(width AS BIGINT) * CAST(height AS BIGINT) > {int(cfg.max_image_pixels)}"),
        ("image_too_small", f"min(h, w) < {cfg.min_image_side} px", f"least(width, height) < {int(cfg.min_image_side)}"),
        ("image_aspect_ratio", f"max/min side > {cfg.max_aspect_ratio}",
         f"greatest(width, height) > {float(cfg.max_aspect_ratio)!r} * least(width, height)"),
    ]


#: alive rows whose image bytes also occur in an alive row of the other source; text-only rows
#: (kept when ``curation.require_images`` is false) share "no image" when both sources have some
SHARED_IMAGE = (
    "img_hash IN (SELECT img_hash FROM work WHERE reason IS NULL AND source = 'vero' "
    "INTERSECT SELECT img_hash FROM work WHERE reason IS NULL AND source = 'mmfr')"
    " OR (img_hash IS NULL"
    "  AND EXISTS (SELECT 1 FROM work WHERE reason IS NULL AND source = 'vero' AND img_hash IS NULL)"
    "  AND EXISTS (SELECT 1 FROM work WHERE reason IS NULL AND source = 'mmfr' AND img_hash IS NULL))"
)
#: same question and same image (or both without one) as an alive Vero row
QUESTION_DEDUP = (
    "source = 'mmfr' AND uid IN ("
    " SELECT m.uid FROM work m JOIN work v"
    "  ON v.source = 'vero' AND v.reason IS NULL AND m.img_hash IS NOT DISTINCT FROM v.img_hash AND m.qkey = v.qkey"
    " WHERE m.source = 'mmfr' AND m.reason IS NULL)"
)


def set_column(con: duckdb.DuckDBPyConnection, column: str, values: pa.Table) -> None:
    """``UPDATE work SET <column> = values.value`` joined on ``uid`` (``values``: uid, value)."""
    con.register("column_values", values)
    con.execute(f"UPDATE work SET {column} = v.value FROM column_values v WHERE work.uid = v.uid")
    con.unregister("column_values")


def rank_alive(con: duckdb.DuckDBPyConnection, cfg: CurationConfig) -> None:
    """``sample_rank(uid, rk, cap)``: alive rows ranked per canonical sub-dataset by ``md5(seed:id)``."""
    con.execute(f"""
        CREATE OR REPLACE TABLE sample_rank AS
        SELECT uid, row_number() OVER (PARTITION BY canonical ORDER BY md5({_sql_str(str(cfg.seed))} || ':' || id), id) AS rk,
               CASE tier WHEN 1 THEN {int(cfg.tier1_cap)} ELSE {int(cfg.tier2_cap)} END AS cap
        FROM work WHERE reason IS NULL
    """)


def cap_stage(con: duckdb.DuckDBPyConnection, cfg: CurationConfig) -> int:
    """Seeded sampling: per canonical sub-dataset keep the ``cap`` alive rows with the smallest
    ``md5(seed:id)`` (ties by id); the rest get reason ``cap``."""
    rank_alive(con, cfg)
    cond = "uid IN (SELECT uid FROM sample_rank WHERE rk > cap)"
    return run_stage(con, "cap", f"tier 1 cap {cfg.tier1_cap} / tier 2 cap {cfg.tier2_cap}, seed {cfg.seed}", cond)
