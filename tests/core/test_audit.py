"""Candidate-match audit (paper F.7) on constructed rollouts, rates counted by hand."""

import pytest

from zppo_core.audit import AuditContext, MatchCounts, audit_rollout, bounded, match_counts, match_metrics

BCQ = AuditContext(step=3, question_id="q1", kind="bcq", gold="Paris",
                   candidate_answers=["\\text{Paris}", "London"], correct_candidate=0)
NCQ = AuditContext(step=3, question_id="q2", kind="ncq", gold="5", candidate_answers=["3", "\\text{four}", None],
                   wrong_answers=["3", "\\text{four}"])


def records():
    bcq = [("I think \\boxed{paris}", 1.0),       # correct, matches the correct candidate (\text, case)
           ("\\boxed{  London }", 0.0),            # wrong, copies the wrong candidate (whitespace)
           ("\\boxed{Rome}", 0.0),                 # wrong, matches nothing
           ("no box at all", 0.0),                 # wrong, no answer: never a match
           ("\\boxed{\\text{ PARIS }}", 1.0)]      # correct, matches
    ncq = [("\\boxed{Four}", 0.0),                 # repeats a listed wrong answer
           ("\\boxed{5}", 1.0),                    # correct
           ("so \\boxed{3}", 0.0),                 # repeats
           ("\\boxed{}", 0.0)]                     # empty answer: no match
    return [audit_rollout(BCQ, t, r) for t, r in bcq] + [audit_rollout(NCQ, t, r) for t, r in ncq]


def test_records_carry_the_audit_fields():
    r = records()
    assert [x.match_pos for x in r[:5]] == [True, False, False, False, True]
    assert [x.match_neg for x in r[:5]] == [False, True, False, False, False]
    assert r[1].correct_candidate_answer == "\\text{Paris}" and r[1].wrong_candidate_answers == ["London"]
    assert r[3].student_answer is None
    assert [x.match_neg for x in r[5:]] == [True, False, True, False]
    assert not any(x.match_pos for x in r[5:])
    j = r[0].to_json()
    assert j["question_id"] == "q1" and j["kind"] == "bcq" and j["student_answer"] == "paris" and j["reward"] == 1.0


def test_match_rates_with_the_papers_denominators():
    c = match_counts(records())
    assert c == MatchCounts(bcq_rollouts=5, bcq_correct=2, bcq_correct_match_pos=2, bcq_wrong_match_neg=1,
                            ncq_rollouts=4, ncq_correct=1, ncq_match_neg=2)
    m = match_metrics(c)
    assert m["audit/bcq_accuracy"] == pytest.approx(2 / 5)
    assert m["audit/bcq_match_pos"] == 1.0  # over the 2 correct BCQ rollouts
    assert m["audit/bcq_match_neg"] == pytest.approx(1 / 3)  # over the 3 wrong ones
    assert m["audit/ncq_accuracy"] == pytest.approx(1 / 4)
    assert m["audit/ncq_match_neg"] == pytest.approx(2 / 4)  # over every NCQ rollout
    assert match_metrics(MatchCounts())["audit/bcq_match_pos"] == 0.0


def test_bounded_per_step_and_in_total():
    rs = records()
    seen: dict[str, int] = {}
    first = bounded(rs, per_step=2, already=seen, total=3)
    assert [(r.kind, r.reward) for r in first] == [("bcq", 1.0), ("bcq", 0.0), ("ncq", 0.0), ("ncq", 1.0)]
    second = bounded(rs, per_step=2, already=seen, total=3)
    assert [r.kind for r in second] == ["bcq", "ncq"] and seen == {"bcq": 3, "ncq": 3}
    assert bounded(rs, per_step=2, already=seen, total=3) == []


def test_bad_context_is_named():
    bad = AuditContext(step=1, question_id="qx", kind="bcq", gold="1", candidate_answers=["1"], correct_candidate=None)
    with pytest.raises(ValueError, match="qx"):
        audit_rollout(bad, "\\boxed{1}", 1.0)


def test_audit_log_bounds_and_resume(tmp_path):
    import json

    from zppo_core.trainer.audit_log import AuditLog, audit_path

    log = AuditLog(tmp_path, per_step=2, total=3)
    assert log.write(records()) == 4  # 2 BCQ + 2 NCQ
    step4 = [r.__class__(**{**r.to_json(), "step": 4}) for r in records()]
    assert log.write(step4) == 2  # 1 more of each: total 3 reached
    assert log.write(step4) == 0
    lines = [json.loads(x) for x in audit_path(tmp_path, "bcq").read_text().splitlines()]
    assert [x["step"] for x in lines] == [3, 3, 4] and lines[0]["student_answer"] == "paris"
    # resume from a checkpoint at step 3: step-4 lines are dropped and counted out
    again = AuditLog(tmp_path, per_step=2, total=3, resume_step=3)
    assert again.written == {"bcq": 2, "ncq": 2}
    assert len(audit_path(tmp_path, "ncq").read_text().splitlines()) == 2
    assert AuditLog(tmp_path / "off", per_step=2, total=0).write(records()) == 0
