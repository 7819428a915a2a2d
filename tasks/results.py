"""Where the stages' Prefect results are stored, and how they are read back: JSON only.

Prefect decodes a stored result with the serializer its file names, so a result file edited to
name ``pickle`` (or a JSON serializer with another ``object_decoder`` import path) would run its
payload when a re-run looks up its cache. :class:`JsonResultStorage` is a ``LocalFileSystem``
that hands Prefect a record only when the file names the JSON serializer, and then always with
the plain JSON serializer (``object_decoder`` none, whatever the file says). Any other file is
refused with a warning naming it: Prefect treats the refusal as a cache miss, so the stage runs
again and overwrites the file with a JSON result.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from prefect.filesystems import LocalFileSystem
from prefect.serializers import JSONSerializer
from prefect.utilities.asyncutils import run_sync_in_worker_thread

log = logging.getLogger(__name__)

#: the one serializer stored results are decoded with: stdlib JSON, no object hook
JSON_ONLY = JSONSerializer(object_decoder=None)


class StoredResultRejected(ValueError):
    """A stored result file that does not name the JSON serializer (or is not a JSON record)."""


def json_only_record(path: str | Path, content: bytes) -> bytes:
    """``content`` (a Prefect result record) with its serializer replaced by :data:`JSON_ONLY`;
    :class:`StoredResultRejected` naming ``path`` unless it is a JSON record naming ``json``."""
    try:
        record = json.loads(content)
        kind = record["metadata"]["serializer"]["type"]
    except (ValueError, KeyError, TypeError) as e:
        kind, why = None, f"not a JSON result record ({type(e).__name__})"
    else:
        why = f"it names serializer {kind!r}"
    if kind != "json":
        msg = f"ignoring stored result {path}: {why}; only JSON results are read, the stage runs again"
        log.warning(msg)
        raise StoredResultRejected(msg)
    record["metadata"]["serializer"] = JSON_ONLY.model_dump(mode="json")
    return json.dumps(record).encode()


class JsonResultStorage(LocalFileSystem):
    """A local folder of Prefect results that are only ever read as plain JSON."""

    _block_type_name = "ZPPO JSON Result Storage"
    _block_type_slug = "zppo-json-result-storage"

    def _read_checked(self, path: str) -> bytes:
        full = Path(self._resolve_path(path))
        if not full.is_file():
            raise ValueError(f"Path {full} does not exist or is not a file.")
        return json_only_record(full, full.read_bytes())

    async def aread_path(self, path: str) -> bytes:
        return await run_sync_in_worker_thread(self._read_checked, path)

    def read_path(self, path: str, _sync: bool = True) -> bytes:  # type: ignore[override]
        """Synchronous read (Prefect's sync callers pass ``_sync=True``)."""
        return self._read_checked(path)


__all__ = ["JSON_ONLY", "JsonResultStorage", "StoredResultRejected", "json_only_record"]
