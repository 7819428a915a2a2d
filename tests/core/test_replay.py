"""Prompt replay buffer: admission, graduation, FIFO eviction, sampling, exact state round trip."""

import json
import random

import pytest

from zppo_core.replay import PromptReplayBuffer, accuracy_bin


def test_admit_graduate_keep_none():
    b = PromptReplayBuffer(capacity=10, threshold=0.5)
    assert b.update("q1", 0.0, {"question": "1+1?"}) == "admitted"
    assert b.update("q2", 0.375) == "admitted"
    assert b.update("q3", 0.5) == "none"  # not hard (0.5 is not < 0.5) and not present
    assert b.update("q1", 0.25, {"question": "changed"}) == "kept"  # revisit: no-op
    assert b.payload("q1") == {"question": "1+1?"} and b.entry_accuracy("q1") == 0.0
    assert b.update("q1", 0.5) == "graduated"
    assert "q1" not in b and "q2" in b and len(b) == 1
    s = b.stats()
    assert (s["admissions"], s["graduations"], s["revisits"], s["evictions"]) == (2, 1, 1, 0)
    assert s["admitted_by_bin"] == {"0.000": 1, "0.375": 1}
    assert s["graduated_by_bin"] == {"0.000": 1}  # binned by ENTRY accuracy, not by the 0.5 exit


def test_revisit_keeps_fifo_position():
    b = PromptReplayBuffer(capacity=3)
    for q in ("a", "b", "c"):
        b.update(q, 0.0)
    b.update("a", 0.125)  # still hard: stays oldest
    b.update("d", 0.0)
    assert b.evict() == ["a"]
    assert b.question_ids() == ["b", "c", "d"]


def test_eviction_happens_after_the_whole_refresh():
    # full buffer; one step admits "n" and graduates "b": net size stays 3 -> nobody evicted
    b = PromptReplayBuffer(capacity=3)
    for q in ("a", "b", "c"):
        b.update(q, 0.0)
    out = b.refresh([("n", 0.25, None), ("b", 0.75, None), ("x", 1.0, None), ("c", 0.0, None)])
    assert out == {"admitted": 1, "graduated": 1, "kept": 1, "none": 1, "evicted": [],
                   "by_bin": {"admitted": {"0.250": 1}, "graduated": {"0.000": 1}, "evicted": {}}}
    assert b.question_ids() == ["a", "c", "n"]
    # two more admissions -> evict the two oldest, FIFO
    out = b.refresh([("p", 0.0, None), ("r", 0.125, None)])
    assert out["evicted"] == ["a", "c"] and b.question_ids() == ["n", "p", "r"]
    # this refresh's events only, by the entry accuracy of each entry
    assert out["by_bin"] == {"admitted": {"0.000": 1, "0.125": 1}, "graduated": {}, "evicted": {"0.000": 2}}
    s = b.stats()
    assert s["evictions"] == 2 and s["evicted_by_bin"] == {"0.000": 2}
    assert s["size"] == 3 and s["fill_fraction"] == 1.0


def test_sample_uniform_without_replacement_and_items_stay():
    b = PromptReplayBuffer(capacity=100, seed=7)
    for i in range(10):
        b.update(f"q{i}", 0.0, {"i": i})
    got = b.sample(4)
    ids = [q for q, _ in got]
    assert len(set(ids)) == 4 and all(p == {"i": int(q[1:])} for q, p in got)
    # the buffer's own RNG: same as random.Random(7).sample over the FIFO order
    assert ids == random.Random(7).sample([f"q{i}" for i in range(10)], 4)
    assert len(b) == 10  # sampled items stay
    assert len(b.sample(50)) == 10  # min(k, len)
    assert b.sample(0) == [] and PromptReplayBuffer().sample(5) == []


def test_sampling_is_roughly_uniform():
    b = PromptReplayBuffer(capacity=100, seed=1)
    for i in range(5):
        b.update(f"q{i}", 0.0)
    counts = {f"q{i}": 0 for i in range(5)}
    for _ in range(2000):
        for q, _ in b.sample(2):
            counts[q] += 1
    # each item drawn with prob 2/5 per call -> 800 expected; 5-sigma band ~ +-110
    assert all(690 < c < 910 for c in counts.values()), counts


def test_state_round_trip_is_exact_and_json():
    b = PromptReplayBuffer(capacity=4, threshold=0.5, seed=3)
    b.refresh([(f"q{i}", i / 8, {"text": f"x{i}"}) for i in range(6)])  # q0..q3 admitted, q4, q5 not
    b.update("q0", 0.125)  # revisit
    b.sample(2)  # advance the RNG
    state = json.loads(json.dumps(b.state_dict()))
    c = PromptReplayBuffer(capacity=99, threshold=0.9, seed=123)
    c.load_state_dict(state)
    assert c.capacity == 4 and c.threshold == 0.5 and c.question_ids() == b.question_ids()
    assert c.stats() == b.stats()
    assert [c.sample(3) for _ in range(5)] == [b.sample(3) for _ in range(5)]
    assert c.state_dict() == b.state_dict()


def test_bad_input_and_bad_state():
    b = PromptReplayBuffer()
    with pytest.raises(TypeError, match="question_id must be str"):
        b.update(7, 0.0)
    with pytest.raises(ValueError, match="'q' must be in"):
        b.update("q", 1.5)
    with pytest.raises(ValueError, match="capacity"):
        PromptReplayBuffer(capacity=0)
    with pytest.raises(KeyError, match="rng_state"):
        b.load_state_dict({k: v for k, v in b.state_dict().items() if k != "rng_state"})
    bad = b.state_dict() | {"entries": [["q", {"payload": None}]]}
    with pytest.raises(ValueError, match=r"entries\[0\]"):
        b.load_state_dict(bad)


def test_accuracy_bin_keys():
    assert [accuracy_bin(k / 8) for k in range(4)] == ["0.000", "0.125", "0.250", "0.375"]


def test_entry_bins_are_the_hard_accuracies():
    from zppo_core.replay import entry_bins

    assert entry_bins(8, 0.5) == ["0.000", "0.125", "0.250", "0.375"]
    assert entry_bins(4, 0.5) == ["0.000", "0.250"]
    assert entry_bins(3, 0.5) == ["0.000", "0.333"]
