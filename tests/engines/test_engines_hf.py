"""The transformers backend: sampling, exact log-probs, stop/EOS, VLM, weight refresh."""

from __future__ import annotations

import pytest
import torch

from zppo_core.engines.base import BackendError, GenerationRequest, SamplingParams
from zppo_core.engines.factory import build_backend
from zppo_core.engines.hf_sampling import PresencePenaltyLogitsProcessor, build_processors, FinishTracker


def _req(q: str, rid: str = "", images=()) -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": q}], images=list(images), request_id=rid)


@pytest.fixture(scope="module")
def text_backend(tiny_text_dir):
    return build_backend("transformers", tiny_text_dir, batch_size=4)


def _recompute_logprobs(backend, sample, temperature: float, extra=None) -> torch.Tensor:
    """log p(token) of the sampled tokens, recomputed by one unpadded forward pass
    (with the backend's suppressed ids masked, as the trainer does)."""
    ids = torch.tensor([sample.prompt_ids + sample.token_ids])
    extra = dict(extra or {})
    if "mm_token_type_ids" in extra:  # extend the prompt's token types over the response
        tt = extra["mm_token_type_ids"]
        extra["mm_token_type_ids"] = torch.cat([tt, torch.zeros(1, len(sample.token_ids), dtype=tt.dtype)], 1)
    with torch.no_grad():
        logits = backend.model(input_ids=ids, **extra).logits[0].float()
    logits[:, backend.suppress_ids] = float("-inf")
    p = len(sample.prompt_ids)
    steps = logits[p - 1: p - 1 + len(sample.token_ids)] / temperature
    return torch.log_softmax(steps, -1).gather(1, torch.tensor(sample.token_ids)[:, None])[:, 0]


def test_shapes_order_and_prompt_ids(text_backend):
    reqs = [_req("What is 1 + 2?", "a"), _req("Hi", "b"), _req("What is 10 - 3? Think.", "c")]
    out = text_backend.generate(reqs, 3, SamplingParams(max_new_tokens=6, seed=0))
    assert [len(x) for x in out] == [3, 3, 3]
    for req, samples in zip(reqs, out):
        rendered = text_backend.render(req)
        for s in samples:
            assert s.prompt_ids == rendered.input_ids
            assert len(s.token_ids) == len(s.logprobs) <= 6
            assert s.finish_reason in ("stop", "length")
            assert all(lp <= 0 for lp in s.logprobs)


def test_logprobs_are_the_sampling_policy(text_backend):
    """Batched, left-padded sampling reports exactly log_softmax(logits / T) of each token."""
    reqs = [_req("What is 1 + 2?"), _req("What is the sum of 12 and 30? Answer in boxed.")]
    out = text_backend.generate(reqs, 2, SamplingParams(temperature=0.7, max_new_tokens=8, seed=1))
    for samples in out:
        for s in samples:
            ref = _recompute_logprobs(text_backend, s, 0.7)
            assert torch.allclose(torch.tensor(s.logprobs), ref, atol=1e-4)


def test_seed_makes_sampling_reproducible(text_backend):
    reqs = [_req("What is 4 + 4?")]
    a = text_backend.generate(reqs, 2, SamplingParams(max_new_tokens=8, seed=7))
    b = text_backend.generate(reqs, 2, SamplingParams(max_new_tokens=8, seed=7))
    assert [s.token_ids for s in a[0]] == [s.token_ids for s in b[0]]


def test_length_and_eos_finish(text_backend):
    eos = text_backend.tokenizer.convert_tokens_to_ids("<|im_end|>")
    out = text_backend.generate([_req("x")], 4, SamplingParams(max_new_tokens=3, seed=0))
    for s in out[0]:
        if s.finish_reason == "length":
            assert len(s.token_ids) == 3 and eos not in s.token_ids
        else:
            assert s.token_ids[-1] == eos and eos not in s.token_ids[:-1]


def test_stop_string_cuts_text_keeps_tokens(text_backend):
    greedy = SamplingParams(temperature=0.0, max_new_tokens=12)
    full = text_backend.generate([_req("What is 2 + 2?")], 1, greedy)[0][0]
    decoded = text_backend.tokenizer.decode(full.token_ids, skip_special_tokens=True)
    assert len(decoded) >= 3, "need some text to pick a stop string from"
    stop = decoded[1:3]
    cut = text_backend.generate([_req("What is 2 + 2?")], 1,
                                SamplingParams(temperature=0.0, max_new_tokens=12, stop=[stop]))[0][0]
    assert cut.finish_reason == "stop"
    assert stop not in cut.text and cut.text == decoded[: decoded.find(stop)]
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)]


def test_prompt_ids_used_verbatim(text_backend):
    ids = text_backend.render(_req("What is 3 + 3?")).input_ids
    req = GenerationRequest(messages=[{"role": "user", "content": "IGNORED"}], prompt_ids=ids)
    a = text_backend.generate([req], 1, SamplingParams(temperature=0.0, max_new_tokens=5))[0][0]
    b = text_backend.generate([_req("What is 3 + 3?")], 1, SamplingParams(temperature=0.0, max_new_tokens=5))[0][0]
    assert a.prompt_ids == ids and a.token_ids == b.token_ids


def test_images_on_text_model_is_a_clear_error(text_backend):
    from PIL import Image

    with pytest.raises(BackendError, match="no image processor"):
        text_backend.generate([_req("q", "r1", [Image.new("RGB", (32, 32))])], 1, SamplingParams(max_new_tokens=2))


