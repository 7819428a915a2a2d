"""Hostile inputs never abort curation: an image over the pixel budget (a real 20000 x 20000 PNG,
which PIL refuses to open) and rows whose text is not UTF-8 are rejected with their reason; files
are opened under their literal names (``[ab]`` is not a glob) from folders whose names hold
quotes; counts in = kept + rejected."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep.curate import run_curation
from data_prep.imaging import image_header
from data_prep.synthetic import MMFR_SCHEMA, VERO_SCHEMA
from zppo_core.config import CurationConfig

from dp_builders import huge_png, mrow, non_utf8_strings, png, vrow

BAD = b"caf\xe9 \xff?"  # latin-1 bytes: not UTF-8


def _with_bad_extra_question(table: pa.Table, row: int) -> pa.Table:
    """Vero's nested ``extra_info.question`` of ``row`` replaced by non-UTF-8 bytes."""
    extra = table.column("extra_info").combine_chunks()
    children = [extra.field(i) for i in range(extra.type.num_fields)]
    k = extra.type.get_field_index("question")
    raw = [v.encode() if v is not None else None for v in children[k].to_pylist()]
    raw[row] = BAD
    children[k] = non_utf8_strings(raw)
    fixed = pa.StructArray.from_arrays(children, fields=list(extra.type))
    return table.set_column(table.schema.get_field_index("extra_info"), "extra_info", fixed)


def _with_bad_column(table: pa.Table, name: str, row: int) -> pa.Table:
    raw = [v.encode() if v is not None else None for v in table.column(name).to_pylist()]
    raw[row] = BAD
    return table.set_column(table.schema.get_field_index(name), name, non_utf8_strings(raw))


def make_hostile_sources(root: Path) -> tuple[Path, Path]:
    ok = lambda tag: png(120, 110, tag)  # noqa: E731
    vero_rows = [
        vrow("stem-ai2d_merged", "Q ok?", "1", img=ok(0), index=0),  # kept
        vrow("stem-ai2d_merged", "Q huge?", "2", img=huge_png(20_000, 20_000), index=1),  # image_too_large
        vrow("stem-ai2d_merged", "Q bad text?", "3", img=ok(2), index=2),  # text_undecodable
    ]
    vdir = root / "vero" / "stem-ai2d_merged"
    vdir.mkdir(parents=True)
    vt = _with_bad_extra_question(pa.Table.from_pylist(vero_rows, schema=VERO_SCHEMA), 2)
    pq.write_table(vt, vdir / "train-00000-of-00001.parquet")
    mdir = root / "mmfr" / "data"
    mdir.mkdir(parents=True)
    bracket = [mrow("MMR1", "M0?", "3", img=ok(10), idx=0),  # kept
               mrow("MMR1", "M1?", "4", img=ok(11), idx=1),  # text_undecodable (teacher response)
               mrow("MMR1", "M2?", "5", img=ok(12), idx=2)]  # text_undecodable (answer)
    mt = pa.Table.from_pylist(bracket, schema=MMFR_SCHEMA)
    mt = _with_bad_column(_with_bad_column(mt, "qwen3vl_235b_thinking_response", 1), "answer", 2)
    pq.write_table(mt, mdir / "train-[ab].parquet")
    # what a glob "train-[ab].parquet" would read instead
    pq.write_table(pa.Table.from_pylist([mrow("MMR1", "GLOB?", "9", img=ok(13), idx=9)], schema=MMFR_SCHEMA),
                   mdir / "train-a.parquet")
    return root / "vero", root / "mmfr"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("src") / "it's [x] *"
    vero, mmfr = make_hostile_sources(root)
    cfg = CurationConfig(vero=str(vero), mmfr=str(mmfr), threads=1)
    out = tmp_path_factory.mktemp("out") / "o'ut [1]"
    return run_curation(cfg, out)


def _rejected(res) -> list[tuple]:
    with duckdb.connect(res["db"], read_only=True) as con:
        return con.execute("SELECT source, reason, detail, file_name, row_idx FROM rejected ORDER BY uid").fetchall()


def test_counts_in_equal_kept_plus_rejected(hostile):
    assert hostile["counts"]["vero"] == {"in": 3, "kept": 1, "rejected": 2, "identity_ok": True}
    assert hostile["counts"]["mmfr"] == {"in": 4, "kept": 2, "rejected": 2, "identity_ok": True}


def test_huge_image_and_non_utf8_rows_are_rejected_with_reasons(hostile):
    rows = _rejected(hostile)
    reasons = sorted((src, reason, Path(name).name, idx) for src, reason, _, name, idx in rows)
    assert reasons == [
        ("mmfr", "text_undecodable", "train-[ab].parquet", 1),
        ("mmfr", "text_undecodable", "train-[ab].parquet", 2),
        ("vero", "image_too_large", "train-00000-of-00001.parquet", 1),
        ("vero", "text_undecodable", "train-00000-of-00001.parquet", 2),
    ]
    details = {reason: detail for _, reason, detail, _, _ in rows}
    assert "89478485" in details["image_too_large"]
    with duckdb.connect(hostile["db"], read_only=True) as con:
        fields = sorted(r[0] for r in con.execute("SELECT field FROM text_undecodable").fetchall())
    assert fields == ["answer", "extra_info", "qwen3vl_235b_thinking_response"]


def test_files_are_read_under_their_literal_names(hostile):
    """As a glob, ``train-[ab].parquet`` would read ``train-a.parquet`` a second time and never M0."""
    kept = pq.read_table(hostile["parquet"]).to_pylist()
    assert sorted(r["question"] for r in kept) == ["GLOB?", "M0?", "Q ok?"]
    assert Path(hostile["parquet"]).parent.name == "o'ut [1]"


def test_pixel_budget_is_a_config_knob(tmp_path):
    vero, mmfr = make_hostile_sources(tmp_path / "s")
    cfg = CurationConfig(vero=str(vero), mmfr="", threads=1, max_image_pixels=120 * 110 - 1)
    res = run_curation(cfg, tmp_path / "out")
    assert res["counts"]["vero"] == {"in": 3, "kept": 0, "rejected": 3, "identity_ok": True}
    assert sorted(r[1] for r in _rejected(res)) == ["image_too_large", "image_too_large", "text_undecodable"]


def test_pil_fallback_header_reads_the_size_of_a_decompression_bomb():
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, format="TIFF", compression="group4")
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(buf.getvalue()))
    assert image_header(buf.getvalue()) == ("tiff", 20_000, 20_000)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the limit is restored
