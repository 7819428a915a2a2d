"""Training questions: reading the curated ZPPO-77K parquet and a resumable data cursor.

A question is a plain ``dict`` with the parquet's columns (see docs/ARCHITECTURE.md, "Curated
data"): ``id, source, sub_dataset, tier, question, answer, reward_type, image,
teacher_response``. Plain dicts keep the replay buffer and checkpoints JSON-serialisable.

The cursor walks a seeded permutation of the rows (the paper's single pass over ZPPO-77K);
when a run asks for more questions than the file holds it starts a new epoch with a new
permutation (seed + epoch), which only happens on small generated sets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Columns the trainer needs; ``teacher_response`` and ``tier`` may be absent (filled with None/0).
REQUIRED_COLUMNS = ("id", "question", "answer")
OPTIONAL_COLUMNS: dict[str, Any] = {
    "source": "",
    "sub_dataset": "",
    "tier": 0,
    "reward_type": "rule",
    "image": "",
    "teacher_response": None,
}


class DataError(ValueError):
    """The training file is unusable; the message names the file, row and column."""


def load_questions(path: str | Path, image_root: str = "") -> list[dict[str, Any]]:
    """Read the curated parquet into a list of question dicts (row order kept).

    ``image`` paths are relative paths inside ``image_root`` (default: the parquet's folder; an
    absolute path or one leaving it with ``..`` is an error; symlinks inside are followed) and
    stored as absolute paths in ``image_path`` ("" when the row has no image).
    """
    import pandas as pd  # local: keeps `import zppo_core.trainer` light

    p = Path(path)
    if not p.exists():
        raise DataError(f"training data not found: {p} (set data.train_path)")
    try:
        df = pd.read_parquet(p)  # a local path is opened literally (no glob expansion)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types; name the file
        raise DataError(f"{p}: cannot read parquet: {type(e).__name__}: {e}") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {missing}; found {list(df.columns)}")
    if len(df) == 0:
        raise DataError(f"{p}: no rows")
    root = Path(image_root) if image_root else p.parent
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, rec in enumerate(df.to_dict("records")):
        q = {k: rec.get(k, d) for k, d in OPTIONAL_COLUMNS.items()}
        q.update({k: rec[k] for k in REQUIRED_COLUMNS})
        for col in ("id", "question", "answer"):
            if not isinstance(q[col], str) or not q[col].strip():
                raise DataError(f"{p}: row {i} column {col!r} must be a non-empty string, got {q[col]!r}")
        if q["id"] in seen:
            raise DataError(f"{p}: row {i}: duplicate id {q['id']!r}")
        seen.add(q["id"])
        tr = q["teacher_response"]
        q["teacher_response"] = tr if isinstance(tr, str) and tr else None
        q["tier"] = int(q["tier"]) if q["tier"] == q["tier"] and q["tier"] is not None else 0
        img = q["image"] if isinstance(q["image"], str) else ""
        if img and (Path(img).is_absolute() or os.path.normpath(img).split(os.sep)[0] == os.pardir):
            raise DataError(f"{p}: row {i} (id {q['id']!r}) column 'image': {img!r} is not a path inside the "
                            f"dataset's image folder {root}")
        q["image"] = img
        q["image_path"] = str((root / img).resolve()) if img else ""
        if img and not Path(q["image_path"]).exists():
            raise DataError(f"{p}: row {i} (id {q['id']!r}): image file not found: {q['image_path']}")
        rows.append(q)
    return rows


@dataclass
class DataCursor:
    """Seeded, resumable walk over ``n_rows`` row indices (global, identical on every rank)."""

    n_rows: int
    seed: int
    epoch: int = 0
    position: int = 0

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n_rows)

    def next(self, n: int) -> list[int]:
        """The next ``n`` row indices; wraps into a new epoch (new permutation) when needed."""
        out: list[int] = []
        while len(out) < n:
            perm = self._perm(self.epoch)
            take = perm[self.position : self.position + (n - len(out))]
            out.extend(int(i) for i in take)
            self.position += len(take)
            if self.position >= self.n_rows:
                self.epoch += 1
                self.position = 0
        return out

    def state_dict(self) -> dict[str, int]:
        return {"n_rows": self.n_rows, "seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["n_rows"]) != self.n_rows or int(state["seed"]) != self.seed:
            raise DataError(
                f"checkpoint data cursor was for {state['n_rows']} rows / seed {state['seed']}, "
                f"but the training file has {self.n_rows} rows / seed {self.seed}"
            )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def shard(items: list[Any], rank: int, world: int) -> list[Any]:
    """Rank ``rank``'s strided share of ``items`` (``items[rank::world]``)."""
    return items[rank::world]


__all__ = ["DataCursor", "DataError", "load_questions", "shard"]
