"""Builders of tiny hand-made Vero / MMFineReason parquet sources with exactly known defects."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from data_prep.synthetic import MMFR_SCHEMA, VERO_SCHEMA, VERO_SYSTEM

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def png(w: int, h: int, tag: int) -> bytes:
    """A distinct ``w`` x ``h`` PNG (``tag`` drawn into it)."""
    im = Image.new("L", (w, h), 255)
    ImageDraw.Draw(im).text((2, 2), str(tag), fill=0)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def vrow(config: str, question: str, answer: str | None, *, img: bytes | None, index: int,
         reward_type: str = "numeric", extra_answer: str | None = None, extra_question: bool = True) -> dict:
    domain, _, name = config.partition("-")
    return {
        "prompt": [{"role": "system", "content": VERO_SYSTEM}, {"role": "user", "content": "<image>" + question}],
        "image": None if img is None else {"bytes": img, "path": None},
        "data_source": name,
        "ability": domain,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"answer": extra_answer, "reward_type": reward_type,
                       "question": question if extra_question else None, "index": index, "domain": domain},
    }


def mrow(source: str, question: str, answer: str | None, *, img: bytes | None, idx: int, pass_rate: float = 0.0,
         original_answer: str | None = None, teacher: str = "<think>x</think> \\boxed{1}") -> dict:
    return {
        "source": source, "id": f"{source}_{idx}", "original_question": question,
        "original_answer": original_answer, "image": None if img is None else {"bytes": img, "path": None},
        "question": "<image>\n" + question, "answer": answer, "qwen3vl_235b_instruct_caption": "",
        "qwen3vl_235b_thinking_response": teacher, "pass_rate": pass_rate, "is_consistent": True,
        "consistency_analysis": "",
    }


def write_vero(root: Path, rows_by_config: dict[str, list[dict]]) -> Path:
    for config, rows in rows_by_config.items():
        path = root / "vero" / config / "train-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=VERO_SCHEMA), path)
    return root / "vero"


def write_mmfr(root: Path, rows: list[dict], shards: int = 1) -> Path:
    d = root / "mmfr" / "data"
    d.mkdir(parents=True, exist_ok=True)
    per = -(-len(rows) // shards)
    for k in range(shards):
        chunk = rows[k * per : (k + 1) * per]
        pq.write_table(pa.Table.from_pylist(chunk, schema=MMFR_SCHEMA), d / f"train-{k:05d}-of-{shards:05d}.parquet")
    return root / "mmfr"


def huge_png(w: int, h: int) -> bytes:
    """A valid all-black 1-bit ``w`` x ``h`` PNG, built directly (PIL takes seconds for 20000²)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (w + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def non_utf8_strings(values: list[bytes | None]) -> pa.Array:
    """A ``string`` array holding these raw bytes unvalidated (how a bad upstream file reads)."""
    import numpy as np

    offsets = np.cumsum([0] + [len(v or b"") for v in values]).astype(np.int32)
    valid = pa.array([v is not None for v in values]).buffers()[1]
    data = pa.py_buffer(b"".join(v or b"" for v in values))
    return pa.Array.from_buffers(pa.string(), len(values), [valid, pa.py_buffer(offsets.tobytes()), data])
