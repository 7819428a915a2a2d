"""Local benchmark files are opened under their literal names: ``datasets`` would expand
``train-[ab].parquet`` (and a folder named ``it's [x]``) as a glob; an unreadable file is named."""

from __future__ import annotations

import pytest
from eval_helpers import png, write_rows

from eval import registry
from eval.loaders import load_items

ROWS = [{"question": "Which eats grass?", "options": ["cat", "cow", "fish", "owl"], "answer": "1", "image": png()}]
DECOY = [{"question": "Decoy?", "options": ["a", "b"], "answer": "0", "image": png()}]


@pytest.fixture
def bracket_dir(tmp_path):
    root = tmp_path / "it's [x]"
    write_rows(root / "test-[ab].parquet", ROWS)
    write_rows(root / "test-a.parquet", DECOY)  # what the glob "test-[ab].parquet" matches
    return root


def test_data_files_with_glob_characters_are_read_literally(bracket_dir):
    items = load_items(registry.get("AI2D"), data_files=str(bracket_dir / "test-[ab].parquet")).items
    assert [it.question for it in items] == ["Which eats grass?"]


def test_data_dir_with_glob_characters_finds_its_files(bracket_dir):
    items = load_items(registry.get("AI2D"), data_dir=str(bracket_dir)).items
    assert sorted(it.question for it in items) == ["Decoy?", "Which eats grass?"]


def test_unreadable_local_file_is_named(tmp_path):
    bad = tmp_path / "test-00000.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(ValueError, match=r"test-00000\.parquet"):
        load_items(registry.get("AI2D"), data_files=str(bad))
