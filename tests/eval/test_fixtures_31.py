"""Every paper benchmark: fixture rows in the dataset's real schema -> loader -> prompt ->
scorer (rule, then judge where the benchmark uses one) with scripted responses."""

from __future__ import annotations

from typing import Any

import pytest

from eval import registry
from eval.judges import Judge
from eval.loaders import load_items
from eval.prompting import build_request
from eval.scorers import rule_score
from eval_helpers import ScriptedBackend, png, write_rows
from zppo_core.engines.base import SamplingParams
from zppo_core.prompts import RL_CLOSER

B = "\\boxed{%s}"
YES_JSON = '{"verdict": "correct"}'
CHARXIV_OK = '{"extracted_answer": "3", "score": 1}'
HLE_OK = '{"extracted_final_answer": "42", "reasoning": "same", "correct": "yes", "confidence": 90}'

# abbr -> (rows in the upstream schema, [(response, expected score)] per produced item, judge reply)
FIXTURES: dict[str, tuple[list[dict[str, Any]], list[tuple[str, float]], str | None]] = {
    "AI2D": ([{"question": "Which eats grass?", "options": ["cat", "cow", "fish", "owl"], "answer": "1",
               "image": png()},
              {"question": "Which flies?", "options": ["cat", "cow", "fish", "owl"], "answer": "3", "image": png()}],
             [(B % "B", 1.0), (B % "A", 0.0)], None),
    "BabyV": ([{"taskId": 1, "question": "Pick", "options": ["x", "y"], "ansType": "choice", "choiceAns": 1,
                "blankAns": None, "image": png(), "type": "t", "subtype": "s"},
               {"taskId": 2, "question": "How many?", "options": [], "ansType": "blank", "choiceAns": None,
                "blankAns": "7", "image": png(), "type": "t", "subtype": "s"}],
              [(B % "B", 1.0), (B % "7", 1.0)], None),
    "CharXiv": ([{"image": png(), "figure_path": "fig1.jpg", "num_subplots": 1, "subplot_row": None,
                  "subplot_col": None, "reasoning_q": "How many lines peak above 5?", "reasoning_a": "3",
                  "reasoning_a_type": 3, "descriptive_q1": 1, "descriptive_a1": "Growth", "descriptive_q2": None,
                  "descriptive_a2": None, "descriptive_q3": None, "descriptive_a3": None,
                  "descriptive_q4": None, "descriptive_a4": None}],
                [(B % "3", 1.0), (B % "Growth", 1.0)], CHARXIV_OK),
    "DynaM": ([{"id": "7", "question": "Which? Choices: (A) 1 (B) 2", "decoded_image": png(), "ground_truth": "B",
                "answer_type": "multiple choice", "subject": "algebra", "knowledge_level": "hs"},
               {"id": "8", "question": "Area?", "decoded_image": png(), "ground_truth": "2.5",
                "answer_type": "float", "subject": "geometry", "knowledge_level": "hs"}],
              [(B % "B", 1.0), (B % "\\frac{5}{2}", 1.0)], None),
    "EmbSp": ([{"question_id": "q1", "question": "What is left of the chair?", "answer_options": ["lamp", "desk"],
                "answer": 0, "image": png(), "relation": "left"}], [(B % "A", 1.0)], None),
    "InfoVQA": ([{"questionId": 11, "question": "How many users?", "answers": ["1,200", "1200"], "image": png()},
                 {"questionId": 12, "question": "How many users?", "answers": ["1200"], "image": png()}],
                [(B % "1200", 1.0), (B % "1300", 0.75)], None),
    "MVerse": ([{"sample_index": "1", "question": "Choose: A. 1 B. 2 C. 3", "answer": "C", "image": png(),
                 "question_type": "multi-choice", "problem_version": "Text Lite"},
                {"sample_index": "2", "question": "Find x.", "answer": "12", "image": png(),
                 "question_type": "free-form", "problem_version": "Vision Only"}],
               [(B % "C", 1.0), (B % "12", 1.0)], None),
    "MVision": ([{"id": "1", "question": "Which?", "options": ["1", "2", "3", "4", "5"], "answer": "E",
                  "decoded_image": png(), "subject": "s", "level": 2},
                 {"id": "2", "question": "Ratio?", "options": [], "answer": "\\frac{1}{2}", "decoded_image": png(),
                  "subject": "s", "level": 3}],
                [(B % "E", 1.0), (B % "0.5", 1.0)], None),
    "MVista": ([{"pid": "1", "question": "How many?", "choices": ["3", "4", "5"], "answer": "4",
                 "question_type": "multi_choice", "answer_type": "text", "precision": None, "unit": None,
                 "decoded_image": png()},
                {"pid": "2", "question": "Length?", "choices": None, "answer": "1.5", "question_type": "free_form",
                 "answer_type": "float", "precision": 1.0, "unit": None, "decoded_image": png()}],
               [(B % "B", 1.0), (B % "1.49", 1.0)], None),
    "MMMUPro": ([{"id": "v_1", "question": "<image 1> Which law?", "options": "['Ohm', 'Hooke', 'Snell', 'Boyle']",
                  "answer": "C", "image_1": png(), "image_2": None, "image": None, "subject": "Physics"},
                 # the vision configuration: no question column, the screenshot holds question + options
                 {"id": "v_2", "options": "['Ohm', 'Hooke', 'Snell', 'Boyle']", "answer": "B", "image": png(),
                  "subject": "Physics"}],
                [(B % "C", 1.0), (B % "Hooke", 1.0)], None),
    "MM-Vet": ([{"question_id": "v1", "question": "What is x?", "answer": "-1 <AND> -5", "image": png(),
                 "capability": "math"}], [("x = -1", 0.6)], "0.6"),
    "OCREN": ([{"id": 1, "dataset_name": "d", "question": "Read the text.", "type": "text recognition en",
                "answers": ["HELLO"], "image": png(), "eval": None, "bbox": None},
               {"id": 2, "dataset_name": "d", "question": "读文字", "type": "cognition VQA cn",
                "answers": ["你好"], "image": png(), "eval": None, "bbox": None},
               {"id": 3, "dataset_name": "d", "question": "Count words.", "type": "text counting en",
                "answers": ["3"], "image": png(), "eval": "exact match", "bbox": None}],
              [(B % "hello", 1.0), (B % "4", 0.0)], None),
    "OCRZH": ([{"id": 2, "dataset_name": "d", "question": "读文字", "type": "cognition VQA cn",
                "answers": ["你好"], "image": png(), "eval": None, "bbox": None}], [(B % "你好", 1.0)], None),
    "VisP": ([{"id": "p1", "question": "Which piece fits?", "options": ["a", "b", "c", "d"], "answer": "B",
               "image": png()}], [(B % "B", 1.0)], None),
    "VBlind": ([{"task": "Counting circles", "prompt": "How many circles are there?", "groundtruth": "3",
                 "image": png(), "metadata": "{}"},
                {"task": "Circled letter", "prompt": "Which letter is circled?", "groundtruth": "e",
                 "image": png(), "metadata": "{}"}], [(B % "3", 1.0), (B % "E", 1.0)], None),
    "WeMath": ([{"ID": "1", "question": "Angle?", "option": "A. 30; B. 45; C. 60", "answer": "B", "image": png(),
                 "key": "k"}], [(B % "B", 1.0)], None),
    "AIME25": ([{"question": "Find n.", "answer": "70"}, {"question": "Find m.", "answer": "588"}],
               [(B % "70", 1.0), (B % "587", 0.0)], None),
    "AIME26": ([{"problem_idx": 1, "problem": "Find k.", "answer": 5}], [(B % "5", 1.0)], None),
    "CEval": ([{"id": 0, "question": "1+1=?", "A": "1", "B": "3", "C": "2", "D": "4", "answer": "C",
                "explanation": ""}], [(B % "C", 1.0)], None),
    "GPQA-D": ([{"Record ID": "r1", "Question": "What is the spin of an electron?", "Correct Answer": "1/2",
                 "Incorrect Answer 1": "1", "Incorrect Answer 2": "0", "Incorrect Answer 3": "3/2"}],
               [("GOLD", 1.0)], None),
    "HLE": ([{"id": "h1", "question": "What is 6*7?", "image": "", "answer": "42", "answer_type": "exactMatch",
              "category": "Math"}], [("It is 42.", 1.0)], HLE_OK),
    "IMO-AB": ([{"Problem ID": "imo-1", "Problem": "Find the ratio.", "Short Answer": "3/4", "Category": "Algebra"}],
               [(B % "\\frac{3}{4}", 1.0)], None),
    "MMLU": ([{"question": "2*3?", "subject": "math", "choices": ["5", "7", "6", "8"], "answer": 2}],
             [(B % "C", 1.0)], None),
    "MMLU-Pro": ([{"question_id": 9, "question": "Pick J", "options": list("abcdefghij"), "answer": "J",
                   "answer_index": 9, "category": "other"}], [(B % "J", 1.0)], None),
    "MMLU-Rd": ([{"question": "Pick first", "choices": ["x", "y", "z", "w"], "answer": 0, "error_type": "ok"}],
                [(B % "A", 1.0)], None),
    "MultiCh": ([{"question_id": "m1", "axis": "INSTRUCTION_RETENTION",
                  "conversation": [{"role": "user", "content": "I am vegan."},
                                   {"role": "assistant", "content": "Noted."},
                                   {"role": "user", "content": "Suggest a dinner."}],
                  "target_question": "Does the suggestion avoid all animal products?", "pass_criteria": "YES",
                  "num_turns": 3}], [("Lentil curry.", 1.0)], "It avoids them.\nYES"),
    "MMVU": ([{"id": "u1", "video": "https://example.org/videos/a.mp4", "question": "What happens?",
               "question_type": "multiple-choice", "choices": {"A": "melts", "B": "freezes"}, "answer": "B"}],
             [(B % "B", 1.0)], YES_JSON),
    "MVBench": ([{"video": "clip1.mp4", "question": "Where does it go?", "candidates": ["left", "right"],
                  "answer": "right"}], [(B % "B", 1.0)], None),
    "VMME": ([{"video_id": "001", "videoID": "abc", "duration": "short", "domain": "d", "sub_category": "s",
               "url": "u", "question_id": "001-1", "task_type": "t", "question": "Color?",
               "options": ["A. red", "B. blue", "C. green", "D. white"], "answer": "B"}], [(B % "B", 1.0)], None),
    "VMMES": ([{"video_id": "001", "videoID": "abc", "duration": "short", "domain": "d", "sub_category": "s",
                "url": "u", "question_id": "001-1", "task_type": "t", "question": "Color?",
                "options": ["A. red", "B. blue", "C. green", "D. white"], "answer": "D"}], [(B % "B", 0.0)], None),
    "VMMMU": ([{"id": "adapt_1", "question": "Which?", "options": ["p", "q", "r"], "answer": "A",
                "question_type": "multiple-choice", "image": None},
               {"id": "adapt_2", "question": "Value?", "options": [], "answer": "12", "question_type": "open",
                "image": None}], [(B % "A", 1.0), (B % "12", 1.0)], None),
}


