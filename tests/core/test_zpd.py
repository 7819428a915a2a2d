"""ZPD stage: hard selection, pre-cap, BCQ/NCQ planning, post-cap, prompt building, determinism."""

import random

import pytest

from zppo_core.prompts import build_bcq, build_ncq
from zppo_core.zpd import (
    PlainGroup,
    TeacherRollouts,
    build_reformulated_prompts,
    compression_inputs,
    global_precap,
    group_uid,
    hard_questions,
    plan_reformulations,
    precap,
    precapped,
    reformulation_stats,
)


def resp(qid, i, ans):
    return f"{qid} rollout {i} ... \\boxed{{{ans}}}" if ans is not None else f"{qid} rollout {i} (truncated)"


def group(qid, rewards, answers, is_new=True):
    return PlainGroup(
        question_id=qid,
        question=f"Question {qid}?",
        gold=f"gold-{qid}",
        responses=[resp(qid, i, a) for i, a in enumerate(answers)],
        rewards=rewards,
        payload={"image": f"{qid}.png"},
        is_new=is_new,
    )


# One step, G_S = 4. New questions in loader order, then replayed ones.
GROUPS = [
    group("n1", [1, 0, 0, 0], ["5", "3", "4", "3"]),  # acc 0.25, hard
    group("n2", [1, 1, 1, 0], ["5", "5", "5", "2"]),  # acc 0.75, easy
    group("n3", [0, 0, 0, 0], ["1", "1", "1", "1"]),  # acc 0.00, hard
    group("n4", [1, 0, 0, 0], ["7", "6", "6", "6"]),  # acc 0.25, hard (ties n1, later)
    group("r1", [0, 0, 0, 0], ["8", "9", None, "8"], is_new=False),  # acc 0.00 (ties n3, later)
    group("r2", [1, 1, 0, 0], ["2", "2", "0", "1"], is_new=False),  # acc 0.50: NOT hard
]
TEACHER = {
    "n3": TeacherRollouts("n3", ["t0", "t1", "t2", "t3"], [0, 0, 0, 0]),  # teacher fails: NCQ only
    "r1": TeacherRollouts("r1", ["t0", "T1 \\boxed{x}", "T2 \\boxed{x}", "t3"], [0, 1, 1, 0]),
    "n1": TeacherRollouts("n1", ["T0 \\boxed{5}", "t1", "t2", "t3"], [1, 0, 0, 0]),
    "n4": TeacherRollouts("n4", ["a", "b", "c", "d"], [1, 1, 1, 1]),
}


def ids(gs):
    return [g.question_id for g in gs]


def plan(cap=10, use_bcq=True, use_ncq=True, seed=0, teacher=TEACHER):
    pre = precap(hard_questions(GROUPS, 0.5), 10)
    return plan_reformulations(pre, teacher, use_bcq, use_ncq, cap, random.Random(seed))


def test_hard_is_strictly_below_tau_and_includes_replayed():
    assert ids(hard_questions(GROUPS, 0.5)) == ["n1", "n3", "n4", "r1"]


def test_precap_ascending_with_stable_tie_break():
    hard = hard_questions(GROUPS, 0.5)
    assert ids(precap(hard, 10)) == ["n3", "r1", "n1", "n4"]  # 0.0, 0.0 (appearance), .25, .25
    assert ids(precap(hard, 3)) == ["n3", "r1", "n1"]
    assert precap(hard, 0) == []
    # the global pre-cap over (order, id, accuracy) of every rank, then one rank's share of it
    entries = [(k, g.question_id, g.mean_accuracy) for k, g in enumerate(GROUPS) if g in hard]
    assert global_precap(entries, 3) == ["n3", "r1", "n1"] == ids(precap(hard, 3))
    rank1 = [g for g in hard if g.question_id in ("n1", "r1", "n4")]  # this rank's hard questions
    assert ids(precapped(rank1, global_precap(entries, 3))) == ["r1", "n1"]


