"""Free-form rows (reward_type 'judge') are rewarded by the LLM judge with strict verdicts;
rule rows never reach the judge."""

from zppo_core.config import replace
from zppo_core.config import Config
from zppo_core.engines.base import Sample
from zppo_core.trainer.build import Grader, JudgeCounts


class ScriptedJudge:
    """Test double for a judge model: answers each request with the next scripted output."""

    def __init__(self, outputs):
        self.outputs, self.prompts = list(outputs), []

    def generate(self, requests, n, params):
        assert n == 1 and params.temperature == 0.0 and params.max_new_tokens == 512  # paper's judge decoding
        self.prompts += [r.messages[0]["content"] for r in requests]
        return [[Sample(text=self.outputs.pop(0))] for _ in requests]


def test_judge_rows_use_strict_verdicts_and_rule_rows_skip_the_judge():
    judge = ScriptedJudge(['{"verdict": "correct"}', '{"verdict": "wrong"}', 'Sure! {"verdict": "correct"}',
                           '```json\n{"verdict": "correct"}\n```'])
    grade = Grader(Config(), judge_factory=lambda: judge)
    rule_q = {"question": "2+2?", "answer": "4", "reward_type": "rule"}
    assert grade(["\\boxed{4}", "\\boxed{5}"], rule_q) == [1.0, 0.0]
    assert judge.prompts == []  # rule rows never call the judge
    free_q = {"question": "Describe the chart.", "answer": "sales rise", "reward_type": "judge"}
    assert grade(["a", "b", "c", "d"], free_q) == [1.0, 0.0, 0.0, 0.0]  # prose / fences => malformed => 0
    assert grade.counts == JudgeCounts(judged=4, judge_malformed=2)
    assert "## Ground Truth Answer" in judge.prompts[0] and "sales rise" in judge.prompts[0]


def test_judge_rewards_off_grades_every_row_by_rule():
    grade = Grader(replace(Config(), **{"zppo.judge_rewards": False}), judge_factory=lambda: 1 / 0)
    assert grade(["\\boxed{sales rise}"], {"question": "q", "answer": "sales rise", "reward_type": "judge"}) == [1.0]


def test_a_step_counts_only_the_verdicts_of_its_own_rollouts():
    from zppo_core.engines.recorded import RecordedBackend
    from zppo_core.trainer.rollout import RolloutIO, collect

    cfg = replace(Config(), **{"zppo.method": "grpo", "rollout.group_size": 2})
    judge = ScriptedJudge(['{"verdict": "correct"}', "no json", '{"verdict": "wrong"}', '{"verdict": "correct"}'])
    grade = Grader(cfg, judge_factory=lambda: judge)
    qs = [{"id": "a", "question": "Describe.", "answer": "x", "reward_type": "judge", "image_path": ""},
          {"id": "b", "question": "2+2?", "answer": "4", "reward_type": "rule", "image_path": ""}]
    io = RolloutIO(student=RecordedBackend(by_id={"a": "prose", "b": "\\boxed{4}"}), teacher=None,
                   render=lambda req: ([1, 2, 3], None), grade=grade, load_image=lambda p: None)
    first = collect(io, cfg, qs, [], step=1, cap=0, seed=0)
    assert (first.counts.judged, first.counts.judge_malformed) == (2, 1)  # question b is rule-graded
    assert [r.reward for r in first.rollouts] == [1.0, 0.0, 1.0, 1.0]
    second = collect(io, cfg, qs[:1], [], step=2, cap=0, seed=0)
    assert (second.counts.judged, second.counts.judge_malformed) == (2, 0)
    assert grade.counts == JudgeCounts(judged=4, judge_malformed=1)
