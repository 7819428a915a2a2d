"""The on-policy invariant (paper §3.2, issue 2): every token in the loss was sampled by the
current student. Checked through the real tokenisation path of the tiny model: the trainer's
sequences are the rendered prompts plus the sampled ids, the loss mask covers exactly the
sampled response tokens (never prompt, candidate or teacher text), and the trainer's log-probs
of those tokens equal the sampler's."""

from __future__ import annotations

import torch

from zppo_core.trainer import checkpoint  # noqa: F401  (import check of the package)
from zppo_core.trainer.batch import collate, split_rows, token_logprobs
from zppo_core.trainer.rollout import collect
from zppo_core.trainer.setup import build_parts


def test_loss_mask_covers_only_sampled_student_tokens(tmp_path, micro_config):
    from zppo_core.models import resolve
    from zppo_core.models.processor import tokenizer_of

    cfg = micro_config(tmp_path, **{"zppo.method": "zppo", "zppo.rho_aug": 1.0, "rollout.student.max_new_tokens": 12})
    parts = build_parts(cfg, tmp_path / "run", resolve(cfg.model.student))
    tok = tokenizer_of(parts.processor)
    sr = collect(parts.io, cfg, parts.questions[:4], [], step=1, cap=4, seed=5)
    kinds = {r.kind for r in sr.rollouts}
    assert {"plain", "bcq", "ncq"} <= kinds, kinds

    batch = collate(sr.rollouts, parts.pad_id, parts.vision_ids)
    with torch.no_grad():
        lp = token_logprobs(parts.model, batch)
    targets = batch.input_ids[:, 1:]
    for i, r in enumerate(sr.rollouts):
        p, n = len(r.prompt_ids), len(r.response_ids)
        mask = batch.response_mask[i]
        # exactly the sampled ids are scored, nothing else
        assert int(mask.sum()) == n
        assert targets[i][mask].tolist() == r.response_ids
        assert not mask[: p - 1].any() and not mask[p - 1 + n :].any()
        # the prompt is the real rendering of the request the backend sampled from
        prompt_text = tok.decode(r.prompt_ids)
        if r.kind in ("bcq", "ncq"):
            assert "<candidate>" in prompt_text  # candidate/teacher text lives in the prompt only
            assert "<candidate>" not in tok.decode([t for t, m in zip(targets[i].tolist(), mask.tolist()) if m])
        if r.kind == "bcq":
            teacher_text = "Let me work it out."  # the recorded teacher's words (raw candidate)
            assert teacher_text in prompt_text
        # the trainer scores the same tokens under the same policy as the sampler did
        assert r.sampler_logprobs is not None and len(r.sampler_logprobs) == n
    rows = split_rows(lp, batch)
    for r, row in zip(sr.rollouts, rows):
        torch.testing.assert_close(row, torch.tensor(r.sampler_logprobs), atol=2e-4, rtol=1e-4)
