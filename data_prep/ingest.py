"""Load both sources into DuckDB raw tables: text columns flattened, images as header facts.

Tables written (one row per input row, nothing filtered here):

* ``files(file_id, source, name, config, num_rows)`` — every scanned part;
* ``raw_vero`` / ``raw_mmfr(file_id, row_idx, raw_sub, upstream_id, question_raw, answer,
  reward_type_raw, pass_rate, teacher_response)`` — the fields curation needs, flattened from
  Vero's chat ``prompt`` / ``reward_model`` / ``extra_info`` structs and MMFineReason's columns;
* ``image_meta(file_id, row_idx, img_format, width, height, img_hash, img_bytes)`` — read from
  image *headers* plus a content hash; image bytes themselves never enter the database.

Field choices (documented in ``data_prep/README.md``): Vero question = ``extra_info.question``,
else the last user turn of ``prompt``; gold answer = ``reward_model.ground_truth``, else
``extra_info.answer``. MMFineReason gold answer = ``answer``, else the ``<answer>...</answer>``
part of ``original_answer`` (else all of it, which the 512-character filter then judges).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_prep.imaging import content_hash, image_header
from data_prep.schemas import (
    MMFR_COLUMNS, PASS_RATE_COLUMNS, VERO_COLUMNS, SourceSchemaError, check_mmfr_schema, check_vero_schema,
)
from data_prep.sources import SourcePart

Progress = Callable[[str, int, "int | None"], None]

RAW_COLUMNS = (
    "file_id INTEGER, row_idx BIGINT, raw_sub VARCHAR, upstream_id VARCHAR, question_raw VARCHAR, "
    "answer VARCHAR, reward_type_raw VARCHAR, pass_rate DOUBLE, teacher_response VARCHAR"
)
_NONEMPTY = "NULLIF(trim(CAST({} AS VARCHAR)), '')"


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE files (file_id INTEGER, source VARCHAR, name VARCHAR, config VARCHAR, num_rows BIGINT)")
    for source in ("vero", "mmfr"):
        con.execute(f"CREATE TABLE raw_{source} ({RAW_COLUMNS})")
    con.execute(f"CREATE TABLE {UNDECODABLE_TABLE} (file_id INTEGER, row_idx BIGINT, field VARCHAR)")


#: rows whose text is not valid UTF-8 (rejected as ``text_undecodable``; see :func:`split_undecodable`)
UNDECODABLE_TABLE = "text_undecodable"
ROW_IDX = "__row_idx"


def _has_text(t: pa.DataType) -> bool:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_text(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_text(t.value_type)
    return False


def _bad_text_rows(arr: pa.Array) -> np.ndarray:
    """Per row of ``arr``: does it hold a string that is not UTF-8 (at any nesting depth)?"""
    n = len(arr)
    t = arr.type
    if pa.types.is_struct(t):
        out = np.zeros(n, bool)
        for child in arr.flatten():  # children sliced to this array's rows
            out |= _bad_text_rows(child)
        return out
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        out = np.zeros(n, bool)
        bad = _bad_text_rows(pc.list_flatten(arr))
        if bad.any():
            out[pc.list_parent_indices(arr).to_numpy()[bad]] = True
        return out
    if not _has_text(t):
        return np.zeros(n, bool)
    try:
        arr.validate(full=True)
        return np.zeros(n, bool)
    except pa.ArrowInvalid:
        pass
    out = np.zeros(n, bool)
    for i in range(n):
        try:
            arr.slice(i, 1).validate(full=True)
        except pa.ArrowInvalid:
            out[i] = True
    return out


def split_undecodable(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
    """``batch`` without its rows holding a non-UTF-8 string (any text column, nested ones
    too), and those rows as ``(row_idx, first bad column)``. Arrow does not validate UTF-8 when
    reading parquet, DuckDB refuses such a value, so the check runs here: one whole-column
    validation per text column, row by row only inside a column that fails it (rare)."""
    bad: dict[int, str] = {}
    for name, col in zip(batch.schema.names, batch.columns):
        if not _has_text(col.type):
            continue
        try:
            col.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        for i in np.flatnonzero(_bad_text_rows(col)):
            bad.setdefault(int(i), name)
    if not bad:
        return batch, []
    keep = np.ones(batch.num_rows, bool)
    keep[list(bad)] = False
    row_idx = batch.column(ROW_IDX).to_numpy()
    return batch.filter(pa.array(keep)), [(int(row_idx[i]), name) for i, name in sorted(bad.items())]


def _read_columns(part: SourcePart, schema: pa.Schema) -> list[str]:
    """The columns curation reads from ``part`` (never the image bytes)."""
    columns = VERO_COLUMNS if part.source == "vero" else MMFR_COLUMNS
    names = [c.name for c in columns if c.name != "image" and schema.get_field_index(c.name) >= 0]
    if part.source == "mmfr":
        names += [n for n in PASS_RATE_COLUMNS if schema.get_field_index(n) >= 0]
    return names


def _text_reader(
    part: SourcePart, schema: pa.Schema, batch_rows: int, bad: list[tuple[int, str]]
) -> pa.RecordBatchReader:
    """The text columns of ``part`` plus a row index, as a stream DuckDB scans once. The file is
    opened by pyarrow under its literal name (DuckDB's ``read_parquet`` would expand ``[ab]``,
    ``*`` or ``?`` in it as a glob); rows with non-UTF-8 text are left out and appended to ``bad``."""
    cols = _read_columns(part, schema)
    if part.path is not None:
        from data_prep.sources import parquet_errors

        with parquet_errors(part.path):
            batches = pq.ParquetFile(part.path).iter_batches(batch_size=batch_rows, columns=cols)
    else:
        assert part.table is not None
        batches = part.table.select(cols).to_batches(max_chunksize=batch_rows)
    out_schema = pa.schema([schema.field(c) for c in cols] + [pa.field(ROW_IDX, pa.int64())])

    def stream():
        start = 0
        for b in batches:
            idx = pa.array(np.arange(start, start + b.num_rows, dtype=np.int64))
            start += b.num_rows
            b = pa.RecordBatch.from_arrays([*b.columns, idx], schema=out_schema)
            good, dropped = split_undecodable(b)
            bad.extend(dropped)
            yield good

    return pa.RecordBatchReader.from_batches(out_schema, stream())


def _vero_select(schema: pa.Schema, part: SourcePart, row_expr: str) -> str:
    extra = schema.field("extra_info").type
    has = lambda f: extra.get_field_index(f) >= 0  # noqa: E731
    user_turn = "list_filter(prompt, lambda m: m.role = 'user')[-1].content"
    question = f"COALESCE({_NONEMPTY.format('extra_info.question')}, {user_turn})" if has("question") else user_turn
    answer = _NONEMPTY.format("reward_model.ground_truth")
    if has("answer"):
        answer = f"COALESCE({answer}, {_NONEMPTY.format('extra_info.answer')})"
    if schema.get_field_index("id") >= 0:
        upstream = "CAST(id AS VARCHAR)"
    elif has("index"):
        upstream = "CAST(extra_info.index AS VARCHAR)"
    else:
        upstream = f"CAST({row_expr} AS VARCHAR)"
    if part.config:
        raw_sub = "CAST($raw_sub AS VARCHAR)"
    elif schema.get_field_index("ability") >= 0:
        raw_sub = "COALESCE(ability || '-', '') || data_source"
    else:
        raw_sub = "data_source"
    reward = "CAST(extra_info.reward_type AS VARCHAR)" if has("reward_type") else "NULL"
    return (
        f"{raw_sub}, COALESCE({upstream}, CAST({row_expr} AS VARCHAR)), {question}, {answer}, {reward}, "
        "NULL::DOUBLE, NULL::VARCHAR"
    )


def _mmfr_select(schema: pa.Schema, pass_col: str) -> str:
    answer = _NONEMPTY.format("answer")
    if schema.get_field_index("original_answer") >= 0:
        oa = "CAST(original_answer AS VARCHAR)"
        tagged = f"regexp_extract({oa}, '<answer>\\s*([\\s\\S]*?)\\s*</answer>', 1)"
        fallback = f"CASE WHEN contains({oa}, '</answer>') THEN {tagged} ELSE {oa} END"
        answer = f"COALESCE({answer}, {_NONEMPTY.format(fallback)})"
    teacher = "qwen3vl_235b_thinking_response" if schema.get_field_index("qwen3vl_235b_thinking_response") >= 0 else "NULL"
    return f"source, CAST(id AS VARCHAR), question, {answer}, NULL, CAST({pass_col} AS DOUBLE), {teacher}"


def ingest_part(con: duckdb.DuckDBPyConnection, part: SourcePart, file_id: int, batch_rows: int = 65_536) -> int:
    """Validate ``part``'s schema and append its flattened rows to ``raw_<source>``. A row whose
    text is not valid UTF-8 is kept as a placeholder (no text) and listed in
    ``text_undecodable``; the stage of that name rejects it."""
    try:
        schema = part.schema()
        n = part.num_rows()
    except (pa.ArrowException, OSError) as e:
        raise SourceSchemaError(f"{part.name}: cannot read parquet metadata: {e}") from e
    if part.source == "vero":
        check_vero_schema(schema, part.name)
    else:
        pass_col = check_mmfr_schema(schema, part.name)
    cols = _vero_select(schema, part, ROW_IDX) if part.source == "vero" else _mmfr_select(schema, pass_col)
    bad: list[tuple[int, str]] = []
    view = f"part_{file_id}"
    con.register(view, _text_reader(part, schema, batch_rows, bad))
    try:
        params = {"file_id": file_id} | ({"raw_sub": part.config} if "$raw_sub" in cols else {})
        con.execute(f"INSERT INTO raw_{part.source} SELECT $file_id, {ROW_IDX}, {cols} FROM {view}", params)
    except (duckdb.Error, pa.ArrowException, OSError) as e:
        raise SourceSchemaError(f"{part.name}: cannot read rows: {e}") from e
    finally:
        con.unregister(view)
    if bad:
        con.executemany(
            f"INSERT INTO raw_{part.source} (file_id, row_idx, raw_sub, upstream_id) VALUES (?, ?, ?, ?)",
            [[file_id, r, part.config, f"row{r}"] for r, _ in bad],
        )
        con.executemany(f"INSERT INTO {UNDECODABLE_TABLE} VALUES (?, ?, ?)", [[file_id, r, c] for r, c in bad])
    con.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?)", [file_id, part.source, part.name, part.config, n])
    return n


_META_SCHEMA = pa.schema([
    ("file_id", pa.int32()), ("row_idx", pa.int64()), ("img_format", pa.string()), ("width", pa.int32()),
    ("height", pa.int32()), ("img_hash", pa.string()), ("img_bytes", pa.int64()),
])


def _png_sizes(images: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised PNG header read: (is_png, width, height) per row from the arrow buffers."""
    n = len(images)
    if n == 0 or images.type not in (pa.binary(), pa.large_binary()):
        return np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n, np.int64)
    off_type = np.int32 if images.type == pa.binary() else np.int64
    bufs = images.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_type)[images.offset : images.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    valid = images.is_valid().to_numpy(zero_copy_only=False)
    starts = offsets[:-1]
    ok = valid & (offsets[1:] - starts >= 24)
    idx = starts[ok][:, None] + np.arange(24)[None, :]
    head = data[idx] if ok.any() else np.zeros((0, 24), np.uint8)
    sig = np.frombuffer(b"\x89PNG\r\n\x1a\nIHDR", np.uint8)
    good = (head[:, :8] == sig[:8]).all(1) & (head[:, 12:16] == sig[8:]).all(1)
    be = np.array([1 << 24, 1 << 16, 1 << 8, 1], np.int64)
    w = (head[:, 16:20].astype(np.int64) * be).sum(1)
    h = (head[:, 20:24].astype(np.int64) * be).sum(1)
    is_png, ws, hs = np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n, np.int64)
    rows = np.flatnonzero(ok)
    is_png[rows], ws[rows], hs[rows] = good & (w > 0) & (h > 0), w, h
    return is_png, ws, hs