def test_update_weights_and_live_module(tiny_text_dir, tmp_path):
    backend = build_backend("transformers", tiny_text_dir)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8)
    req = [_req("What is 5 + 1?")]
    base = backend.generate(req, 1, greedy)[0][0].token_ids
    original = {k: v.clone() for k, v in backend.model.state_dict().items()}
    torch.manual_seed(0)
    with torch.no_grad():  # the trainer edits its live module in place: seen immediately
        for p in backend.model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    moved = backend.generate(req, 1, greedy)[0][0].token_ids
    assert moved != base
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in original.items() if k != "lm_head.weight"},
              str(tmp_path / "model.safetensors"))
    backend.update_weights(str(tmp_path))
    assert backend.generate(req, 1, greedy)[0][0].token_ids == base
    save_file({"nope": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(BackendError, match="'nope' not in the model"):
        backend.update_weights(str(tmp_path))


def test_presence_penalty_hand_computed():
    proc = PresencePenaltyLogitsProcessor(1.5, prompt_len=2)
    ids = torch.tensor([[0, 1, 2, 2], [3, 3, 0, 4]])  # generated: {2} and {0, 4}
    out = proc(ids, torch.zeros(2, 5))
    assert out.tolist() == [[0, 0, -1.5, 0, 0], [-1.5, 0, 0, 0, -1.5]]


def test_processor_chain_suppresses_vision_tokens_and_filters():
    tracker = FinishTracker(tokenizer=None, prompt_len=1, eos_ids=[0], stop=[], max_new_tokens=1)
    procs = build_processors(SamplingParams(temperature=0.5, top_k=2), 1, [3])
    procs.append(tracker.capture)  # what the generate path adds
    scores = procs(torch.tensor([[1]]), torch.tensor([[1.0, 2.0, 3.0, 9.0]]))
    # id 3 suppressed; /0.5 -> [2, 4, 6]; top-2 keeps ids 1, 2
    assert torch.isinf(scores[0, [0, 3]]).all() and scores[0, 1:3].tolist() == [4.0, 6.0]
    expected = torch.log_softmax(torch.tensor([4.0, 6.0]), 0)
    assert torch.allclose(tracker.capture.last[0, 1:3], expected)


def test_vlm_generation_and_logprob_recompute(tiny_vlm_dir):
    from PIL import Image

    backend = build_backend("transformers", tiny_vlm_dir, batch_size=8)
    img_a, img_b = Image.new("RGB", (64, 64), (255, 0, 0)), Image.new("RGB", (96, 64), (0, 0, 255))
    reqs = [_req("How many squares?", "a", [img_a]), _req("What is 1 + 1?", "t"),
            _req("Two images?", "b", [img_a, img_b])]
    out = backend.generate(reqs, 2, SamplingParams(temperature=1.0, max_new_tokens=6, seed=0))
    image_pad = backend.processor.image_token_id
    pads = [sum(i == image_pad for i in out[k][0].prompt_ids) for k in range(3)]
    assert pads == [4, 0, 4 + 6]  # 64x64 -> 4 tokens, 96x64 -> 6x4 patches -> 6 tokens
    for k, samples in enumerate(out):
        extra = backend.render(reqs[k]).model_inputs
        for s in samples:
            assert image_pad not in s.token_ids
            ref = _recompute_logprobs(backend, s, 1.0, extra)
            assert torch.allclose(torch.tensor(s.logprobs), ref, atol=1e-4)


def test_video_is_reported_unsupported(tiny_vlm_dir):
    backend = build_backend("transformers", tiny_vlm_dir)
    req = GenerationRequest([{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "q"}]}])
    with pytest.raises(BackendError, match="video input is not supported"):
        backend.generate([req], 1, SamplingParams(max_new_tokens=2))


def test_ignore_eos_fills_the_budget(text_backend):
    out = text_backend.generate([_req("What is 1 + 1?")], 3, SamplingParams(max_new_tokens=20, ignore_eos=True, seed=0))
    assert all(len(s.token_ids) == 20 and s.finish_reason == "length" for s in out[0])


def test_seeded_call_leaves_global_rng_alone(text_backend):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    text_backend.generate([_req("x")], 1, SamplingParams(max_new_tokens=2, seed=5))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("spec,pads", [
    # Qwen3-VL: patch 16 x merge 2 -> a 64x64 image is 2x2 merged patches; Qwen2.5-VL: patch 14
    # x merge 2 -> 64x64 is resized to 56x56 -> 2x2 merged patches
    ("builtin:tiny-qwen3-vl", 4),
    ("builtin:tiny-qwen2.5-vl", 4),
])
def test_other_qwen_vl_families_generate_with_exact_logprobs(spec, pads, model_cache):
    """Qwen3-VL and Qwen2.5-VL through the same backend: images, prompt ids, sampling log-probs."""
    from PIL import Image

    from zppo_core.models import resolve

    backend = build_backend("transformers", resolve(spec, cache_dir=model_cache), batch_size=4)
    reqs = [_req("How many squares?", "a", [Image.new("RGB", (64, 64), (255, 0, 0))]), _req("What is 1 + 1?", "t")]
    out = backend.generate(reqs, 2, SamplingParams(temperature=1.0, max_new_tokens=5, seed=0))
    image_pad = backend.processor.image_token_id
    assert [sum(i == image_pad for i in out[k][0].prompt_ids) for k in range(2)] == [pads, 0]
    for k, samples in enumerate(out):
        extra = backend.render(reqs[k]).model_inputs
        for s in samples:
            assert image_pad not in s.token_ids
            assert torch.allclose(torch.tensor(s.logprobs), _recompute_logprobs(backend, s, 1.0, extra), atol=1e-4)