def test_every_paper_benchmark_has_a_fixture() -> None:
    paper = [b.abbr for b in registry.REGISTRY.values() if not b.offline]
    assert len(paper) == 31 and sorted(paper) == sorted(FIXTURES)


@pytest.mark.parametrize("abbr", list(FIXTURES))
def test_loader_prompt_scorer(abbr: str, tmp_path) -> None:
    rows, cases, judge_reply = FIXTURES[abbr]
    b = registry.get(abbr)
    items = load_items(b, data_files=write_rows(tmp_path / f"{abbr}.parquet", rows)).items
    assert len(items) == len(cases), [it.item_id for it in items]
    judge_backend = ScriptedBackend(judge_reply or "malformed")
    judge = Judge(judge_backend, SamplingParams(temperature=0.0))
    for item, (response, expected) in zip(items, cases):
        if response == "GOLD":  # option order is seeded by the question; answer with the gold letter
            assert item.options[ord(item.gold) - 65] == "1/2"
            response = B % item.gold
        req = build_request(item, min_pixels=32 * 32, max_pixels=64 * 64 * 4)
        user = req.messages[-1]["content"]
        assert user.endswith(RL_CLOSER) and req.messages[-1]["role"] == "user"
        assert len(req.images) == len(item.images)
        for opt in item.options:
            assert opt.strip() in user
        rr = rule_score(b.scorer, item, response)
        score = rr.score
        if b.judge not in (None, "shared") or (score is None and b.judge):
            verdict = judge(b.judge, [(item, response)])[0]
            assert not verdict.malformed, verdict.raw
            score = verdict.score
        assert score == pytest.approx(expected), (abbr, item.item_id, response, rr)