def image_meta_batch(file_id: int, start: int, images: pa.Array) -> pa.RecordBatch:
    """Header facts of one batch of image bytes (rows ``start ..``); unreadable -> NULL format.

    PNG headers (the common case) are read vectorised from the arrow buffers; other formats go
    through :func:`data_prep.imaging.image_header` row by row. Sizes and hashes never decode pixels.
    """
    is_png, pw, ph = _png_sizes(images)
    fmts, ws, hs, hashes, sizes = [], [], [], [], []
    for i, data in enumerate(images.to_pylist()):
        head = ("png", int(pw[i]), int(ph[i])) if is_png[i] else image_header(data)
        fmts.append(head[0] if head else None)
        ws.append(head[1] if head else None)
        hs.append(head[2] if head else None)
        hashes.append(content_hash(data) if data else None)
        sizes.append(len(data) if data is not None else None)
    n = len(fmts)
    cols = [
        pa.array(np.full(n, file_id, np.int32)), pa.array(np.arange(start, start + n, dtype=np.int64)),
        pa.array(fmts, pa.string()), pa.array(ws, pa.int32()), pa.array(hs, pa.int32()),
        pa.array(hashes, pa.string()), pa.array(sizes, pa.int64()),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=_META_SCHEMA)


def part_image_meta(part: SourcePart, file_id: int, batch_rows: int) -> pa.Table:
    batches, start = [], 0
    for arr in part.image_batches(batch_rows):
        batches.append(image_meta_batch(file_id, start, arr))
        start += len(arr)
    return pa.Table.from_batches(batches, schema=_META_SCHEMA)


