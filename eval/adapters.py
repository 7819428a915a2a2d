"""Row adapters for benchmarks whose rows need logic beyond a :class:`~eval.fields.FieldMap`.

Signature of every adapter: ``(row, index, subset, bench) -> list[EvalItem]`` (a row may give
zero items — e.g. an OCRBench v2 row of the other language — or several, e.g. CharXiv's
reasoning + descriptive questions on one chart).
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any, Callable

from eval import ocrbench_v2 as ocr
from eval.fields import FieldMap, RowError, decode_image_field, gold_to_letter, map_row, need, parse_options
from eval.items import EvalItem, letter

Adapter = Callable[[dict[str, Any], int, str, str], list[EvalItem]]


def declarative(fm: FieldMap) -> Adapter:
    """Adapter that applies one :class:`FieldMap`."""

    def _adapt(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
        return [map_row(fm, row, index, subset, bench)]

    return _adapt


def _where(bench: str, subset: str, index: int) -> str:
    return f"{bench}[{subset or 'default'}] row {index}"


# ---------------------------------------------------------------------------------- LLM
def gpqa(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """GPQA: one correct + three incorrect answers, shuffled with a per-question seed.

    The seed is the SHA-256 of the question text, so the option order (and thus the gold
    letter) is the same on every run and machine, as lm-eval's fixed-seed shuffle intends.
    """
    w = _where(bench, subset, index)
    q = str(need(row, "Question", w))
    right = str(need(row, "Correct Answer", w)).strip()
    wrong = [str(need(row, f"Incorrect Answer {k}", w)).strip() for k in (1, 2, 3)]
    opts = [right, *wrong]
    seed = int(hashlib.sha256(q.encode()).hexdigest()[:8], 16)
    random.Random(seed).shuffle(opts)
    rid = str(row.get("Record ID") or index)
    return [EvalItem(rid, q, letter(opts.index(right)), "mc", opts, subset=subset)]


def hle(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """Humanity's Last Exam: text or text+image (data-URI ``image``), CAIS judge."""
    w = _where(bench, subset, index)
    images = decode_image_field(row.get("image"), w)
    meta = {"hle_answer_type": row.get("answer_type"), "category": row.get("category")}
    return [EvalItem(str(need(row, "id", w)), str(need(row, "question", w)), str(need(row, "answer", w)),
                     "open", images=images, subset=subset, meta=meta)]


