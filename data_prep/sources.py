"""Readers of the two upstream sources: a local folder / file of parquet, or a hub dataset id.

A source resolves to a list of :class:`SourcePart` s (one parquet file, or one hub config/split
loaded through ``datasets``). Parts are scanned column-wise: curation reads the text columns
with DuckDB and the image column in batches with pyarrow, so image bytes are never copied into
the database; only kept rows' images are written out, once each.

* Local Vero folder: ``<root>/<config>/<split>-*.parquet`` (the hub layout; ``<config>`` is the
  ``<domain>-<name>`` sub-dataset), or parquet files anywhere below ``root``.
* Local MMFineReason folder: ``<root>/data/train-000xx-of-00070.parquet`` (or any parquet below).
* Hub id (anything that is not an existing path): ``datasets.load_dataset(id, config, split=...,
  revision=...)`` for every config (Vero) or the single default config (MMFineReason); the
  cached arrow table is memory-mapped and scanned in place.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: split names recognised as a file-name prefix (``train-00000-of-00003.parquet``)
_SPLIT_RE = re.compile(r"^(train|val|validation|test|dev)(?:[-_.]|$)")


@contextlib.contextmanager
def parquet_errors(path: Path | str) -> Iterator[None]:
    """A corrupt, truncated or 0-byte parquet file becomes a one-line
    :class:`~data_prep.schemas.SourceSchemaError` naming it."""
    from data_prep.schemas import SourceSchemaError

    try:
        yield
    except (pa.ArrowException, OSError) as e:
        raise SourceSchemaError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from None


@dataclass
class SourcePart:
    """One scannable unit of a source: a local parquet file or an in-memory/mmapped arrow table."""

    source: str  # "vero" | "mmfr"
    name: str  # file path or "<repo>/<config>:<split>" (used in error messages)
    config: str = ""  # Vero sub-dataset config (``<domain>-<name>``), "" when unknown
    path: Path | None = None
    table: pa.Table | None = field(default=None, repr=False)

    def schema(self) -> pa.Schema:
        if self.path is not None:
            with parquet_errors(self.path):
                return pq.read_schema(self.path)
        assert self.table is not None
        return self.table.schema

    def num_rows(self) -> int:
        if self.path is not None:
            with parquet_errors(self.path):
                return pq.ParquetFile(self.path).metadata.num_rows
        assert self.table is not None
        return self.table.num_rows

    def image_batches(self, batch_rows: int) -> Iterator[pa.Array]:
        """The image column's bytes, in row order, as ``binary`` arrays of at most ``batch_rows``."""
        if self.path is not None:
            with parquet_errors(self.path):
                for b in pq.ParquetFile(self.path).iter_batches(batch_size=batch_rows, columns=["image"]):
                    yield image_bytes_array(b.column(0))
        else:
            assert self.table is not None
            for b in self.table.select(["image"]).to_batches(max_chunksize=batch_rows):
                yield image_bytes_array(b.column(0))

    def read_images(self, rows: list[int]) -> list[bytes | None]:
        """Image bytes of the given row indices (any order), read from the part once."""
        if self.path is not None:
            with parquet_errors(self.path):
                col = pq.read_table(self.path, columns=["image"]).column(0)
        else:
            assert self.table is not None
            col = self.table.column("image")
        taken = col.take(pa.array(rows, type=pa.int64())).combine_chunks()
        return image_bytes_array(taken).to_pylist()


def image_bytes_array(col: pa.Array) -> pa.Array:
    """The ``bytes`` child of an HF Image struct column (or the column itself when binary)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_struct(col.type):
        out = col.field("bytes")
        if col.null_count:  # a null struct hides its child values
            out = pc.if_else(col.is_valid(), out, pa.scalar(None, out.type))
        return out
    return col


def _split_of(path: Path) -> str | None:
    m = _SPLIT_RE.match(path.name)
    return m.group(1) if m else None


def _local_parts(source: str, root: Path, split: str) -> list[SourcePart]:
    if root.is_file():
        return [SourcePart(source, str(root), config=root.parent.name if source == "vero" else "", path=root)]
    files = sorted(p for p in root.rglob("*.parquet") if p.is_file())
    files = [p for p in files if _split_of(p) in (None, split)]
    if not files:
        raise FileNotFoundError(f"{source}: no {split!r} parquet files under {root}")
    parts = []
    for p in files:
        rel = p.relative_to(root).parts
        config = rel[0] if source == "vero" and len(rel) > 1 else ""
        parts.append(SourcePart(source, str(p), config=config, path=p))
    return parts


def _hub_parts(source: str, repo: str, split: str, revision: str) -> list[SourcePart]:
    import datasets

    rev = revision or None
    if source == "vero":
        configs = sorted(datasets.get_dataset_config_names(repo, revision=rev))
    else:
        configs = [None]
    parts = []
    for cfg in configs:
        ds = datasets.load_dataset(repo, cfg, split=split, revision=rev)
        table = ds.data.table  # memory-mapped arrow cache; Image column left undecoded
        name = f"{repo}/{cfg}:{split}" if cfg else f"{repo}:{split}"
        parts.append(SourcePart(source, name, config=cfg or "", table=table))
    return parts


def resolve_source(source: str, spec: str, *, split: str = "train", revision: str = "") -> list[SourcePart]:
    """Parts of ``source`` (``vero`` | ``mmfr``) given a local path or a hub dataset id."""
    if source not in ("vero", "mmfr"):
        raise ValueError(f"unknown source {source!r}; expected 'vero' or 'mmfr'")
    if not spec:
        return []
    path = Path(spec).expanduser()
    if path.exists():
        return _local_parts(source, path, split)
    if spec.startswith((".", "/", "~")):
        raise FileNotFoundError(f"{source}: path not found: {spec}")
    return _hub_parts(source, spec, split, revision)