def _meta_job(args: tuple[SourcePart, int, int]) -> pa.Table:
    return part_image_meta(*args)


def ingest_all(
    con: duckdb.DuckDBPyConnection, parts: list[SourcePart], *, batch_rows: int, workers: int, progress: Progress | None
) -> dict[str, int]:
    """Ingest every part (text into raw tables, image headers into ``image_meta``); rows per source."""
    create_raw_tables(con)
    rows = {"vero": 0, "mmfr": 0}
    total = sum(p.num_rows() for p in parts)
    done = 0
    for file_id, part in enumerate(parts):
        n = ingest_part(con, part, file_id, batch_rows)
        rows[part.source] += n
        done += n
        if progress:
            progress("ingest text", done, total)
    jobs = [(p, i, batch_rows) for i, p in enumerate(parts)]
    local = all(p.path is not None for p in parts)
    tables: list[pa.Table] = []
    done = 0
    if workers > 1 and local and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as ex:
            for t in ex.map(_meta_job, jobs):
                tables.append(t)
                done += t.num_rows
                if progress:
                    progress("image headers", done, total)
    else:
        for job in jobs:
            tables.append(_meta_job(job))
            done += tables[-1].num_rows
            if progress:
                progress("image headers", done, total)
    meta = pa.concat_tables(tables) if tables else _META_SCHEMA.empty_table()
    con.register("image_meta_arrow", meta)
    con.execute("CREATE TABLE image_meta AS SELECT * FROM image_meta_arrow")
    con.unregister("image_meta_arrow")
    return rows
