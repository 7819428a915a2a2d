"""Evaluate one model on one benchmark: load -> prompt -> generate (batched) -> rule score ->
judge (only where needed) -> per-item records (resumable) -> accuracy.

Output folder ``<out_dir>/<abbr>/``: ``partial.jsonl`` (appended after every batch; a restart
skips the items it holds), ``records.parquet`` and ``result.json``.

Across GPUs (:func:`evaluate_suite` with ``shard=(w, n)``): worker ``w`` of ``n`` (pinned to its
GPU, see :mod:`eval.placement`) builds ONE engine for the model and serves every benchmark's
items ``w, w+n, ...`` with it, appending to ``partial.<w>of<n>.jsonl``; a final unsharded pass
(:func:`evaluate_suite` without ``shard``) finds every item done in the partials, builds no
engine, and writes the records and the result. A benchmark that cannot run
here (no video decoder, data not available, a required judge missing) returns
``skipped=<reason>``, ``skip_kind`` (:data:`SKIP_KINDS`) and ``accuracy=None`` — never a zero.

Every record carries ``model_fingerprint`` and ``eval_config_hash``; a restart reuses only the
records both match (another model's or config's answers in the folder are moved aside).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any, Callable

from eval import records as rec_io
from eval import registry, scorers, video
from eval.items import EvalItem
from eval.judges import Judge, Verdict
from eval.loaders import DatasetUnavailable, load_items
from eval.prompting import build_request, read_subtitles
from zppo_core.config import EvalConfig, ModelConfig
from zppo_core.engines.base import GenerationBackend, SamplingParams
from zppo_core.fingerprint import path_fingerprint, stable_hash

Progress = Callable[[int, int], None]
#: why a benchmark produced no number: its data could not be loaded, no video decoder, its
#: judge is missing, or (pipeline) a text-only model cannot take the benchmark's inputs
SKIP_KINDS = ("data", "video_decoder", "judge", "modality")


def _judge_from(judge: Any, eval_cfg: EvalConfig, model_cfg: ModelConfig) -> Judge | None:
    """A :class:`Judge` from what the caller gave (Judge, backend) or from the config."""
    if isinstance(judge, Judge):
        return judge
    params = SamplingParams.from_config(eval_cfg.judge_sampling)
    if judge is not None:
        return Judge(judge, params, eval_cfg.judge_prompt_dir)
    if not eval_cfg.use_judge:
        return None
    # built on the first row that needs it: a merge pass whose items the workers judged (on a
    # cluster, next to a judge served in their own job) never reaches for it
    return Judge(LazyBackend(lambda: _judge_backend(model_cfg), fingerprint=""), params, eval_cfg.judge_prompt_dir)


def _student(model: Any, backend: GenerationBackend | None, model_cfg: ModelConfig, eval_cfg: EvalConfig,
             gpu_share: int = 1) -> Any:
    if backend is not None:
        return backend
    from zppo_core.engines.factory import build_backend

    kind = model_cfg.student_backend
    kw: dict[str, Any] = {}
    if kind == "transformers":
        kw = {"dtype": model_cfg.dtype, "min_pixels": model_cfg.min_pixels, "max_pixels": model_cfg.max_pixels}
    elif kind == "vllm":
        kw = {"dtype": model_cfg.dtype, "max_model_len": eval_cfg.max_model_len,
              "gpu_memory_utilization": eval_cfg.gpu_memory_utilization / max(1, gpu_share),
              "min_pixels": model_cfg.min_pixels, "max_pixels": model_cfg.max_pixels}
    elif kind == "openai":
        raise ValueError("student_backend=openai: start the server yourself and pass backend=build_backend("
                         "'openai', <served name>, base_url=...) to evaluate()")
    return build_backend(kind, model, **kw)


def _data_dir(b: registry.Benchmark, bench_dir: Path, eval_cfg: EvalConfig, given: str | None) -> str | None:
    if given:
        return given
    if b.offline:
        return str(registry_write(b, bench_dir / "data", eval_cfg))
    if eval_cfg.data_root and (Path(eval_cfg.data_root) / b.abbr).is_dir():
        return str(Path(eval_cfg.data_root) / b.abbr)
    return None


def registry_write(b: registry.Benchmark, where: Path, eval_cfg: EvalConfig) -> Path:
    """Generate an offline family's data (idempotent)."""
    from eval.offline import write

    return write(where, b.generator, eval_cfg.offline_size, eval_cfg.offline_seed)  # type: ignore[arg-type]