def multichallenge(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """MultiChallenge: the conversation is the prompt; the judge checks ``target_question``
    against the expected ``pass_criteria`` (YES/NO)."""
    w = _where(bench, subset, index)
    conv = need(row, "conversation", w)
    if isinstance(conv, str):
        conv = json.loads(conv)
    conv = [dict(m) for m in conv]
    if not conv or conv[-1].get("role") != "user":
        raise RowError(f"{w}: conversation must end with a user turn")
    last = conv.pop()
    meta = {"target_question": str(need(row, "target_question", w)), "axis": row.get("axis")}
    gold = str(need(row, "pass_criteria", w)).strip().upper()
    return [EvalItem(str(row.get("question_id", index)), str(last["content"]), gold, "open",
                     messages=conv, subset=subset, meta=meta)]


# ---------------------------------------------------------------------------------- VLM
def babyvision(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """BabyVision: ``ansType`` "choice" (``choiceAns`` = 0-based index or letter) or "blank"."""
    w = _where(bench, subset, index)
    images = decode_image_field(row.get("image"), w)
    opts = parse_options(row.get("options"), w)
    kind = str(need(row, "ansType", w)).lower()
    if kind == "choice":
        raw = need(row, "choiceAns", w)
        gkind = "letter" if isinstance(raw, str) and raw.strip().isalpha() else "index"
        gold, atype = gold_to_letter(raw, gkind, opts, w), "mc"
    elif kind == "blank":
        gold, atype = str(need(row, "blankAns", w)), "text"
    else:
        raise RowError(f"{w}: ansType {kind!r} not in choice|blank")
    rid = str(row.get("taskId", index))
    meta = {"type": row.get("type"), "subtype": row.get("subtype")}
    return [EvalItem(rid, str(need(row, "question", w)), gold, atype, opts, images, subset=subset, meta=meta)]


def mathvision(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """MathVision: multiple choice when ``options`` is non-empty (gold is a letter), else math."""
    w = _where(bench, subset, index)
    opts = parse_options(row.get("options"), w)
    gold = str(need(row, "answer", w))
    atype = "mc" if opts else "math"
    if opts:
        gold = gold_to_letter(gold, "letter", opts, w)
    images = decode_image_field(row.get("decoded_image"), w)
    return [EvalItem(str(row.get("id", index)), str(need(row, "question", w)), gold, atype, opts, images,
                     subset=subset, meta={"subject": row.get("subject"), "level": row.get("level")})]


def mathvista(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """MathVista: ``multi_choice`` rows have ``choices`` and the gold option *text*;
    ``free_form`` rows keep ``answer_type``/``precision`` for the MathVista rule parser."""
    w = _where(bench, subset, index)
    qtype = str(need(row, "question_type", w))
    opts = parse_options(row.get("choices"), w)
    gold = str(need(row, "answer", w))
    if qtype == "multi_choice":
        gold, atype = gold_to_letter(gold, "option_text", opts, w), "mc"
    elif qtype == "free_form":
        atype = "math"
    else:
        raise RowError(f"{w}: question_type {qtype!r} not in multi_choice|free_form")
    meta = {"mv_answer_type": row.get("answer_type"), "precision": row.get("precision"), "unit": row.get("unit")}
    images = decode_image_field(row.get("decoded_image"), w)
    return [EvalItem(str(row.get("pid", index)), str(need(row, "question", w)), gold, atype, opts, images,
                     subset=subset, meta=meta)]


#: question text of MathVerse rows whose ``question`` is empty (the "Vision Only" version: the
#: question, and for multiple choice the options, are drawn in the diagram)
MATHVERSE_VISION_ONLY_QUESTION: str = "Answer the question shown in the image."
MATHVERSE_FIELDS = FieldMap("question", "answer", answer_type_from="question_type",
                            answer_type_map=(("multi-choice", "mc"), ("free-form", "math")), gold_kind="letter",
                            images=("image",), item_id="sample_index", meta=("problem_version",))


def mathverse(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """MathVerse testmini, all five problem versions; a Vision Only row (empty ``question``)
    gets :data:`MATHVERSE_VISION_ONLY_QUESTION` instead of an empty prompt."""
    item = map_row(MATHVERSE_FIELDS, row, index, subset, bench)
    if not item.question.strip():
        item.question = MATHVERSE_VISION_ONLY_QUESTION
    return [item]


def infovqa(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """InfographicVQA: every acceptable answer goes to ``meta['answers']`` for ANLS."""
    w = _where(bench, subset, index)
    answers = need(row, "answers", w)
    answers = [str(a) for a in (answers.tolist() if hasattr(answers, "tolist") else answers)]
    if not answers:
        raise RowError(f"{w}: empty 'answers' (the test split has no answers; use validation)")
    images = decode_image_field(row.get("image"), w)
    return [EvalItem(str(row.get("questionId", index)), str(need(row, "question", w)), answers[0], "anls",
                     images=images, subset=subset, meta={"answers": answers})]


def _plain(value: Any) -> Any:
    """numpy arrays / nested sequences -> plain lists (records are JSON-encoded)."""
    value = value.tolist() if hasattr(value, "tolist") else value
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def ocrbench_v2(language: str) -> Adapter:
    """OCRBench v2 restricted to one language; the task ``type`` ends in " en" or " cn". The
    scorer needs ``type``, ``eval``, ``answers``, ``bbox`` and (handwritten answers) the question."""

    def _adapt(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
        w = _where(bench, subset, index)
        task = str(need(row, "type", w))
        if task not in ocr.KNOWN_TYPES:
            raise RowError(f"{w}: type {task!r} is not an OCRBench v2 task type")
        if not task.endswith(f" {language}"):
            return []
        raw = _plain(need(row, "answers", w))
        answers = [a if isinstance(a, str) else json.dumps(a) if isinstance(a, dict) else str(a)
                   for a in (raw if isinstance(raw, list) else [raw] if raw is not None else [])]
        if not answers:
            raise RowError(f"{w}: empty 'answers'")
        question = str(need(row, "question", w))
        meta = {"type": task, "answers": answers, "eval": ocr.eval_mode(row.get("eval")),
                "bbox": _plain(row.get("bbox")), "question": question}
        images = decode_image_field(row.get("image"), w)
        return [EvalItem(str(row.get("id", index)), question, answers[0], "ocr",
                         images=images, subset=subset, meta=meta)]

    return _adapt


#: question text of MMMU-Pro's vision setting, whose screenshot holds the question and options
MMMU_PRO_VISION_QUESTION: str = "Answer the multiple-choice question shown in the image."
_MMMU_PRO_IMAGES: tuple[str, ...] = ("image", *(f"image_{k}" for k in range(1, 8)))


def mmmu_pro(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """MMMU-Pro, all three configurations. The ``standard`` rows carry ``question`` + ``options``
    (+ ``image_1..7``); ``vision`` rows carry only a screenshot ``image`` (question and options
    are inside it), ``options`` and ``answer``: the option texts then go to
    ``meta["option_texts"]`` (scoring only) and are not written into the prompt."""
    w = _where(bench, subset, index)
    opts = parse_options(row.get("options"), w)
    gold = gold_to_letter(need(row, "answer", w), "letter", opts, w)
    images = [im for col in _MMMU_PRO_IMAGES for im in decode_image_field(row.get(col), w)]
    if not images:
        raise RowError(f"{w}: no image in any of {list(_MMMU_PRO_IMAGES)}")
    rid = f"{subset}/{row.get('id', index)}" if subset else str(row.get("id", index))
    meta: dict[str, Any] = {"subject": row.get("subject")}
    question = row.get("question")
    if question is None or not str(question).strip():  # the vision setting
        meta.update(setting="vision", option_texts=opts)
        return [EvalItem(rid, MMMU_PRO_VISION_QUESTION, gold, "mc", [], images, subset=subset, meta=meta)]
    meta["setting"] = "standard"
    return [EvalItem(rid, str(question), gold, "mc", opts, images, subset=subset, meta=meta)]


#: CharXiv descriptive question templates, keyed by the dataset's template id (1..19), and
#: the rubric class each id is graded with (CharXiv official grouping: title / ocr / quant /
#: bool / enum / trend / layout). Wording written here after princeton-nlp/CharXiv
#: ``src/constants.py`` (DESCRIPTIVE_RESP_INST / DESCRIPTIVE_GRADING_QMAP).
CHARXIV_DESCRIPTIVE: dict[int, tuple[str, str]] = {
    1: ("What is the title of the plot? If it has no explicit title, answer 'Not Applicable'.", "title"),
    2: ("What is the label of the x-axis? If there is none, answer 'Not Applicable'.", "ocr"),
    3: ("What is the label of the y-axis? If there is none, answer 'Not Applicable'.", "ocr"),
    4: ("What is the leftmost labeled tick on the x-axis?", "ocr"),
    5: ("What is the rightmost labeled tick on the x-axis?", "ocr"),
    6: ("What is the spatially lowest labeled tick on the y-axis?", "ocr"),
    7: ("What is the spatially highest labeled tick on the y-axis?", "ocr"),
    8: ("What is the difference between consecutive numerical tick values on the x-axis? "
        "If it is not constant or not numerical, answer 'Not Applicable'.", "quant"),
    9: ("What is the difference between consecutive numerical tick values on the y-axis? "
        "If it is not constant or not numerical, answer 'Not Applicable'.", "quant"),
    10: ("How many lines are there? If it is not a line plot, answer 'Not Applicable'.", "quant"),
    11: ("Do any lines intersect? Answer Yes or No, or 'Not Applicable' if there are no lines.", "bool"),
    12: ("How many discrete labels are there in the legend? If there is no legend, answer 'Not Applicable'.",
         "quant"),
    13: ("What are the names of the labels in the legend, from top to bottom then left to right, "
         "separated by commas? If there is no legend, answer 'Not Applicable'.", "enum"),
    14: ("What is the difference between the maximum and minimum tick values of the colorbar? "
         "If there is no colorbar, answer 'Not Applicable'.", "quant"),
    15: ("What is the maximum tick value of the colorbar? If there is no colorbar, answer 'Not Applicable'.",
         "quant"),
    16: ("What is the general trend of the data from left to right (a few words)?", "trend"),
    17: ("What is the total number of explicitly labeled ticks across all axes?", "quant"),
    18: ("What is the layout of the subplots, as 'n by m' (rows by columns)? Answer '1 by 1' if none.", "layout"),
    19: ("What is the number of subplots? Answer '1' if there are no subplots.", "quant"),
}


def charxiv(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """CharXiv: one reasoning question and up to four descriptive questions per chart."""
    w = _where(bench, subset, index)
    images = decode_image_field(need(row, "image", w), w)
    fig = str(row.get("figure_path") or row.get("original_id") or index)
    nsub = int(row.get("num_subplots") or 1)
    where_txt = "For the current plot, " if nsub <= 1 else (
        f"For the subplot at row {row.get('subplot_row')} and column {row.get('subplot_col')}, ")
    items = [EvalItem(f"{fig}/reasoning", str(need(row, "reasoning_q", w)), str(need(row, "reasoning_a", w)),
                      "open", images=images, subset=subset,
                      meta={"charxiv": "reasoning", "inst": int(need(row, "reasoning_a_type", w))})]
    for k in (1, 2, 3, 4):
        qid, ans = row.get(f"descriptive_q{k}"), row.get(f"descriptive_a{k}")
        if qid is None or ans is None:
            continue
        if int(qid) not in CHARXIV_DESCRIPTIVE:
            raise RowError(f"{w}: descriptive_q{k}={qid!r} is not a CharXiv template id 1..19")
        text, rubric = CHARXIV_DESCRIPTIVE[int(qid)]
        q = text if int(qid) >= 18 else where_txt + text[0].lower() + text[1:]
        items.append(EvalItem(f"{fig}/descriptive{k}", q, str(ans), "open", images=images, subset=subset,
                              meta={"charxiv": "descriptive", "rubric": rubric, "qid": int(qid)}))
    return items


# -------------------------------------------------------------------------------- Video
def mmvu(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """MMVU: ``question_type`` "multiple-choice" (``choices`` dict letter->text) or "open-ended"."""
    w = _where(bench, subset, index)
    qtype = str(need(row, "question_type", w))
    opts = parse_options(row.get("choices"), w)
    gold = str(need(row, "answer", w))
    if qtype == "multiple-choice":
        gold, atype = gold_to_letter(gold, "letter", opts, w), "mc"
    elif qtype == "open-ended":
        atype = "open"
    else:
        raise RowError(f"{w}: question_type {qtype!r} not in multiple-choice|open-ended")
    video = str(need(row, "video", w))
    return [EvalItem(str(row.get("id", index)), str(need(row, "question", w)), gold, atype, opts, video=video,
                     subset=subset, meta={"mmvu_type": qtype, "judge_always": True})]


def videomme(with_subtitles: bool) -> Adapter:
    """Video-MME; ``videoID`` names ``<video_dir>/<videoID>.mp4`` (and ``subtitle/<videoID>.srt``)."""

    def _adapt(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
        w = _where(bench, subset, index)
        opts = parse_options(need(row, "options", w), w, strip_prefix=True)
        vid = str(need(row, "videoID", w))
        meta = {"duration": row.get("duration"), "task_type": row.get("task_type")}
        if with_subtitles:
            meta["subtitle_file"] = f"subtitle/{vid}.srt"
        return [EvalItem(str(row.get("question_id", index)), str(need(row, "question", w)),
                         gold_to_letter(need(row, "answer", w), "letter", opts, w), "mc", opts,
                         video=f"{vid}.mp4", subset=subset, meta=meta)]

    return _adapt


def videommmu(row: dict[str, Any], index: int, subset: str, bench: str) -> list[EvalItem]:
    """Video-MMMU: multiple choice (gold letter) or open numeric; video ``<id>.mp4``."""
    w = _where(bench, subset, index)
    opts = parse_options(row.get("options"), w)
    qid = str(need(row, "id", w))
    gold = str(need(row, "answer", w))
    atype = "mc" if opts else "math"
    if opts:
        gold = gold_to_letter(gold, "letter", opts, w)
    images = decode_image_field(row.get("image"), w)
    return [EvalItem(qid, str(need(row, "question", w)), gold, atype, opts, images, video=f"{qid}.mp4",
                     subset=subset)]
