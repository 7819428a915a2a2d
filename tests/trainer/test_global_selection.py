"""Algorithm 1's pre-cap / post-cap is one decision over the whole step: the same BCQ/NCQ
questions are selected from the same outcomes whether one process or two ranks roll them out.
Two ranks run as two threads whose gather is a barrier exchange (a mismatched number of gathers
breaks the barrier and fails the test instead of hanging)."""

from __future__ import annotations

import threading
from pathlib import Path

from zppo_core import zpd
from zppo_core.config import load_config
from zppo_core.engines.base import Sample
from zppo_core.trainer.data import shard
from zppo_core.trainer.rollout import RolloutIO, collect

ROOT = Path(__file__).resolve().parents[2]
G = 4
#: question -> correct plain rollouts out of G; tau 0.5 makes q0 q1 q2 q5 q6 hard
CORRECT = {"q0": 0, "q1": 1, "q2": 0, "q3": 2, "q4": 4, "q5": 1, "q6": 0}
TEACHER_KNOWS = {"q2", "q5"}  # the only questions with a correct teacher rollout (BCQ admissible)


class Scripted:
    """Student/teacher whose outcomes are fixed per question id (plain prompts) or all wrong."""

    def __init__(self, correct: dict[str, int]) -> None:
        self.correct = correct

    def generate(self, requests, n, params):
        out = []
        for r in requests:
            k = self.correct.get(r.request_id, 0)
            ans = f"ans-{r.request_id}"
            out.append([Sample(ans if i < k else "\\boxed{999}", token_ids=[5, 6], prompt_ids=None) for i in range(n)])
        return out


def _questions():
    return [{"id": q, "question": f"question {q}?", "answer": f"ans-{q}", "image_path": ""} for q in CORRECT]


def _io():
    return RolloutIO(
        student=Scripted(CORRECT), teacher=Scripted({q: 2 for q in TEACHER_KNOWS}),
        render=lambda req: ([1, 2, 3], None),
        grade=lambda texts, q: [float(t == q["answer"]) for t in texts],
        load_image=lambda p: None,
    )


def _cfg():
    return load_config(ROOT / "configs" / "tiny.yaml", {
        "zppo.method": "zppo", "zppo.tau": 0.5, "rollout.group_size": G, "rollout.teacher_group_size": 2,
        "zppo.compression": False,
    })


def _selected(sr) -> set[tuple[str, str]]:
    return {(r.question_id, r.kind) for r in sr.rollouts if r.kind != "plain"}


def _run_ranks(world: int, cap: int):
    qs = _questions()
    slots: list[list] = [[] for _ in range(world)]
    barrier = threading.Barrier(world, timeout=60)
    results: list = [None] * world
    errors: list[BaseException] = []

    def gather_of(rank):
        def gather(items):
            slots[rank] = list(items)
            barrier.wait()
            out = [x for s in slots for x in s]
            barrier.wait()
            return out
        return gather

    def run(rank):
        try:
            results[rank] = collect(_io(), _cfg(), shard(qs, rank, world), [], step=1, cap=cap, seed=rank,
                                    order=shard(list(range(len(qs))), rank, world), gather=gather_of(rank))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_world_1_and_2_select_the_same_questions():
    cap = 3
    (one,) = _run_ranks(1, cap)
    # by hand: hard = q0 q1 q2 q5 q6; pre-cap 3 by accuracy, ties in order -> q0 q2 q6;
    # plans in that order: q0 ncq, q2 bcq, q2 ncq, q6 ncq; post-cap 3 keeps the first three
    expected = {("q0", "ncq"), ("q2", "bcq"), ("q2", "ncq")}
    assert _selected(one) == expected
    r0, r1 = _run_ranks(2, cap)
    assert _selected(r0) | _selected(r1) == expected
    assert not (_selected(r0) & _selected(r1))
    assert _selected(r1) == set()  # q0 q2 q6 all live on rank 0 (strided shards): rank 1 gets none
    assert r0.counts.bcq + r1.counts.bcq == one.counts.bcq == 1
    assert r0.counts.ncq + r1.counts.ncq == one.counts.ncq == 2


def test_selection_with_caps_reaching_both_ranks_and_three_ranks():
    cap = 4  # pre-cap q0 q2 q6 q1; plans q0 ncq, q2 bcq, q2 ncq, q6 ncq, q1 ncq -> first four
    expected = {("q0", "ncq"), ("q2", "bcq"), ("q2", "ncq"), ("q6", "ncq")}
    for world in (1, 2, 3):
        res = _run_ranks(world, cap)
        got = [s for r in res for s in _selected(r)]
        assert set(got) == expected and len(got) == len(expected), (world, got)


def test_global_precap_and_postcap_are_the_per_process_rules_on_one_list():
    entries = [(0, "a", 0.25), (1, "b", 0.0), (2, "c", 0.25), (3, "d", 0.0)]
    groups = [zpd.PlainGroup(q, "?", "x", ["y"] * 4, [1.0 if i < int(m * 4) else 0.0 for i in range(4)])
              for _, q, m in entries]
    assert zpd.global_precap(entries, 3) == [g.question_id for g in zpd.precap(groups, 3)] == ["b", "d", "a"]
    assert zpd.global_postcap([(1, 1, "b", "ncq"), (0, 1, "d", "ncq"), (1, 0, "b", "bcq")], 2) == {
        ("d", "ncq"), ("b", "bcq")}


def test_plain_prompt_longer_than_max_prompt_tokens_is_an_error_naming_the_question():
    import pytest

    cfg = load_config(ROOT / "configs" / "tiny.yaml", {"rollout.max_prompt_tokens": 2, "zppo.method": "grpo"})
    with pytest.raises(ValueError, match=r"question 'q0': plain prompt has 3 tokens > rollout.max_prompt_tokens=2"):
        collect(_io(), cfg, _questions()[:1], [], step=1, cap=0, seed=0)