def _record(item: EvalItem, prompt: str, response: str, finish: str, rr: scorers.RuleResult) -> dict[str, Any]:
    return {"item_id": item.item_id, "subset": item.subset, "gold": item.gold, "answer_type": item.answer_type,
            "prompt": prompt, "response": response, "finish_reason": finish, "extracted": rr.extracted,
            "rule_score": rr.score, "score": rr.score, "judge": None, "judge_output": None,
            "judge_malformed": None, "meta": item.meta}


def _apply_judge(b: registry.Benchmark, batch: list[EvalItem], recs: list[dict[str, Any]], judge: Judge | None) -> None:
    """Route rows to a judge: every row for a benchmark judge, unresolved rows for the shared
    one. Unresolved rows with no judge available score 0 with ``judge="unavailable"``."""
    kind = b.judge
    idx = [i for i, r in enumerate(recs) if r["rule_score"] is None or (kind not in (None, "shared"))]
    if not idx:
        return
    if kind is None or judge is None:
        for i in idx:
            recs[i].update(score=0.0, judge="unavailable")
        return
    verdicts: list[Verdict] = judge(kind, [(batch[i], recs[i]["response"]) for i in idx])
    for i, v in zip(idx, verdicts):
        recs[i].update(score=v.score, judge=kind, judge_output=v.raw, judge_malformed=v.malformed)
        if v.extracted and not recs[i]["extracted"]:
            recs[i]["extracted"] = v.extracted


#: result fields that do not change a per-item record: which benchmarks run, how many items,
#: whether to resume, and where local copies live (their contents are the records' inputs)
_NOT_IN_EVAL_HASH = ("benchmarks", "max_items", "resume", "data_root", "video_dir", "judge_prompt_dir")
#: model fields that change the student's or the judge's answers
_MODEL_IN_EVAL_HASH = ("student_backend", "dtype", "min_pixels", "max_pixels", "judge", "judge_backend")


def eval_config_hash(eval_cfg: EvalConfig, model_cfg: ModelConfig, judge: Any = None) -> str:
    """Hash of everything in the config that changes a benchmark item's record (decoding,
    batching -- the sampling seed is per batch --, offline data, video frames, pixels, judge)."""
    import dataclasses

    ev = {k: v for k, v in dataclasses.asdict(eval_cfg).items() if k not in _NOT_IN_EVAL_HASH}
    mo = {k: getattr(model_cfg, k) for k in _MODEL_IN_EVAL_HASH}
    extra = {"judge_prompts": path_fingerprint(eval_cfg.judge_prompt_dir) if eval_cfg.judge_prompt_dir else "",
             "judge_given": _judge_stamp(judge)}
    return stable_hash({"eval": ev, "model": mo, **extra})


def _judge_stamp(judge: Any) -> str:
    """A caller-given judge by its ``fingerprint`` attribute (a lazily built judge from
    ``model.judge_*`` has ``""``, like none given) or its type name; ``""`` when none is given."""
    if judge is None:
        return ""
    own = getattr(judge, "fingerprint", None)
    return own if isinstance(own, str) else type(judge).__name__


def model_fingerprint(model: Any, backend: GenerationBackend | None) -> str:
    """Which model answers: a local folder by its files (names, sizes, mtimes), a spec or hub id
    by itself, a caller-given backend by its own ``fingerprint`` attribute or its type + model."""
    if backend is not None:
        own = getattr(backend, "fingerprint", None)
        if isinstance(own, str) and own:
            return own
        return stable_hash({"backend": type(backend).__name__, "model": str(model),
                            "files": path_fingerprint(model) if model is not None else ""})
    return path_fingerprint(str(model))


class LazyBackend:
    """A generation backend built on first use by ``build()`` and then reused: one engine per
    model for every benchmark of a suite (``builds`` counts constructions)."""

    def __init__(self, build: Callable[[], GenerationBackend], fingerprint: str) -> None:
        self._build = build
        #: what the records are stamped with (:func:`model_fingerprint`): the same as the engine
        #: :func:`evaluate` would build itself, so a merge pass reuses the workers' records
        self.fingerprint = fingerprint
        self._backend: GenerationBackend | None = None
        self.builds = 0

    def get(self) -> GenerationBackend:
        if self._backend is None:
            self._backend = self._build()
            self.builds += 1
        return self._backend

    def generate(self, requests: list[Any], n: int, params: SamplingParams) -> list[list[Any]]:
        return self.get().generate(requests, n, params)


