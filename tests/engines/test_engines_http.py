"""OpenAI-compatible backend (protocol handling, retries, concurrency), recorded backend, factory.

The HTTP layer is exercised against an in-process ``httpx.MockTransport`` that answers in vLLM's
response shapes; the real server round trip is in ``test_engines_vllm_server.py``.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from zppo_core.engines.base import BackendError, GenerationRequest, SamplingParams, TransientBackendError
from zppo_core.engines.factory import build_backend
from zppo_core.engines.openai_compat import OpenAIBackend, chat_messages, parse_choice, sampling_body
from zppo_core.engines.recorded import MISSING, RecordedBackend


def _req(q, rid="", images=()):
    return GenerationRequest([{"role": "user", "content": q}], images=list(images), request_id=rid)


def _chat_choice(i, ids, lps):
    return {"index": i, "message": {"content": f"text{i}"}, "finish_reason": "stop",
            "logprobs": {"content": [{"token": f"token_id:{t}", "logprob": lp} for t, lp in zip(ids, lps)]}}


def test_sampling_body_maps_every_field():
    body = sampling_body(SamplingParams(temperature=0.6, top_p=0.95, top_k=20, min_p=0.1,
                                        presence_penalty=1.5, repetition_penalty=1.1,
                                        max_new_tokens=7, stop=["</s>"], seed=3), n=4)
    assert body == {"n": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 7, "presence_penalty": 1.5,
                    "top_k": 20, "min_p": 0.1, "repetition_penalty": 1.1, "return_tokens_as_token_ids": True,
                    "return_token_ids": True, "stop": ["</s>"], "seed": 3}


def test_parse_choice_chat_and_completion():
    s = parse_choice(_chat_choice(0, [5, 9], [-0.5, -1.0]), chat=True)
    assert (s.text, s.token_ids, s.logprobs, s.finish_reason) == ("text0", [5, 9], [-0.5, -1.0], "stop")
    c = parse_choice({"text": "ab", "finish_reason": "length",
                      "logprobs": {"tokens": ["token_id:1", "token_id:2"], "token_logprobs": [-0.1, -0.2]}}, chat=False)
    assert (c.token_ids, c.logprobs, c.finish_reason) == ([1, 2], [-0.1, -0.2], "length")
    with pytest.raises(BackendError, match="return_tokens_as_token_ids"):
        parse_choice({"message": {"content": "x"}, "logprobs": {"content": [{"token": "x", "logprob": 0}]}}, chat=True)


def test_chat_messages_put_images_first_as_data_urls():
    from PIL import Image

    msgs = chat_messages(_req("count", images=[Image.new("RGB", (4, 4))]))
    parts = msgs[0]["content"]
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[1] == {"type": "text", "text": "count"}


def test_retries_then_succeeds_and_bounded_concurrency():
    state = {"calls": 0, "in_flight": 0, "max_in_flight": 0}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        with lock:
            state["calls"] += 1
            first = state["calls"] == 1
            state["in_flight"] += 1
            state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        time.sleep(0.02)
        with lock:
            state["in_flight"] -= 1
        if first:
            return httpx.Response(503, text="busy")
        ch = [_chat_choice(i, [i + 1], [-0.25]) for i in range(body["n"])]
        return httpx.Response(200, json={"choices": ch, "prompt_token_ids": [7, 8]})

    be = OpenAIBackend("http://srv/v1", "m", backoff_s=0.001, max_concurrency=2,
                       transport=httpx.MockTransport(handler))
    out = be.generate([_req(f"q{i}") for i in range(6)], 3, SamplingParams(max_new_tokens=4))
    assert [[s.token_ids for s in ss] for ss in out] == [[[1], [2], [3]]] * 6
    assert out[0][0].prompt_ids == [7, 8] and out[0][0].logprobs == [-0.25]
    assert state["calls"] == 7 and state["max_in_flight"] <= 2


def test_gives_up_after_retries_and_4xx_is_not_retried():
    calls = []

    def down(request):
        calls.append(1)
        raise httpx.ConnectError("refused")

    be = OpenAIBackend("http://srv/v1", "m", max_retries=2, backoff_s=0.001, transport=httpx.MockTransport(down))
    with pytest.raises(TransientBackendError, match="gave up after 3 attempts"):
        be.generate([_req("q")], 1, SamplingParams())
    assert len(calls) == 3
    bad = OpenAIBackend("http://srv/v1", "m", transport=httpx.MockTransport(
        lambda r: (calls.append(1), httpx.Response(400, text="max_tokens too large"))[1]))
    calls.clear()
    with pytest.raises(BackendError, match="HTTP 400: max_tokens too large"):
        bad.generate([_req("q")], 1, SamplingParams())
    assert len(calls) == 1


def test_prompt_ids_go_to_completions_and_model_is_discovered():
    seen = {}

    def handler(request):
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "served-tiny"}]})
        seen["path"], seen["body"] = request.url.path, json.loads(request.content)
        return httpx.Response(200, json={"choices": [
            {"index": 0, "text": "7", "finish_reason": "stop", "token_ids": [3, 4],
             "logprobs": {"tokens": ["token_id:3", "token_id:4"], "token_logprobs": [-1.0, -2.0]}}]})

    be = OpenAIBackend("http://srv/v1", transport=httpx.MockTransport(handler))
    req = GenerationRequest([], prompt_ids=[1, 2, 3])
    s = be.generate([req], 1, SamplingParams(max_new_tokens=2))[0][0]
    assert seen["path"] == "/v1/completions" and seen["body"]["prompt"] == [1, 2, 3]
    assert seen["body"]["model"] == "served-tiny" and seen["body"]["logprobs"] == 0
    assert (s.token_ids, s.logprobs, s.prompt_ids) == ([3, 4], [-1.0, -2.0], [1, 2, 3])


def test_recorded_by_id_question_cycle_and_missing():
    rows = [{"id": "a", "question": "What is 1 + 1?", "teacher_response": "<think>x</think> \\boxed{2}"},
            {"id": "b", "question": "Q  b", "teacher_response": ["r1", "r2"]},
            {"id": "c", "question": "no answer", "teacher_response": None}]
    be = build_backend("recorded", rows=rows)
    reqs = [_req("ignored", "a"), _req("Q\nb"), _req("no answer", "c"), _req("unknown", "zz")]
    out = be.generate(reqs, 3, SamplingParams())
    assert [s.text for s in out[0]] == ["<think>x</think> \\boxed{2}"] * 3
    assert [s.text for s in out[1]] == ["r1", "r2", "r1"]  # deterministic cycling, question match
    for k in (2, 3):
        assert [(s.text, s.finish_reason) for s in out[k]] == [("", MISSING)] * 3


def test_recorded_tokenizes_and_truncates(tiny_text_dir):
    from zppo_core.models.processor import load_processor

    tok = load_processor(tiny_text_dir)
    be = RecordedBackend({"a": "What is 12 + 30?"}, tokenizer=tok)
    full = be.generate([_req("", "a")], 1, SamplingParams())[0][0]
    assert tok.decode(full.token_ids) == "What is 12 + 30?" and full.finish_reason == "stop"
    cut = be.generate([_req("", "a")], 1, SamplingParams(max_new_tokens=2))[0][0]
    assert len(cut.token_ids) == 2 and cut.finish_reason == "length"


def test_recorded_from_file_errors(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"id": "a", "teacher_response": "x"}\nnot json\n')
    with pytest.raises(BackendError, match=r"r.jsonl:2: bad JSON"):
        RecordedBackend.from_file(p)
    p.write_text('{"id": "a"}\n')
    with pytest.raises(BackendError, match="row 0 has no 'teacher_response'"):
        RecordedBackend.from_file(p)


def test_factory_rejects_unknown_kind_and_missing_url():
    with pytest.raises(BackendError, match="unknown backend kind 'tgi'"):
        build_backend("tgi", "m")
    with pytest.raises(BackendError, match="base_url is required"):
        build_backend("openai", "m")


def test_vllm_version_range():
    from zppo_core.engines.vllm_engine import check_version, to_vllm_sampling

    check_version("0.32.0")
    check_version("0.33.1+cpu")
    for bad in ("0.10.2", "0.31.0", "0.34.0", "1.0.0"):  # the gpu extra's range: >=0.32,<0.34
        with pytest.raises(BackendError, match="outside the supported range"):
            check_version(bad)
    kw = to_vllm_sampling(SamplingParams(top_k=-1, stop=[], max_new_tokens=5), n=8)
    assert kw["top_k"] == 0 and kw["stop"] is None and kw["n"] == 8 and kw["logprobs"] == 0


def test_recorded_from_parquet_with_nulls_and_lists(tmp_path):
    import pandas as pd

    path = tmp_path / "z.parquet"
    pd.DataFrame({"id": ["a", "b", "c"], "question": ["qa", "qb", "qc"],
                  "teacher_response": [["r1", "r2"], None, ["r3"]]}).to_parquet(path)
    be = build_backend("recorded", str(path))
    out = be.generate([_req("", "a"), _req("qb"), _req("qc")], 2, SamplingParams())
    assert [[s.text for s in ss] for ss in out] == [["r1", "r2"], ["", ""], ["r3", "r3"]]
    assert out[1][0].finish_reason == MISSING


def test_every_served_role_sends_its_thinking_mode_with_each_request():
    """model.<role>_thinking reaches the server as vLLM's chat_template_kwargs on every chat
    request of the teacher / judge backend; a request's own switches (compression, hint) win."""
    from pathlib import Path

    from zppo_core.config import load_config
    from zppo_core.engines.openai_compat import server_kwargs

    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        return httpx.Response(200, json={"choices": [_chat_choice(i, [1], [-0.1]) for i in range(body["n"])]})

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "paper.yaml",
                      {"model.teacher_thinking": True})
    assert (cfg.model.compressor_thinking, cfg.model.hint_thinking, cfg.model.judge_thinking) == (False, False, False)
    for role, expect in (("teacher", True), ("judge", False)):
        kw = server_kwargs(cfg.model, "http://t/v1", role)
        b = OpenAIBackend(model="m", transport=httpx.MockTransport(handler), logprobs=True, **kw)
        b.generate([_req("q1"), _req("q2")], 1, SamplingParams(max_new_tokens=4))
        assert [x["chat_template_kwargs"] for x in bodies] == [{"enable_thinking": expect}] * 2
        bodies.clear()
    teacher = OpenAIBackend(model="m", transport=httpx.MockTransport(handler),
                            **server_kwargs(cfg.model, "http://t/v1", "teacher"))
    compress = GenerationRequest([{"role": "user", "content": "c"}], request_id="compress:1",
                                 chat_template_kwargs={"enable_thinking": cfg.model.compressor_thinking})
    teacher.generate([compress], 1, SamplingParams(max_new_tokens=4))
    assert bodies[0]["chat_template_kwargs"] == {"enable_thinking": False}
