"""Session-wide test settings and shared fixtures.

Every test runs offline (nothing may reach a hub) on at most 2 CPU threads. Tiny models are
built for real through :func:`zppo_core.models.resolve` into one per-session cache.
"""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


#: test files that assert what a model does or computes to a tolerance (outputs, what it learns,
#: two numeric paths agreeing): CI runs them a second time under another ATEN_CPU_CAPABILITY with
#: an empty model cache (``-m cpu_numerics``), so green here means green on other CPUs too.
CPU_NUMERICS = (
    "models/test_models_warmstart.py", "models/test_models_shipped.py", "models/test_miniature_world.py",
    "trainer/test_toy_learning.py", "trainer/test_baselines_train.py", "trainer/test_packing.py",
    "trainer/test_update.py", "trainer/test_on_policy_invariant.py", "trainer/test_methods.py",
    "trainer/test_vlm_step.py", "trainer/test_memory_switches.py", "trainer/test_judge_rewards.py",
    "core/test_loss.py", "core/test_jsd.py", "core/test_advantages.py", "eval/test_e2e_tiny.py",
    "benchmarks/test_miniature_smoke.py", "engines/test_engines_hf_decode.py",
)
def pytest_configure(config):  # noqa: ANN001 - pytest hook
    import torch

    config.addinivalue_line("markers", "cpu_numerics: asserts model behaviour or numeric agreement "
                                       "(rerun by CI under ATEN_CPU_CAPABILITY=default)")
    # two xdist workers on two cores: one thread each, else four threads fight for two cores
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


#: what a test must never leave in the repository (tests write only under their tmp folders)
REPO_LEAKS = ("mlruns", "mlartifacts")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PRESENT = {n for n in REPO_LEAKS if os.path.exists(os.path.join(_REPO, n))}


def pytest_sessionfinish(session, exitstatus):  # noqa: ANN001 - pytest hook
    leaked = [n for n in REPO_LEAKS if n not in _PRESENT and os.path.exists(os.path.join(_REPO, n))]
    if leaked:
        print(f"\ntests wrote {leaked} into the repository root ({_REPO}): a test or the code it runs "
              "used the working folder instead of its tmp folder")
        session.exitstatus = 1


def pytest_collection_modifyitems(config, items):  # noqa: ANN001 - pytest hook
    root = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        rel = os.path.relpath(str(item.path), root).replace(os.sep, "/")
        if rel in CPU_NUMERICS:
            item.add_marker(pytest.mark.cpu_numerics)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> str:
    """A fresh model cache for this session, so builds are exercised for real."""
    return str(tmp_path_factory.mktemp("zppo_cache"))


@pytest.fixture(scope="session")
def tiny_text_dir(model_cache) -> str:
    from zppo_core.models import resolve

    return resolve("builtin:tiny-qwen3?warmstart=0", cache_dir=model_cache)


@pytest.fixture(scope="session")
def tiny_vlm_dir(model_cache) -> str:
    from zppo_core.models import resolve

    return resolve("builtin:tiny-qwen3.5-vl?warmstart=0", cache_dir=model_cache)


# -- real servers on 127.0.0.1, one of each per test session (per xdist worker), stopped by PID --
def _helpers():
    sys.path.insert(0, os.path.join(_REPO, "tests", "pipeline"))
    import pipeline_helpers

    return pipeline_helpers


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def prefect_server(servers_dir):
    """A Prefect server for the session's pipeline runs (each `zppo pipeline` would otherwise
    start and stop its own temporary one: ~17 s each here). Tests of that default path (the
    demo, Ctrl-C, preflight errors) do not use it."""
    h = _helpers()
    port = h.free_port()
    srv = h.Server([str(h.VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                   h.base_env(servers_dir), f"http://127.0.0.1:{port}/api/health", servers_dir / "prefect_server.log")
    yield f"http://127.0.0.1:{port}/api"
    srv.stop()


@pytest.fixture(scope="session")
def mlflow_server(servers_dir):
    h = _helpers()
    port = h.free_port()
    store = servers_dir / "mlflow"
    store.mkdir()
    srv = h.Server([str(h.VENV_BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
                    "--artifacts-destination", str(store / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                    "--workers", "1"], h.base_env(servers_dir), f"http://127.0.0.1:{port}/health",
                   servers_dir / "mlflow_server.log")
    yield f"http://127.0.0.1:{port}"
    srv.stop()
