"""Offline generator of both upstream sources, in their exact parquet schemas.

Writes ``<out>/vero/<domain>-<name>/train-00000-of-00001.parquet`` (one config per sub-dataset,
as on the hub) and ``<out>/mmfr/data/train-000xx-of-000NN.parquet``. Every row carries a real PNG
drawn by :mod:`data_prep.drawing` whose answer is derivable from the image, and the real-world
defects curation must handle (rates in :class:`Defects`): null answers, answers over 512
characters, images under 100 px, undecodable or missing image bytes, questions that are only an
``<image>`` tag, prompts far over the token budget, MMFineReason rows duplicating a Vero row
(same question and image), and pass rates in {0, .25, .5, .75}.

Rows are pure functions of ``(seed, source, index)``, so shards are generated in parallel and
the output is byte-identical for the same arguments.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from data_prep import synthetic_miniature as mini
from data_prep.drawing import Task, draw_task
from data_prep.recipe import SYNTHETIC_PASS_RATES
from zppo_core.config import SYNTHETIC_WORLDS

#: full-scale row counts of the real sources
VERO_ROWS = 606_000
MMFR_ROWS = 585_744

#: Vero configs (``<domain>-<name>``) and relative sizes: the paper's tiered names plus untiered ones.
VERO_CONFIGS: tuple[tuple[str, float], ...] = (
    ("stem-ai2d_merged", 1.0), ("stem-geo170k", 1.2), ("stem-geomverse", 0.8), ("stem-geoqa_plus", 0.9),
    ("stem-mmk12", 1.5), ("stem-CoSyn_400k_math", 1.0), ("chart_ocr-CoSyn_400k_chart", 1.1),
    ("chart_ocr-CoSyn_400k_diagram", 0.7), ("chart_ocr-CoSyn_400k_table", 0.9), ("stem-wemath20_pro", 0.2),
    ("stem-wemath20_standard", 0.15), ("stem-tqa", 0.6), ("stem-visualwebinstruct", 1.4),
    ("chart_ocr-chartqa_difficulty", 0.8), ("chart_ocr-arxivqa_formatted", 1.0), ("stem-pathvqa", 0.5),
    ("stem-vqarad", 0.06), ("stem-raven", 0.7), ("chart_ocr-evochart", 0.4), ("chart_ocr-infographic_vqa", 0.8),
    ("knowledge_recognition-aokvqa", 0.6), ("knowledge_recognition-gqa", 1.2), ("knowledge_recognition-iconqa", 0.9),
    ("knowledge_recognition-vqav2", 1.3), ("knowledge_recognition-visual7w", 0.7),
    ("counting_grounding_search-tallyqa", 1.1), ("counting_grounding_search-pixelreasoner", 0.3),
    ("counting_grounding_search-multihop", 0.4), ("counting_grounding_search-pixmo", 1.0),
    ("counting_grounding_search-visual_probe", 0.2), ("chart_ocr-reachqa", 0.6), ("chart_ocr-ecd_vqa", 0.7),
    ("spatial_action-game_QA", 1.0), ("counting_grounding_search-refcocog", 0.8),
    ("knowledge_recognition-vizwiz", 0.5), ("captioning_IF-MMIF-23K", 0.4),
)
#: Vero configs whose rows are grounding tasks (bbox ground truth, reward_type "grounding")
VERO_GROUNDING = frozenset({"counting_grounding_search-refcocog"})

#: MMFineReason ``source`` values and relative sizes (math-heavy, as upstream).
MMFR_SOURCES: tuple[tuple[str, float], ...] = (
    ("MMR1", 3.0), ("Euclid30K", 1.0), ("FineVision-geo170k(qa)", 1.5), ("FineVision-geometry3k(mathv360k)", 1.0),
    ("mmopenr1-8k", 0.3), ("WeMath2-Standard", 0.4), ("WeMath2-Pro", 0.3), ("FineVision-visualwebinstruct(filtered)", 1.2),
    ("BMMR", 0.8), ("FineVision-tqa", 0.3), ("FineVision-ai2d_merged", 0.4), ("FineVision-scienceqa", 0.3),
    ("ViRL39K", 1.2), ("FineVision-raven", 0.3), ("VisualSphinx", 0.4), ("PuzzleQA", 0.2), ("LLaVA-CoT", 0.5),
    ("Zebra-CoT", 0.3), ("GameQA-140K", 0.6), ("WaltonColdStart", 0.5), ("MMK12", 0.8),
)
#: MMFineReason's null answers all come from this source upstream
MMFR_NULL_ANSWER_SOURCE = "FineVision-visualwebinstruct(filtered)"
VERO_SYSTEM = (
    "You are a helpful assistant. Answer the question about the image by reasoning step-by-step."
)
DIRECTIVES = (
    "",  # (index 0: none)
    " Please reason step by step, and put your final answer within \\boxed{}.",
    " Answer the question using a single word or phrase.",
    "\nLet's think step by step.",
)


@dataclass(frozen=True)
class Defects:
    """Per-row probabilities of each real-world defect (and of the teacher being right)."""

    null_answer: float = 0.01
    mmfr_null_answer: float = 0.3  # within MMFR_NULL_ANSWER_SOURCE
    long_answer: float = 0.005
    small_image: float = 0.02
    large_image: float = 0.0005
    undecodable: float = 0.003
    missing_image: float = 0.001
    empty_question: float = 0.001
    long_prompt: float = 0.0005
    cross_duplicate: float = 0.01  # MMFR rows copying a Vero row's question and image
    directive: float = 0.25  # questions carrying an upstream format directive
    teacher_correct: float = 0.65
    min_side: tuple[int, int] = (100, 160)
    small_side: tuple[int, int] = (40, 99)
    large_side: int = 1600
    long_prompt_words: int = 5000


DEFECTS = Defects()


def _content(rng: random.Random, d: Defects) -> tuple[Task, bytes | None, bool]:
    """Draw size + task; return (task, image bytes as stored, image is undecodable)."""
    u = rng.random()
    if u < d.small_image:
        w, h = rng.randint(*d.small_side), rng.randint(*d.min_side)
        if rng.random() < 0.5:
            w, h = h, w
    elif u < d.small_image + d.large_image:
        w, h = d.large_side, rng.randint(d.large_side // 2, d.large_side)
    else:
        w, h = rng.randint(*d.min_side), rng.randint(*d.min_side)
    task = draw_task(rng, w, h)
    v = rng.random()
    if v < d.missing_image:
        return task, None, False
    if v < d.missing_image + d.undecodable:
        broken = task.png[:16] if rng.random() < 0.5 else bytes(rng.getrandbits(8) for _ in range(64))
        return task, broken, True
    return task, task.png, False


#: words of the random context sentence that makes generated questions distinct (as real ones are)
CONTEXT_WORDS = tuple(
    "the figure below shows a simple diagram drawn for this exercise with labelled parts shapes values "
    "students were asked to look carefully at each element before replying chart table sketch panel".split()
)


def _question_text(rng: random.Random, task: Task, d: Defects) -> str:
    if rng.random() < d.empty_question:
        return ""
    context = " ".join(rng.choice(CONTEXT_WORDS) for _ in range(rng.randint(4, 30)))
    q = context[:1].upper() + context[1:] + ". " + task.question
    if rng.random() < d.long_prompt:
        q = " ".join(rng.choice(("value", "shape", "count", "chart", "bar")) for _ in range(d.long_prompt_words)) + " " + q
    return q + (rng.choice(DIRECTIVES[1:]) if rng.random() < d.directive else "")


def _answer(rng: random.Random, task: Task, d: Defects) -> str | None:
    u = rng.random()
    if u < d.null_answer:
        return None
    if u < d.null_answer + d.long_answer:
        return (task.answer + " because ") + ("the labelled values in the figure determine it " * 12)
    return task.answer


def vero_row(seed: int, idx: int, config: str, local_index: int, d: Defects = DEFECTS) -> dict:
    """Row ``idx`` of the synthetic Vero-600k (config ``<domain>-<name>``)."""
    rng = random.Random(f"{seed}:vero:{idx}")
    task, img, _ = _content(rng, d)
    q = _question_text(rng, task, d)
    domain, _, name = config.partition("-")
    ans = _answer(rng, task, d)
    rtype = task.reward_type
    if config in VERO_GROUNDING:
        ans, rtype = json.dumps([{"bbox_2d": [1, 2, 30, 40], "label": "object"}]), "grounding"
    gt, extra_ans = ans, ans
    if ans is None and rng.random() < 0.5:  # ground truth missing but recoverable from extra_info
        extra_ans = task.answer
    return {
        "prompt": [{"role": "system", "content": VERO_SYSTEM}, {"role": "user", "content": "<image>" + q}],
        "image": None if img is None else {"bytes": img, "path": None},
        "data_source": name,
        "ability": domain,
        "reward_model": {"style": "rule", "ground_truth": gt},
        "extra_info": {
            "answer": extra_ans, "reward_type": rtype, "question": q, "index": local_index, "domain": domain,
        },
    }


def _teacher_response(rng: random.Random, task: Task, d: Defects) -> str:
    """Short recorded teacher trace ending in ``\\boxed{...}``: right with prob. teacher_correct."""
    if rng.random() < d.teacher_correct:
        final, why = task.answer, task.solution
    else:
        if task.answer.isdigit():
            final = str(int(task.answer) + rng.choice((1, 2, 3)))
        else:  # a wrong option letter
            final = "ABCDE"[("ABCDE".index(task.answer) + rng.randint(1, 4)) % 5]
        why = "I misread the figure."
    return f"<think>\nLooking at the image. {why}\n</think>\n\nThe final answer is \\boxed{{{final}}}"


def mmfr_row(seed: int, idx: int, source: str, vero_rows: int, d: Defects = DEFECTS) -> dict:
    """Row ``idx`` of the synthetic MMFineReason-SFT-586K (``source`` = upstream sub-dataset)."""
    rng = random.Random(f"{seed}:mmfr:{idx}")
    if vero_rows and rng.random() < d.cross_duplicate:  # copy a Vero row's question + image
        j = rng.randrange(vero_rows)
        vrng = random.Random(f"{seed}:vero:{j}")
        task, img, _ = _content(vrng, d)
        q = _question_text(vrng, task, d)
    else:
        task, img, _ = _content(rng, d)
        q = _question_text(rng, task, d)
    ans = _answer(rng, task, d)
    original = f"<think>\n{task.solution}\n</think><answer>{task.answer}</answer>"
    if ans is None:  # nothing to fall back on
        original = None
    elif source == MMFR_NULL_ANSWER_SOURCE and rng.random() < d.mmfr_null_answer:
        ans, original = None, ("Step by step, " + task.solution + " ") * 20  # verbose, no <answer> tag
    response = _teacher_response(rng, task, d)
    return {
        "source": source,
        "id": f"{source}_{idx}",
        "original_question": q,
        "original_answer": original,
        "image": None if img is None else {"bytes": img, "path": None},
        "question": "<image>\n" + q,
        "answer": ans,
        "qwen3vl_235b_instruct_caption": "A synthetic figure with simple shapes, text and bars.",
        "qwen3vl_235b_thinking_response": response,
        "pass_rate": rng.choice(SYNTHETIC_PASS_RATES),
        "is_consistent": True,
        "consistency_analysis": "",
    }


IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
CHAT_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
VERO_SCHEMA = pa.schema([
    ("prompt", CHAT_TYPE), ("image", IMAGE_TYPE), ("data_source", pa.string()), ("ability", pa.string()),
    ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
    ("extra_info", pa.struct([
        ("answer", pa.string()), ("reward_type", pa.string()), ("question", pa.string()),
        ("index", pa.int64()), ("domain", pa.string()),
    ])),
])
MMFR_SCHEMA = pa.schema([
    ("source", pa.string()), ("id", pa.string()), ("original_question", pa.string()),
    ("original_answer", pa.string()), ("image", IMAGE_TYPE), ("question", pa.string()), ("answer", pa.string()),
    ("qwen3vl_235b_instruct_caption", pa.string()), ("qwen3vl_235b_thinking_response", pa.string()),
    ("pass_rate", pa.float64()), ("is_consistent", pa.bool_()), ("consistency_analysis", pa.string()),
])
#: parquet row-group size of generated files
ROW_GROUP = 8192
#: generated rows per MMFineReason shard (upstream: 70 shards of ~8.4k rows)
MMFR_SHARD_ROWS = 8_400


def allocate(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` rows by ``weights`` (largest remainder; deterministic, sums to total)."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _write(rows: list[dict], schema: pa.Schema, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=ROW_GROUP)


@dataclass(frozen=True)
class World:
    """What one ``curation.synthetic_world`` generates: its Vero configs and MMFineReason sources
    (with relative sizes) and the row function of each source (same schemas in every world)."""

    vero_configs: tuple[tuple[str, float], ...]
    mmfr_sources: tuple[tuple[str, float], ...]
    vero_row: Callable[..., dict]
    mmfr_row: Callable[..., dict]


def world_of(name: str) -> World:
    """The :class:`World` named ``name`` (one of ``SYNTHETIC_WORLDS``)."""
    if name == "figures":
        return World(VERO_CONFIGS, MMFR_SOURCES, vero_row, mmfr_row)
    if name == "miniature":
        return World(mini.VERO_CONFIGS, mini.MMFR_SOURCES, mini.vero_row, mini.mmfr_row)
    raise ValueError(f"curation.synthetic_world: {name!r} not in {'|'.join(SYNTHETIC_WORLDS)}")


def _vero_shard(args: tuple) -> int:
    seed, config, start, n, path, d, world = args
    row = world_of(world).vero_row
    _write([row(seed, start + i, config, i, d) for i in range(n)], VERO_SCHEMA, Path(path))
    return n


def _mmfr_shard(args: tuple) -> int:
    seed, start, n, vero_rows, path, d, world = args
    w = world_of(world)
    names = [s for s, _ in w.mmfr_sources]
    weights = [wt for _, wt in w.mmfr_sources]
    rows = []
    for i in range(start, start + n):
        source = random.Random(f"{seed}:mmfr-source:{i}").choices(names, weights)[0]
        rows.append(w.mmfr_row(seed, i, source, vero_rows, d))
    _write(rows, MMFR_SCHEMA, Path(path))
    return n


def generate_sources(
    out_dir: str | Path, *, vero_rows: int, mmfr_rows: int, seed: int = 0, workers: int = 1,
    progress: Callable[[str, int, int | None], None] | None = None, defects: Defects = DEFECTS,
    world: str = "figures",
) -> dict[str, Path]:
    """Write both synthetic sources under ``out_dir``; return ``{"vero": dir, "mmfr": dir}``.

    ``world``: ``figures`` (image rows drawn by :mod:`data_prep.drawing`) or ``miniature``
    (text-only additions, :mod:`data_prep.synthetic_miniature`); the schemas are the same.
    """
    out = Path(out_dir)
    vero_configs = world_of(world).vero_configs
    jobs: list[tuple[Callable, tuple]] = []
    counts = allocate(vero_rows, [w for _, w in vero_configs])
    start = 0
    for (config, _), n in zip(vero_configs, counts):
        if n:
            path = str(out / "vero" / config / "train-00000-of-00001.parquet")
            jobs.append((_vero_shard, (seed, config, start, n, path, defects, world)))
        start += n
    shards = max(1, math.ceil(mmfr_rows / MMFR_SHARD_ROWS))
    start = 0
    for k, n in enumerate(allocate(mmfr_rows, [1.0] * shards)):
        path = out / "mmfr" / "data" / f"train-{k:05d}-of-{shards:05d}.parquet"
        jobs.append((_mmfr_shard, (seed, start, n, vero_rows, str(path), defects, world)))
        start += n
    total = vero_rows + mmfr_rows
    done = 0
    if workers <= 1:
        for fn, args in jobs:
            done += fn(args)
            if progress:
                progress("generate", done, total)
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for n in ex.map(_call, jobs):
                done += n
                if progress:
                    progress("generate", done, total)
    return {"vero": out / "vero", "mmfr": out / "mmfr"}


def synthetic_mmfr_rows(vero_rows: int) -> int:
    """MMFineReason rows generated beside ``vero_rows`` Vero rows (the real sources' ratio)."""
    return round(vero_rows * MMFR_ROWS / VERO_ROWS)


def with_synthetic_sources(cfg, out_dir: str | Path,  # noqa: ANN001 - a CurationConfig
                           progress: Callable[[str, int, int | None], None] | None = None):  # noqa: ANN201
    """Generate both sources of ``cfg`` (``synthetic_scale`` Vero rows, MMFineReason scaled as
    upstream, ``synthetic_world``, ``seed``, ``threads``) under ``out_dir``; return ``cfg`` with
    ``vero``/``mmfr`` pointing at them. Used by ``zppo curate --synthetic`` and the pipeline."""
    import dataclasses

    paths = generate_sources(out_dir, vero_rows=cfg.synthetic_scale, mmfr_rows=synthetic_mmfr_rows(cfg.synthetic_scale),
                             seed=cfg.seed,
                             workers=cfg.threads, progress=progress, world=cfg.synthetic_world)
    return dataclasses.replace(cfg, vero=str(paths["vero"]), mmfr=str(paths["mmfr"]))


def _call(job: tuple[Callable, tuple]) -> int:
    fn, args = job
    return fn(args)