def evaluate_suite(model: Any, benchmarks: list[str | registry.Benchmark], out_dir: str | Path, *,
                   eval_cfg: EvalConfig, model_cfg: ModelConfig, shard: tuple[int, int] | None = None,
                   backend: GenerationBackend | None = None, judge: Any = None,
                   max_items: int | None = None, gpu_share: int = 1) -> dict[str, Any]:
    """Evaluate ``model`` on every benchmark with ONE student engine (and one judge engine),
    built lazily on the first item that needs it. ``shard=(w, n)``: only this worker's items
    (no results written; merge with a final call without ``shard``). ``gpu_share``: engines
    sharing this GPU (each takes ``eval.gpu_memory_utilization / gpu_share``). Returns ``{abbr: result}``.
    """
    student = backend or LazyBackend(lambda: _student(model, None, model_cfg, eval_cfg, gpu_share),
                                     fingerprint=model_fingerprint(model, None))
    if judge is None and eval_cfg.use_judge:  # built from model.judge_*, as evaluate() would: no stamp change
        judge = LazyBackend(lambda: _judge_backend(model_cfg), fingerprint="")
    out = {}
    for b in benchmarks:
        r = evaluate(model, b, out_dir, eval_cfg=eval_cfg, model_cfg=model_cfg, backend=student, judge=judge,
                     max_items=max_items, shard=shard)
        out[r["benchmark"]] = r
    return out


def _judge_backend(model_cfg: ModelConfig) -> GenerationBackend:
    from zppo_core.engines.factory import build_backend

    kw: dict[str, Any] = {}
    if model_cfg.judge_backend == "openai":
        from zppo_core.engines.openai_compat import check_server, server_kwargs

        check_server(model_cfg.judge_url, model_cfg.server_health_timeout_s, "model.judge_url")
        kw = server_kwargs(model_cfg, model_cfg.judge_url, "judge")
    return build_backend(model_cfg.judge_backend, model_cfg.judge, **kw)


def _partials(bench_dir: Path) -> list[Path]:
    return sorted(bench_dir.glob("partial*.jsonl"))


def _skip(b: registry.Benchmark, bench_dir: Path, reason: str, kind: str) -> dict[str, Any]:
    """A benchmark that produced no number; ``skip_kind`` in :data:`SKIP_KINDS`."""
    out = {"benchmark": b.abbr, "family": b.family, "accuracy": None, "n": 0, "records": None, "skipped": reason,
           "skip_kind": kind}
    rec_io.write_result(bench_dir / rec_io.RESULT, out)
    return out


