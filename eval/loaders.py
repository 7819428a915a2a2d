"""Load a registry benchmark as a list of :class:`~eval.items.EvalItem` via ``datasets``.

Hub ids are read with ``datasets.load_dataset(hf_id, config, split=..., revision=...)``
(``HF_HUB_OFFLINE=1`` makes that read the local cache only). A local copy in the same schema
is used instead when ``data_dir`` (a folder laid out like the hub repo) or ``data_files``
(explicit parquet/json files) is given.
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.fields import RowError
from eval.items import EvalItem
from eval.registry import Benchmark

_EXTS: tuple[str, ...] = ("parquet", "jsonl", "json")


class DatasetUnavailable(RuntimeError):
    """The benchmark's data could not be found (offline, gated, or wrong local path)."""


@dataclass
class Loaded:
    """Items plus provenance (what was read, dataset fingerprints) and the row accounting:
    ``rows_read`` = rows that gave items + ``rows_without_items`` (by design, e.g. OCRBench v2
    rows of the other language) + ``len(rejected)`` (rows that could not become an item, each
    with the reason naming benchmark, config, row and field)."""

    items: list[EvalItem]
    sources: list[str] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_without_items: int = 0
    rejected: list[str] = field(default_factory=list)
    #: ids of items dropped because an earlier item had the same id (the first one is kept)
    duplicate_ids: list[str] = field(default_factory=list)

    def accounting(self) -> dict[str, Any]:
        """The row counts for a result file (reasons capped at :data:`MAX_REASONS_IN_RESULT`)."""
        return {"rows_read": self.rows_read, "rows_with_items": self.rows_read - self.rows_without_items
                - len(self.rejected), "rows_without_items": self.rows_without_items,
                "rows_rejected": len(self.rejected), "rejected_reasons": self.rejected[:MAX_REASONS_IN_RESULT],
                "items_dropped_duplicate_id": len(self.duplicate_ids),
                "duplicate_ids": self.duplicate_ids[:MAX_REASONS_IN_RESULT]}


#: how many rejection reasons a result file lists (all are counted)
MAX_REASONS_IN_RESULT: int = 50


def split_and_config(b: Benchmark, config: str | None) -> tuple[str | None, str]:
    """(HF config name, split) of one of ``b.configs``; ``split="{config}"`` means the slot
    names a split of the default config (DynaMath's sample_variant1..10)."""
    if b.split == "{config}":
        return None, str(config)
    return config, b.split


def local_files(data_dir: str | Path, config: str | None, split: str) -> list[str]:
    """Files of ``config``/``split`` under a hub-like local folder (first layout that matches)."""
    root = Path(data_dir)
    patterns: list[str] = []
    if config:
        patterns += [f"{config}/{split}-*", f"{config}/{split}.*", f"{config}/{split}/*", f"data/{config}/{split}*"]
    patterns += [f"{split}-*", f"{split}.*", f"{split}/*", f"data/{split}-*", f"data/{split}.*"]
    for pat in patterns:
        hits = sorted(str(p) for p in root.glob(pat) if p.suffix.lstrip(".") in _EXTS)
        if hits:
            return hits
    raise DatasetUnavailable(
        f"no {'/'.join(_EXTS)} files for config={config!r} split={split!r} under {root} (tried {patterns})"
    )


def literal_files(files: Any) -> Any:
    """``data_files`` with glob characters escaped: ``datasets`` expands every entry as a glob
    pattern, so ``train-[ab].parquet`` (or a folder named ``it's [x]``) would match other files
    or none. An entry that exists as a file is meant literally; any other entry stays a pattern."""
    if isinstance(files, (str, Path)):
        return glob.escape(str(files)) if Path(files).exists() else str(files)  # else: a pattern / URL
    if isinstance(files, dict):
        return {k: literal_files(v) for k, v in files.items()}
    return [literal_files(f) for f in files]


def _read(b: Benchmark, config: str | None, *, data_dir: str | None, data_files: Any, revision: str | None) -> Any:
    import datasets

    hf_config, split = split_and_config(b, config)
    if data_files or data_dir:
        files = data_files if data_files else local_files(data_dir, hf_config, split)  # type: ignore[arg-type]
        first = files if isinstance(files, str) else (list(files.values())[0] if isinstance(files, dict) else files[0])
        first = first if isinstance(first, str) else first[0]
        fmt = "parquet" if first.endswith(".parquet") else "json"
        try:
            ds = datasets.load_dataset(fmt, data_files=literal_files(files), split="train")
        except Exception as e:  # unreadable / malformed local file: one error naming the files
            raise ValueError(f"{b.abbr}: cannot read {fmt} file(s) {files}: {type(e).__name__}: {e}") from e
        return ds, f"{fmt}:{files}"
    try:
        ds = datasets.load_dataset(b.hf_id, hf_config, split=split, revision=revision or b.revision)
    except Exception as e:  # offline, gated, missing: one clear error naming the source
        raise DatasetUnavailable(
            f"{b.abbr}: cannot load {b.hf_id} config={hf_config!r} split={split!r}: {type(e).__name__}: {e}"
            + (" (gated dataset: accept its terms and log in)" if b.gated else "")
        ) from e
    return ds, f"{b.hf_id}:{hf_config}:{split}@{revision or b.revision}"


def load_items(
    b: Benchmark,
    *,
    data_dir: str | None = None,
    data_files: Any = None,
    revision: str | None = None,
    max_items: int | None = None,
) -> Loaded:
    """All items of ``b`` (or the first ``max_items``, split evenly across its configs)."""
    if b.offline and not (data_dir or data_files):
        raise DatasetUnavailable(f"{b.abbr}: offline benchmark needs its generated data_dir")
    per_config = math.ceil(max_items / len(b.configs)) if max_items else None
    out = Loaded(items=[])
    for config in b.configs:
        ds, src = _read(b, config, data_dir=data_dir, data_files=data_files, revision=revision)
        out.sources.append(src)
        out.fingerprints.append(str(getattr(ds, "_fingerprint", "")))
        subset = "" if config is None or len(b.configs) == 1 else str(config)
        got = 0
        for i, row in enumerate(ds):
            out.rows_read += 1
            try:
                items = b.adapter(dict(row), i, subset, b.abbr)
            except (RowError, ValueError, TypeError, KeyError) as e:  # counted and reported, never fatal
                out.rejected.append(str(e) if isinstance(e, RowError) else
                                    f"{b.abbr}[{subset or 'default'}] row {i}: {type(e).__name__}: {e}")
                continue
            out.rows_without_items += not items
            out.items.extend(items)
            got += len(items)
            if per_config and got >= per_config:
                break
        if data_files:  # explicit files are one source for every config slot
            break
    if max_items:
        out.items = out.items[:max_items]
    seen: set[str] = set()
    unique: list[EvalItem] = []
    for it in out.items:  # ids key resumable records: a repeated id keeps its first item
        if it.item_id in seen:
            out.duplicate_ids.append(it.item_id)
        else:
            seen.add(it.item_id)
            unique.append(it)
    out.items = unique
    return out