def test_plan_order_bcq_admissibility_and_ncq_uses_all_wrong():
    plans = plan()
    assert [(p.group.question_id, p.kind) for p in plans] == [
        ("n3", "ncq"),  # teacher all wrong -> no BCQ
        ("r1", "bcq"), ("r1", "ncq"),
        ("n1", "bcq"), ("n1", "ncq"),
        ("n4", "bcq"), ("n4", "ncq"),
    ]
    # NCQ: every wrong rollout in rollout order
    assert [c.index for c in plans[2].candidates] == [0, 1, 2, 3]
    assert [c.index for c in plans[4].candidates] == [1, 2, 3]
    assert all(c.source == "student" for p in plans if p.kind == "ncq" for c in p.candidates)
    # BCQ: one teacher-correct then one student-wrong candidate, texts of those very rollouts
    bcq_r1, bcq_n1 = plans[1].candidates, plans[3].candidates
    assert [c.source for c in bcq_r1] == [c.source for c in bcq_n1] == ["teacher", "student"]
    assert bcq_r1[0].text == TEACHER["r1"].responses[bcq_r1[0].index]
    assert bcq_r1[1].text == GROUPS[4].responses[bcq_r1[1].index]
    assert bcq_n1[0].index == 0  # n1's only teacher-correct rollout


#: the admissible BCQ picks: teacher rollouts with reward 1, student rollouts with reward 0
ADMISSIBLE = {"r1": ({1, 2}, {0, 1, 2, 3}), "n1": ({0}, {1, 2, 3}), "n4": ({0, 1, 2, 3}, {1, 2, 3})}


def test_bcq_draws_only_admissible_candidates_and_reaches_every_one():
    """Over many step seeds every draw is admissible and every admissible rollout is drawn
    (uniform choice; nothing about the order of the RNG calls is assumed)."""
    seen = {q: (set(), set()) for q in ADMISSIBLE}
    for seed in range(200):
        for p in plan(seed=seed):
            if p.kind != "bcq":
                continue
            teacher_pick, student_pick = p.candidates
            t_ok, s_ok = ADMISSIBLE[p.group.question_id]
            assert teacher_pick.index in t_ok and student_pick.index in s_ok, (seed, p.group.question_id)
            seen[p.group.question_id][0].add(teacher_pick.index)
            seen[p.group.question_id][1].add(student_pick.index)
    assert seen == {q: (set(t), set(s)) for q, (t, s) in ADMISSIBLE.items()}
    first = [[(c.source, c.index) for c in p.candidates] for p in plan(seed=5)]
    assert first == [[(c.source, c.index) for c in p.candidates] for p in plan(seed=5)]  # seeded


def test_post_cap_keeps_bcq_before_ncq():
    plans = plan(cap=4)
    assert [(p.group.question_id, p.kind) for p in plans] == [
        ("n3", "ncq"), ("r1", "bcq"), ("r1", "ncq"), ("n1", "bcq"),  # n1's NCQ dropped, BCQ kept
    ]
    assert plan(cap=0) == []


def test_method_switches():
    assert {p.kind for p in plan(use_bcq=False)} == {"ncq"} and len(plan(use_bcq=False)) == 4
    assert [p.group.question_id for p in plan(use_ncq=False)] == ["r1", "n1", "n4"]
    assert plan(use_bcq=False, use_ncq=False, teacher=None) == []
    assert len(plan(use_bcq=False, teacher=None)) == 4  # no teacher needed without BCQ
    with pytest.raises(KeyError, match="n4"):
        plan(teacher={k: v for k, v in TEACHER.items() if k != "n4"})


def test_build_uncompressed_prompts_uids_gold_payload():
    plans = plan()
    refs = build_reformulated_prompts(plans, None, random.Random(1), step=12)
    assert [r.uid for r in refs] == [
        "n3:ncq:12", "r1:bcq:12", "r1:ncq:12", "n1:bcq:12", "n1:ncq:12", "n4:bcq:12", "n4:ncq:12",
    ]
    by = {r.uid: r for r in refs}
    for r in refs:
        g = next(g for g in GROUPS if g.question_id == r.question_id)
        assert r.gold == g.gold and r.payload == g.payload and r.is_new == g.is_new
        assert r.source_accuracy == g.mean_accuracy
    # NCQ: deduplicated last-boxed answers of the wrong raw rollouts; unboxed r1[2] gives none
    assert by["n1:ncq:12"].wrong_answers == ["3", "4"]
    assert by["r1:ncq:12"].wrong_answers == ["8", "9"]
    assert by["n3:ncq:12"].wrong_answers == ["1"]
    n1 = GROUPS[0]
    traces = [n1.responses[i] for i in (1, 2, 3)]
    assert by["n1:ncq:12"].prompt == build_ncq(n1.question, ["3", "4", "3"], traces)
    assert "\\boxed{3}, \\boxed{4}." in by["n1:ncq:12"].prompt
    # BCQ: the prompt lists the two candidates in their shuffled order; correct_candidate marks the teacher's
    b = by["r1:bcq:12"]
    texts = {c.key: c.text for c in plans[1].candidates}
    assert sorted(b.candidate_keys) == sorted(texts)
    assert b.prompt == build_bcq(GROUPS[4].question, [texts[k] for k in b.candidate_keys])
    assert "/teacher/" in b.candidate_keys[b.correct_candidate]
    # audit: each candidate's last boxed answer, in prompt order (None where a rollout has no box)
    assert b.candidate_answers[b.correct_candidate] == "x"
    assert [a for i, a in enumerate(b.candidate_answers) if i != b.correct_candidate] in (["8"], ["9"], [None])
    assert by["r1:ncq:12"].candidate_answers == ["8", "9", None, "8"]


