"""The bounded candidate-match audit files ``bcq_debug.jsonl`` / ``ncq_debug.jsonl`` (paper F.7).

Rank 0 appends each step's :class:`zppo_core.audit.AuditRecord` objects (gathered from every rank,
rank order) after :func:`zppo_core.audit.bounded` keeps the first ``per_step`` per kind and at most
``total`` per kind over the run. On resume, lines of steps after the checkpoint are dropped (they
will be produced again), so a resumed run's files equal an uninterrupted run's.
"""

from __future__ import annotations

import json
from pathlib import Path

from zppo_core.audit import KINDS, AuditRecord, bounded


def audit_path(output_dir: str | Path, kind: str) -> Path:
    return Path(output_dir) / f"{kind}_debug.jsonl"


class AuditLog:
    """Appends bounded audit records to ``<output_dir>/<kind>_debug.jsonl``."""

    def __init__(self, output_dir: str | Path, per_step: int, total: int, resume_step: int = 0) -> None:
        self.output_dir = Path(output_dir)
        self.per_step, self.total = int(per_step), int(total)
        self.written: dict[str, int] = {}
        for kind in KINDS:
            self.written[kind] = self._truncate(audit_path(self.output_dir, kind), resume_step)

    @staticmethod
    def _truncate(path: Path, resume_step: int) -> int:
        """Keep the lines of steps <= ``resume_step``; returns how many remain."""
        if not path.exists():
            return 0
        keep = []
        for line in path.read_text().splitlines():
            try:
                if int(json.loads(line)["step"]) <= resume_step:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a half-written line of a killed run
        path.write_text("".join(x + "\n" for x in keep))
        return len(keep)

    def write(self, records: list[AuditRecord]) -> int:
        """Append this step's records within the bounds; returns the lines written."""
        if self.total <= 0 or self.per_step <= 0:
            return 0
        kept = bounded(records, self.per_step, self.written, self.total)
        by_kind: dict[str, list[str]] = {}
        for r in kept:
            by_kind.setdefault(r.kind, []).append(json.dumps(r.to_json(), ensure_ascii=False))
        for kind, lines in by_kind.items():
            with audit_path(self.output_dir, kind).open("a") as f:
                f.write("".join(x + "\n" for x in lines))
        return len(kept)


__all__ = ["AuditLog", "audit_path"]
