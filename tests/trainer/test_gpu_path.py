"""The GPU path's CPU-checkable parts: device masks, the GPU split between servers, training and
evaluation, refused settings, the collective timeout, per-request seeds, the frozen-model plan,
cache release around sleep / wake-up, the fp32 -> bf16 cast before the weight all-gather, the
attention-kernel choice, and the paper's memory settings."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
import torch

from zppo_core.config import Config, ConfigError, replace
from zppo_core.engines.base import SamplingParams, request_seeds
from zppo_core.placement import FrozenPlan, device_env, frozen_model_plan, map_visible_devices


# -- item 8: CUDA_VISIBLE_DEVICES through an existing mask ----------------------------------
def test_map_visible_devices_through_a_mask():
    assert map_visible_devices([0, 2], None) == "0,2"
    assert map_visible_devices([0, 2], "") == "0,2"
    assert map_visible_devices([0, 2], "4,5,6,7") == "4,6"
    assert map_visible_devices([1], "GPU-aaa, GPU-bbb") == "GPU-bbb"
    with pytest.raises(ValueError, match=r"\[4\].*4 devices"):
        map_visible_devices([4], "4,5,6,7")


def test_device_env_keeps_the_parents_order():
    assert device_env([0, 1], {}) == {"CUDA_VISIBLE_DEVICES": "0,1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    env = {"CUDA_VISIBLE_DEVICES": "2,3", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    assert device_env([1], env) == {"CUDA_VISIBLE_DEVICES": "3", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}


def test_trainer_launch_maps_the_mask_and_sets_the_order(monkeypatch, tmp_path):
    import tasks.train as tt

    monkeypatch.setattr(tt, "visible_gpu_count", lambda: 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    cfg = replace(Config(), **{"model.teacher_gpus": [3], "model.judge_gpus": [3]})
    cmd, env, world = tt._trainer_launch(cfg, tmp_path / "c.yaml", tmp_path, "rid")
    assert world == 3 and cmd[cmd.index("--num_processes") + 1] == "3"
    assert env["CUDA_VISIBLE_DEVICES"] == "4,5,6" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_eval_worker_env_maps_the_mask():
    from eval.placement import Worker

    assert Worker(0, 2, 1).env({"CUDA_VISIBLE_DEVICES": "6,7"}) == {
        "CUDA_VISIBLE_DEVICES": "7", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


# -- items 3 and 4: the GPU split ---------------------------------------------------------
def test_paper_config_reserves_the_teacher_gpus_for_training_and_evaluation():
    from tasks.evaluate import eval_gpus
    from tasks.servers import plan_servers, training_gpus

    cfg = Config()
    assert cfg.model.teacher_gpus == [6, 7] and cfg.model.judge_gpus == [6, 7]
    assert training_gpus(8, plan_servers(cfg)) == [0, 1, 2, 3, 4, 5]
    (judge,) = plan_servers(cfg, "eval")
    assert judge.roles == ("judge",) and judge.gpus == (6, 7)
    assert eval_gpus(cfg, 8) == [0, 1, 2, 3, 4, 5]  # the judge's GPUs are not evaluation workers'
    no_judge = replace(cfg, **{"eval.use_judge": False})
    assert plan_servers(no_judge, "eval") == [] and eval_gpus(no_judge, 8) == list(range(8))


def test_a_local_server_without_named_gpus_is_refused_on_a_gpu_node(monkeypatch, tmp_path):
    import tasks.train as tt
    from tasks.evaluate import eval_gpus
    from tasks.servers import check_local_reserved, plan_servers

    cfg = replace(Config(), **{"model.teacher_gpus": [], "model.judge_gpus": []})
    with pytest.raises(ValueError, match=r"model\.teacher_gpus is empty but http://127\.0\.0\.1:8000/v1"):
        check_local_reserved(plan_servers(cfg), 8)
    check_local_reserved(plan_servers(cfg), 0)  # no GPUs here: nothing to collide with
    remote = replace(cfg, **{"model.teacher_url": "http://teacher:8000/v1", "model.judge_url": "http://teacher:8000/v1"})
    check_local_reserved(plan_servers(remote), 8)
    with pytest.raises(ValueError, match=r"model\.judge_gpus is empty"):
        eval_gpus(cfg, 8)
    monkeypatch.setattr(tt, "visible_gpu_count", lambda: 8)
    with pytest.raises(ValueError, match=r"model\.teacher_gpus is empty"):
        tt._trainer_launch(cfg, tmp_path / "c.yaml", tmp_path, "rid")


def test_off_distill_with_a_served_teacher_plans_the_teacher():
    from tasks.servers import needed_roles

    cfg = replace(Config(), **{"zppo.method": "off_distill", "zppo.judge_rewards": False})
    assert needed_roles(cfg) == ["teacher"]


# -- items 7 and 12: refused settings -----------------------------------------------------
@pytest.mark.parametrize("key,value,match", [
    ("rollout.student_tp", 2, r"^rollout\.student_tp: 2 is refused"),
    ("model.vllm_sleep_level", 2, r"^model\.vllm_sleep_level: 2 is refused"),
    ("model.vllm_sleep_level", 3, r"^model\.vllm_sleep_level: 3 not in 0\|1"),
    ("model.attn_implementation", "flash3", r"^model\.attn_implementation: 'flash3' not in"),
    ("parallel.collective_timeout_s", 0.0, r"^parallel\.collective_timeout_s must be > 0"),
])
def test_refused_settings_name_the_field(key, value, match):
    with pytest.raises(ConfigError, match=match):
        replace(Config(), **{key: value})


# -- item 2: memory settings of the paper profile ----------------------------------------
def test_paper_profile_checkpoints_activations_and_chunks_logprobs():
    p = Config().parallel
    assert p.activation_checkpointing is True and p.logprob_chunk == 1024
    full = 4 * 16_384 * 248_320 * 4  # fp32 logits of micro-batch 4 x 16k positions, Qwen3.5 vocab
    assert round(full / 1e9) == 65
    assert 4 * p.logprob_chunk * 248_320 * 4 < full / 15


# -- item 5: the timeout reaches the process group ---------------------------------------
def test_collective_timeout_reaches_the_accelerator_and_the_object_group(monkeypatch):
    import accelerate

    import zppo_core.trainer.distributed as d
    from zppo_core.trainer import setup

    seen = {}

    class FakeAcc:
        num_processes, process_index, is_main_process = 1, 0, True

        def __init__(self, **kw):
            seen.update(kw)

    monkeypatch.setattr(accelerate, "Accelerator", FakeAcc)
    monkeypatch.setattr(accelerate.utils, "set_seed", lambda *a, **k: None)
    setup._accelerator(replace(Config(), **{"parallel.collective_timeout_s": 1234.0}))
    (handler,) = seen["kwargs_handlers"]
    assert handler.timeout == datetime.timedelta(seconds=1234)

    groups = []
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "new_group", lambda **kw: groups.append(kw) or "G")
    acc = SimpleNamespace(num_processes=2, process_index=1, is_main_process=False)
    assert d.Dist(acc, "fsdp2", object_timeout_s=99.0).obj_group == "G"
    assert groups == [{"backend": "gloo", "timeout": datetime.timedelta(seconds=99)}]
    assert d.Dist(SimpleNamespace(num_processes=1, process_index=0, is_main_process=True), object_timeout_s=9).obj_group is None


def test_object_gathers_run_on_the_object_group(monkeypatch):
    import zppo_core.trainer.distributed as d

    calls = []

    def all_gather_object(out, obj, group=None):
        calls.append(group)
        out[0], out[1] = [1, 2], obj

    monkeypatch.setattr(torch.distributed, "all_gather_object", all_gather_object)
    dist = d.Dist(SimpleNamespace(num_processes=2, process_index=1, is_main_process=False), "ddp")
    dist.obj_group = "G"
    assert dist.gather([3]) == [1, 2, 3] and calls == ["G"]


# -- item 9: one seed per request ----------------------------------------------------------
def test_request_seeds_differ_per_request_and_are_stable():
    s = request_seeds(17, 4)
    assert s == request_seeds(17, 4) and len(set(s)) == 4
    assert all(0 <= x < 2 ** 62 for x in s)
    assert set(s).isdisjoint(request_seeds(18, 4))
    # vLLM gives the n samples of a request seeds seed .. seed + n - 1: ranges never meet here
    spans = sorted(s + request_seeds(18, 4))
    assert min(b - a for a, b in zip(spans, spans[1:])) > 1_000_000
    assert request_seeds(None, 3) == [None, None, None]


def _fake_vllm_backend(seeded: bool):
    from zppo_core.engines.vllm_engine import VLLMBackend

    b = object.__new__(VLLMBackend)
    b.sleeping, b.seeded_requests, b.mm_kwargs = False, seeded, {}
    got = {}

    class LLM:
        def generate(self, prompts, params, use_tqdm):
            got["params"] = params
            return []

    b.llm = LLM()
    b._prompt = lambda r: {"prompt_token_ids": [1]}
    return b, got


@pytest.mark.parametrize("seeded", [False, True])
def test_vllm_backend_seeds_each_request_or_none(seeded, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(SamplingParams=SimpleNamespace))  # the kwargs as given
    b, got = _fake_vllm_backend(seeded)
    b.generate(["a", "b", "c"], 2, SamplingParams(seed=5, max_new_tokens=4))
    seeds = [p.seed for p in got["params"]]
    assert len(got["params"]) == 3 and {p.n for p in got["params"]} == {2}
    assert seeds == (request_seeds(5, 3) if seeded else [None, None, None])


def test_trainer_student_engine_is_unseeded_by_default():
    from zppo_core.trainer.build import student_engine_kwargs

    assert student_engine_kwargs(Config(), 0, 1)["seeded_requests"] is False
    assert student_engine_kwargs(replace(Config(), **{"rollout.seeded_requests": True}), 0, 1)["seeded_requests"]


def test_openai_backend_sends_one_seed_per_request():
    from zppo_core.engines.openai_compat import OpenAIBackend

    b = object.__new__(OpenAIBackend)
    b.max_concurrency = 1
    seen = []
    b._one = lambda r, n, p: seen.append((r, p.seed)) or []
    b.generate(["x", "y"], 4, SamplingParams(seed=7))
    assert seen == list(zip(["x", "y"], request_seeds(7, 2)))


# -- item 1: the allocator's cache is released around sleep / wake-up ---------------------
def test_cache_released_after_sleep_and_before_wake_up(monkeypatch):
    from zppo_core.engines import vllm_engine as ve

    events = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: events.append("empty_cache"))
    b = object.__new__(ve.VLLMBackend)
    b.sleep_enabled, b.sleeping, b.sleep_level = True, False, 1
    b.llm = SimpleNamespace(sleep=lambda level: events.append(f"sleep{level}"),
                            wake_up=lambda tags=None: events.append(f"wake{tags}"),
                            collective_rpc=lambda *a, **k: events.append("reload"),
                            reset_prefix_cache=lambda: None)
    b.in_process = True
    b.sleep()
    b.load_weights(iter([]))
    assert events == ["sleep1", "empty_cache", "empty_cache", "wake['weights']", "reload", "empty_cache",
                      "wake['kv_cache']"]
    assert b.sleeping is False


# -- item 11: weights are cast before the all-gather ---------------------------------------
def test_weight_sync_casts_shards_before_gathering(tmp_path):
    import torch.distributed as td
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard, distribute_tensor

    from zppo_core.trainer.weight_sync import iter_full_params

    td.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        lin = torch.nn.Linear(4, 3)
        lin.weight = torch.nn.Parameter(distribute_tensor(lin.weight.data, mesh, [Shard(0)]))
        lin.bias = torch.nn.Parameter(distribute_tensor(lin.bias.data, mesh, [Shard(0)]))
        gathered = []
        orig = DTensor.full_tensor

        def spy(self, *a, **k):
            gathered.append(self.dtype)
            return orig(self, *a, **k)

        DTensor.full_tensor = spy
        try:
            out = dict(iter_full_params(lin, torch.bfloat16))
        finally:
            DTensor.full_tensor = orig
        assert gathered == [torch.bfloat16, torch.bfloat16]
        assert out["weight"].dtype == torch.bfloat16 and not isinstance(out["weight"], DTensor)
        assert torch.equal(out["weight"], lin.weight.full_tensor().to(torch.bfloat16))
    finally:
        td.destroy_process_group()


# -- item 10: attention kernels ------------------------------------------------------------
def test_attn_implementation_resolution():
    from zppo_core.trainer.build import resolve_attn_implementation as r

    assert r("auto", on_cuda=True, flash_available=True) == "flash_attention_2"
    assert r("auto", on_cuda=True, flash_available=False) is None
    assert r("auto", on_cuda=False, flash_available=True) is None
    assert r("sdpa", on_cuda=True, flash_available=True) == "sdpa"
    with pytest.raises(ValueError, match=r"^model\.attn_implementation: flash_attention_2 needs CUDA"):
        r("flash_attention_2", on_cuda=False, flash_available=True)


# -- item 6: the frozen teacher's placement --------------------------------------------------
def test_frozen_model_plan():
    assert frozen_model_plan(strategy="fsdp2", world=6, compute_dtype="bfloat16", device="cuda:3") == \
        FrozenPlan("bfloat16", True, (0,), "cpu")
    assert frozen_model_plan(strategy="ddp", world=2, compute_dtype="bfloat16", device="cuda:1") == \
        FrozenPlan("bfloat16", False, (0, 1), "cuda:1")


def test_two_local_servers_on_one_gpu_are_refused_only_on_a_gpu_node():
    """Teacher and judge on different local URLs with overlapping GPUs collide on a GPU node; on
    a CPU node, or when the judge is remote, the GPU lists mean nothing and pass."""
    from tasks.servers import check_local_reserved, plan_servers

    cfg = replace(Config(), **{"model.judge_url": "http://127.0.0.1:8001/v1", "zppo.method": "zppo",
                               "model.teacher_gpus": [6, 7], "model.judge_gpus": [7]})
    plans = plan_servers(cfg)
    assert [p.url for p in plans] == ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"]
    with pytest.raises(ValueError, match=r"model\.teacher_gpus and model\.judge_gpus share GPU\(s\) \[7\]"):
        check_local_reserved(plans, 8)
    check_local_reserved(plans, 0)
    check_local_reserved(plan_servers(replace(cfg, **{"model.judge_gpus": [5]})), 8)
    check_local_reserved(plan_servers(replace(cfg, **{"model.judge_url": "http://judge:8000/v1"})), 8)