def test_bcq_shuffle_uses_the_rng_both_orders_occur():
    plans = plan()
    firsts = set()
    for seed in range(20):
        ref = build_reformulated_prompts(plans, None, random.Random(seed))[1]
        firsts.add(ref.correct_candidate)
    assert firsts == {0, 1}


def test_compression_keys_dedup_and_are_used():
    plans = plan()
    inputs = compression_inputs(plans)
    # r1's BCQ student candidate is also one of r1's NCQ candidates: compressed once
    bcq_student_key = plans[1].candidates[1].key
    assert bcq_student_key in [c.key for c in plans[2].candidates]
    n_keys = sum(len(p.candidates) for p in plans)
    assert len(inputs) == n_keys - 3  # three BCQs share their student candidate with their NCQ
    compressed = {k: f"<<summary of {k}>>" for k in inputs}
    refs = build_reformulated_prompts(plans, compressed, random.Random(0), step=1)
    for r in refs:
        for k in r.candidate_keys:
            assert compressed[k] in r.prompt
    # answers are still parsed from the raw rollouts, not the summaries
    assert refs[4].wrong_answers == ["3", "4"]
    with pytest.raises(KeyError, match="no compressed text"):
        build_reformulated_prompts(plans, {}, random.Random(0))


def test_ncq_shuffle_order_is_a_permutation():
    plans = plan()
    refs = build_reformulated_prompts(plans, None, random.Random(3), ncq_order="shuffle")
    assert sorted(refs[2].candidate_keys) == sorted(c.key for c in plans[2].candidates)
    with pytest.raises(ValueError, match="ncq_order"):
        build_reformulated_prompts(plans, None, random.Random(3), ncq_order="random")


def test_reproducible_with_same_seed():
    def run(seed):
        plans = plan(seed=seed)
        refs = build_reformulated_prompts(plans, None, random.Random(seed + 100), ncq_order="shuffle")
        return [(r.uid, r.prompt, r.candidate_keys, r.correct_candidate) for r in refs]

    assert run(5) == run(5)
    assert len({str(run(s)) for s in range(6)}) > 1


def test_duplicate_question_in_step_rejected():
    g = GROUPS[2]
    with pytest.raises(ValueError, match="twice"):
        plan_reformulations([g, g], None, False, True, 10, random.Random(0))


def test_bad_rewards_are_named():
    with pytest.raises(ValueError, match="'qx'.*reward\\[1\\] = 0.5"):
        PlainGroup("qx", "q", "a", ["r0", "r1"], [1.0, 0.5])
    with pytest.raises(ValueError, match="2 responses but 1 rewards"):
        PlainGroup("qx", "q", "a", ["r0", "r1"], [1.0])
    with pytest.raises(ValueError, match="no responses"):
        PlainGroup("qx", "q", "a", [], [])


def test_reformulation_stats():
    pre = precap(hard_questions(GROUPS, 0.5), 10)
    s = reformulation_stats(GROUPS, 0.5, pre, TEACHER, plan(cap=4))
    assert s == {
        "n_questions": 6, "n_hard": 4, "hard_fraction": 4 / 6, "n_precap": 4,
        "n_bcq": 2, "n_ncq": 2, "n_teacher_all_wrong": 1,
    }


def test_group_uid_names_question_kind_and_step():
    assert group_uid("q7", "bcq", 3) == "q7:bcq:3"
