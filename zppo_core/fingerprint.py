"""Cheap fingerprints of inputs too large to hash by content (model folders, data folders).

Shared by the evaluation records (which model produced an answer) and the pipeline's cache keys.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def stable_hash(obj: Any, length: int = 16) -> str:
    """Short sha256 of ``obj`` as sorted JSON (non-JSON values through ``str``)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def path_fingerprint(path: str | Path) -> str:
    """Fingerprint of a local file or folder: relative names, sizes and mtimes.

    A string that is not a local path (an HF id, ``builtin:...``) fingerprints as itself.
    """
    p = Path(path)
    if not p.exists():
        return stable_hash({"spec": str(path)})
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    entries = []
    for f in files:
        st = f.stat()
        rel = f.name if f == p else str(f.relative_to(p))
        entries.append((rel, st.st_size, st.st_mtime_ns))
    return stable_hash(entries)


__all__ = ["path_fingerprint", "stable_hash"]
