"""Final tables and files: ``zppo77k`` / ``rejected`` in DuckDB, kept images, the parquet.

``zppo77k`` rows are ordered by the seeded sampling key (``md5(seed:id)``), i.e. a deterministic
shuffle, so a trainer reading the parquet front to back sees sub-datasets interleaved.
Each kept image is written once to ``images/<blake2b>.<ext>``; rows sharing bytes share a file.
The content hash is the sha256 of the canonical JSON of all kept rows in id order (image
identity is in the hashed ``image`` path), independent of parquet writer versions.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from data_prep.sources import SourcePart
from zppo_core.config import CurationConfig

OUTPUT_COLUMNS = ("id", "source", "sub_dataset", "tier", "question", "answer", "reward_type", "image", "teacher_response")
#: image file extension of each header format
EXTENSIONS = {"jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp", "bmp": "bmp"}


def _ext_case() -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in EXTENSIONS.items())
    return f"CASE img_format {whens} ELSE img_format END"


def create_final_tables(con: duckdb.DuckDBPyConnection, cfg: CurationConfig) -> None:
    seed = str(cfg.seed).replace("'", "''")
    con.execute(f"""
        CREATE TABLE zppo77k AS
        SELECT id, source, canonical AS sub_dataset, CAST(tier AS INTEGER) AS tier, question, answer, reward_type,
               CASE WHEN img_hash IS NULL THEN '' ELSE 'images/' || img_hash || '.' || {_ext_case()} END AS image,
               teacher_response,
               file_id, row_idx, img_hash, row_number() OVER (ORDER BY md5('{seed}' || ':' || id), id) AS ord
        FROM work WHERE reason IS NULL
    """)
    con.execute("""
        CREATE TABLE rejected AS
        SELECT uid, id, source, raw_sub, canonical AS sub_dataset, tier, reason, detail, file_name, row_idx
        FROM work WHERE reason IS NOT NULL ORDER BY uid
    """)


def write_images(con: duckdb.DuckDBPyConnection, parts: list[SourcePart], out: Path, progress: Callable | None) -> int:
    """Write each kept row's image once under ``out/images``; returns files written."""
    rows = con.execute(
        "SELECT DISTINCT file_id, row_idx, image FROM zppo77k WHERE image <> '' ORDER BY file_id, row_idx"
    ).fetchall()
    by_file: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for file_id, row_idx, image in rows:
        by_file[file_id].append((row_idx, image))
    (out / "images").mkdir(parents=True, exist_ok=True)
    written, done = 0, 0
    seen: set[str] = set()
    for file_id, items in by_file.items():
        data = parts[file_id].read_images([r for r, _ in items])
        for (_, rel), blob in zip(items, data):
            if rel not in seen:
                seen.add(rel)
                (out / rel).write_bytes(blob)
                written += 1
        done += len(items)
        if progress:
            progress("write images", done, len(rows))
    return written


def content_hash(con: duckdb.DuckDBPyConnection) -> str:
    cols = ", ".join(OUTPUT_COLUMNS)
    h = hashlib.sha256()
    cur = con.execute(f"SELECT {cols} FROM zppo77k ORDER BY id")
    while batch := cur.fetchmany(10_000):
        for row in batch:
            h.update(json.dumps(dict(zip(OUTPUT_COLUMNS, row)), sort_keys=True, ensure_ascii=False).encode())
            h.update(b"\n")
    return h.hexdigest()


def export_outputs(
    con: duckdb.DuckDBPyConnection, parts: list[SourcePart], out: Path, cfg: CurationConfig, *, progress: Callable | None
) -> tuple[Path, str]:
    """Create the final tables, write images and ``zppo77k.parquet``; return (parquet, content hash)."""
    create_final_tables(con, cfg)
    write_images(con, parts, out, progress)
    parquet = out / "zppo77k.parquet"
    write_parquet(con, f"SELECT {', '.join(OUTPUT_COLUMNS)} FROM zppo77k ORDER BY ord", parquet)
    return parquet, content_hash(con)


def write_parquet(con: duckdb.DuckDBPyConnection, sql: str, path: Path, batch_rows: int = 65_536) -> None:
    """Stream the rows of ``sql`` into the parquet file ``path`` (written by pyarrow: the path never
    enters SQL, so quotes or glob characters in it are taken literally)."""
    reader = con.sql(sql).to_arrow_reader(batch_rows)
    with pq.ParquetWriter(path, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
