"""Checkpoint files (atomic layout, optimizer/RNG round trips, pruning) and the data cursor."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
import torch

from zppo_core.trainer import checkpoint as ck
from zppo_core.trainer.data import DataCursor, DataError, load_questions


def _fake_model_saver(d):
    from safetensors.torch import save_file

    d.mkdir()
    (d / "config.json").write_text("{}")
    save_file({"w": torch.zeros(1)}, str(d / "model.safetensors"))


#: what a complete checkpoint's state holds besides what the test puts there
_STATE = {"cursor": {}, "buffer": {}, "rng": []}
_OPT = {"state": {0: {"exp_avg": torch.zeros(1)}}, "param_groups": []}


def _save(root, step, keep, **kw):
    return ck.save_checkpoint(root, step, save_model=_fake_model_saver, optimizer_state=_OPT,
                              trainer_state=dict(_STATE, run_id=f"r{step}"), keep=keep, **kw)


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path):
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    lin(torch.randn(4, 3)).sum().backward()
    opt.step()
    ck.optimizer_to_files(opt.state_dict(), tmp_path)
    back = ck.optimizer_from_files(tmp_path)
    ref = opt.state_dict()
    assert back["param_groups"] == ref["param_groups"]
    for pid, st in ref["state"].items():
        for k, v in st.items():
            assert torch.equal(back["state"][pid][k], v)
    opt2 = torch.optim.AdamW(lin.parameters(), lr=1.0)
    opt2.load_state_dict(back)
    assert opt2.param_groups[0]["lr"] == 1e-3 and opt2.param_groups[0]["betas"] == (0.9, 0.95)


def test_rng_state_round_trip_replays_the_same_draws():
    state = json.loads(json.dumps(ck.get_rng_state()))  # must be plain JSON
    a = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    ck.set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == a


def test_save_is_atomic_latest_ignores_incomplete_and_prunes(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step, keep=2)
    root = ck.checkpoint_root(tmp_path)
    (root / "step_000009").mkdir()  # a folder without trainer_state.json is not a checkpoint
    (root / ".tmp-step_000010-1").mkdir()  # a crashed save
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [2, 3]
    assert ck.find_latest(tmp_path).name == "step_000003"
    assert ck.latest_run_id(tmp_path) == "r3"
    assert ck.read_state(ck.find_latest(tmp_path))["step"] == 3
    assert ck.latest_run_id(tmp_path / "nothing") is None


def test_prune_keeps_the_newest_usable_and_the_protected_checkpoint(tmp_path, caplog):
    first = _save(tmp_path, 1, keep=1)
    _save(tmp_path, 2, keep=1, protect=(first,))  # a resume from step 1 is running: keep it
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [1, 2]
    _save(tmp_path, 3, keep=1, protect=(first,))
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [1, 3]
    ck.prune(tmp_path, keep=1)  # the run is over: nothing protected any more
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [3]
    # a damaged newer checkpoint (truncated weights) neither counts nor survives
    bad = ck.checkpoint_root(tmp_path) / "step_000004"
    import shutil

    shutil.copytree(ck.find_latest(tmp_path), bad)
    (bad / "model" / "model.safetensors").write_bytes(b"\x00" * 3)
    ck.prune(tmp_path, keep=1)
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [3]
    assert "deleting unusable checkpoint" in caplog.text and "step_000004" in caplog.text


def test_cursor_is_seeded_resumable_and_wraps_epochs():
    a = DataCursor(10, seed=3)
    first = a.next(4)
    state = a.state_dict()
    rest = a.next(8)  # crosses into epoch 1
    b = DataCursor(10, seed=3)
    b.load_state_dict(state)
    assert b.next(8) == rest
    assert sorted(first + rest[:6]) == list(range(10)) and a.epoch == 1
    with pytest.raises(DataError, match="rows"):
        DataCursor(11, seed=3).load_state_dict(state)


def test_load_questions_names_the_bad_row_and_column(tmp_path):
    p = tmp_path / "d.parquet"
    pd.DataFrame({"id": ["a", "b"], "question": ["q1", ""], "answer": ["1", "2"]}).to_parquet(p)
    with pytest.raises(DataError, match=r"row 1 column 'question'"):
        load_questions(p)
    pd.DataFrame({"id": ["a"], "question": ["q"], "answer": ["1"], "image": ["x.png"]}).to_parquet(p)
    with pytest.raises(DataError, match="image file not found"):
        load_questions(p)
    pd.DataFrame({"id": ["a"], "question": ["q"]}).to_parquet(p)
    with pytest.raises(DataError, match="missing column"):
        load_questions(p)


@pytest.mark.parametrize("image", ["../../etc/passwd", "/etc/passwd", "imgs/../../x.png"])
def test_image_paths_must_stay_inside_the_dataset_folder(tmp_path, image):
    p = tmp_path / "data" / "d.parquet"
    p.parent.mkdir()
    pd.DataFrame({"id": ["a"], "question": ["q"], "answer": ["1"], "image": [image]}).to_parquet(p)
    with pytest.raises(DataError, match=r"row 0 \(id 'a'\) column 'image': .* is not a path inside the dataset"):
        load_questions(p)
