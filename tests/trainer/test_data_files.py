"""The training parquet is opened under its literal name and a bad file is named in the error."""

from __future__ import annotations

import pandas as pd
import pytest

from zppo_core.trainer.data import DataError, load_questions


def test_training_file_with_glob_characters_and_quotes_is_read_literally(tmp_path):
    root = tmp_path / "it's [x]"
    root.mkdir()
    pd.DataFrame({"id": ["b1"], "question": ["Q?"], "answer": ["1"]}).to_parquet(root / "train-[ab].parquet")
    pd.DataFrame({"id": ["decoy"], "question": ["D?"], "answer": ["2"]}).to_parquet(root / "train-a.parquet")
    rows = load_questions(root / "train-[ab].parquet")
    assert [r["id"] for r in rows] == ["b1"]


def test_unreadable_training_file_is_named(tmp_path):
    bad = tmp_path / "zppo77k.parquet"
    bad.write_bytes(b"PAR1 truncated")
    with pytest.raises(DataError, match=r"zppo77k\.parquet: cannot read parquet"):
        load_questions(bad)
