"""A teacher / judge server that accepts connections and never answers fails fast with one
clear error: a health check before the first step, configurable time-outs and retries."""

from __future__ import annotations

import socket

import httpx
import pytest

from zppo_core.config import Config, replace
from zppo_core.engines.base import BackendError, TransientBackendError
from zppo_core.engines.openai_compat import OpenAIBackend, check_server


@pytest.fixture
def silent_server():
    """A socket on 127.0.0.1 that takes connections (listen backlog) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield f"http://u:PW42@127.0.0.1:{s.getsockname()[1]}/v1"
    s.close()


def test_check_server_names_the_field_and_masks_the_url(silent_server):
    with pytest.raises(BackendError) as e:
        check_server(silent_server, 0.2, "model.teacher_url")
    msg = str(e.value)
    assert msg.startswith("model.teacher_url: the server at http://***@127.0.0.1:")
    assert "ReadTimeout: no answer within 0.2 s" in msg and "PW42" not in msg and "\n" not in msg


def test_check_server_passes_a_server_that_lists_models():
    ok = httpx.MockTransport(lambda r: httpx.Response(200, json={"data": [{"id": "m"}]}))
    check_server("http://127.0.0.1:1/v1", 1.0, "model.judge_url", transport=ok)
    bad = httpx.MockTransport(lambda r: httpx.Response(404, text="no"))
    with pytest.raises(BackendError, match=r"model.judge_url: .*\(HTTP 404\)"):
        check_server("http://127.0.0.1:1/v1", 1.0, "model.judge_url", transport=bad)


def test_retries_come_from_the_config():
    calls = []

    def hang(request):
        calls.append(request.url.path)
        raise httpx.ReadTimeout("no answer", request=request)

    b = OpenAIBackend("http://127.0.0.1:1/v1", "m", max_retries=1, backoff_s=0.0, transport=httpx.MockTransport(hang))
    with pytest.raises(TransientBackendError, match="gave up after 2 attempts"):
        b._call("GET", "/models")
    assert calls == ["/v1/models", "/v1/models"]


def test_zppo_train_checks_the_teacher_before_the_first_step(silent_server):
    from zppo_core.trainer.build import build_teacher_backend

    cfg = replace(Config(), **{"zppo.method": "zppo", "model.teacher_backend": "openai",
                               "model.teacher_url": silent_server, "model.server_health_timeout_s": 0.2})
    with pytest.raises(BackendError, match="^model.teacher_url: "):
        build_teacher_backend(cfg, [], None)


def test_the_judge_is_checked_only_when_judge_rewards_call_it(silent_server):
    from zppo_core.trainer.build import build_judge_backend, check_judge_server

    cfg = replace(Config(), **{"zppo.judge_rewards": True, "model.judge_backend": "openai",
                               "model.judge_url": silent_server, "model.server_health_timeout_s": 0.2,
                               "model.server_timeout_s": 7.0, "model.server_retries": 4})
    check_judge_server(cfg, [{"reward_type": "rule"}])  # no judged rows: no call, no check
    with pytest.raises(BackendError, match="^model.judge_url: "):
        check_judge_server(cfg, [{"reward_type": "judge"}])
    judge = build_judge_backend(cfg)
    assert judge.max_retries == 4 and judge.client.timeout.read == 7.0