def evaluate(
    model: Any,
    benchmark: str | registry.Benchmark,
    out_dir: str | Path,
    *,
    eval_cfg: EvalConfig,
    model_cfg: ModelConfig,
    backend: GenerationBackend | None = None,
    judge: Any = None,
    max_items: int | None = None,
    data_dir: str | None = None,
    data_files: Any = None,
    progress: Progress | None = None,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (spec / HF id / folder; unused when ``backend`` is given) on ``benchmark``.

    ``judge``: a :class:`~eval.judges.Judge`, a generation backend to judge with, or None (then
    built from ``model.judge_*`` when ``eval.use_judge``). Returns ``benchmark, family,
    accuracy`` (0-100), ``n``, ``records`` (parquet path), ``skipped`` and scorer extras.
    ``shard=(w, n)``: generate only items ``w::n`` into ``partial.<w>of<n>.jsonl`` and return
    ``{benchmark, shard, n_done}`` (the unsharded call then merges every partial).
    """
    b = registry.get(benchmark) if isinstance(benchmark, str) else benchmark
    bench_dir = Path(out_dir) / b.abbr
    if b.modality == "video" and (reason := video.skip_reason()):
        return _skip(b, bench_dir, reason, "video_decoder")
    cap = max_items if max_items is not None else (eval_cfg.max_items or None)
    try:
        loaded = load_items(b, data_dir=_data_dir(b, bench_dir, eval_cfg, data_dir), data_files=data_files,
                            max_items=cap)
    except DatasetUnavailable as e:
        return _skip(b, bench_dir, f"data unavailable: {e}", "data")
    if not loaded.items and loaded.rejected:
        return _skip(b, bench_dir, f"every row was rejected ({len(loaded.rejected)}); first: {loaded.rejected[0]}",
                     "data")
    needs_judge = b.judge not in (None, "shared")
    the_judge = _judge_from(judge, eval_cfg, model_cfg) if (b.judge is not None) else None
    if needs_judge and the_judge is None:
        return _skip(b, bench_dir, f"needs the {b.judge} judge (eval.use_judge is off and no judge was given)",
                     "judge")
    partial = bench_dir / (f"partial.{shard[0]}of{shard[1]}.jsonl" if shard else rec_io.PARTIAL)
    if not eval_cfg.resume:
        for p in ([partial] if shard else _partials(bench_dir)):
            p.unlink(missing_ok=True)
    stamp = {"model_fingerprint": model_fingerprint(model, backend),
             "eval_config_hash": eval_config_hash(eval_cfg, model_cfg, judge)}
    done: dict[str, dict[str, Any]] = {}
    for p in _partials(bench_dir):
        done.update(rec_io.read_partial(p, stamp))
    mine = loaded.items[shard[0]::shard[1]] if shard else loaded.items
    todo = [it for it in mine if it.item_id not in done]
    student = _student(model, backend, model_cfg, eval_cfg) if todo else None
    for start in range(0, len(todo), max(1, eval_cfg.batch_size)):
        batch = todo[start:start + eval_cfg.batch_size]
        reqs = [_request(it, model_cfg, eval_cfg) for it in batch]
        params = SamplingParams.from_config(eval_cfg.sampling, seed=eval_cfg.seed + zlib.crc32(batch[0].item_id.encode()))
        outs = student.generate(reqs, 1, params)  # type: ignore[union-attr]
        recs = []
        for it, req, out in zip(batch, reqs, outs):
            text = out[0].text if out else ""
            recs.append(_record(it, req.messages[-1]["content"], text, out[0].finish_reason if out else "error",
                                scorers.rule_score(b.scorer, it, text)) | stamp)
        _apply_judge(b, batch, recs, the_judge)
        rec_io.append_partial(partial, recs)
        done.update({r["item_id"]: r for r in recs})
        if progress:
            progress(len(done), len(loaded.items))
    if shard:
        return {"benchmark": b.abbr, "shard": list(shard), "n_done": sum(it.item_id in done for it in mine),
                "skipped": None}
    final = [done[it.item_id] for it in loaded.items]
    rec_io.write_parquet(bench_dir / rec_io.RECORDS, final)
    result = {"benchmark": b.abbr, "family": b.family, "n": len(final), "records": str(bench_dir / rec_io.RECORDS),
              "skipped": None, **scorers.aggregate(b.aggregate, final),
              "n_judged": sum(r["judge"] not in (None, "unavailable") for r in final),
              "n_unresolved_unjudged": sum(r["judge"] == "unavailable" for r in final),
              "n_judge_malformed": sum(bool(r["judge_malformed"]) for r in final),
              "sources": loaded.sources, "fingerprints": loaded.fingerprints, **loaded.accounting(), **stamp}
    rec_io.write_result(bench_dir / rec_io.RESULT, result)
    return result


def finished(model: Any, benchmark: str, out_dir: str | Path, *, eval_cfg: EvalConfig, model_cfg: ModelConfig) -> bool:
    """Whether ``<out_dir>/<benchmark>/result.json`` is the result of this model under this
    evaluation config (same stamp as its records): a re-run then has nothing to generate."""
    path = Path(out_dir) / registry.get(benchmark).abbr / rec_io.RESULT
    if not path.exists():
        return False
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (res.get("model_fingerprint"), res.get("eval_config_hash")) == (
        model_fingerprint(model, None), eval_config_hash(eval_cfg, model_cfg))


def _request(it: EvalItem, model_cfg: ModelConfig, eval_cfg: EvalConfig) -> Any:
    frames = None
    if it.video:
        path = Path(eval_cfg.video_dir) / Path(it.video).name if eval_cfg.video_dir else Path(it.video)
        frames = video.sample_frames(path, eval_cfg.video_fps, eval_cfg.video_max_frames)
    return build_request(it, min_pixels=model_cfg.min_pixels, max_pixels=model_cfg.max_pixels, frames=frames,
                         subtitles=read_subtitles(it, eval_cfg.video_dir))
