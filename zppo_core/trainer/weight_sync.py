"""Weight sync from the trained student into a non-live student engine (vLLM), every step.

``model.weight_sync``:

- ``memory`` (GPU default): every rank walks the student's state dict in the same order, turns
  each (possibly FSDP2-sharded) tensor into the full tensor (``DTensor.full_tensor()``: an
  all-gather, so a collective matched on EVERY rank), casts it to the engine dtype (bf16) and
  streams ``(HF name, tensor)`` into its own colocated engine's weight loader
  (:meth:`VLLMBackend.load_weights`). No disk, one parameter's full copy alive at a time, as
  TRL's colocate mode and verl do.
  It needs the engine core in this process (``external_launcher``); the CPU build of vLLM
  takes it too (``reload_weights(weights_iterator=...)``, tested), a multiprocess engine cannot.
- ``disk`` (fallback): every rank gathers the full state dict (collective), rank 0 writes a
  safetensors folder, every engine re-reads it (``reload_weights(weights_path=...)``).

Health check of either path: ``train/sampler_logprob_diff`` (mean |log p_sampler - log p_trainer|
over the step's response tokens; see :mod:`zppo_core.metrics`) stays near 0 when the engine
holds the trainer's weights, and jumps when a sync is missed or wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from zppo_core.config.schema import WEIGHT_SYNC_MODES

if TYPE_CHECKING:  # the trainer's parts hold the student whose weights this module streams
    from zppo_core.trainer.state import Parts

#: prefixes added by wrappers (DDP, activation checkpointing, torch.compile) to HF names
_WRAPPER_PARTS = ("_checkpoint_wrapped_module.", "_orig_mod.", "_fsdp_wrapped_module.")


def hf_name(name: str) -> str:
    """The HF checkpoint name of a parameter of a (possibly wrapped) student module."""
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name[len("module."):] if name.startswith("module.") else name


def iter_full_params(model: torch.nn.Module, dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(HF name, full tensor in dtype)`` for every entry of ``model.state_dict()``.

    Under FSDP2 each entry is a sharded ``DTensor``; its local shard is cast to ``dtype`` first
    and then ``full_tensor()`` all-gathers it (bf16 on the wire, half of fp32), so EVERY rank
    must exhaust this generator (same order everywhere: the module's own order).
    """
    for name, t in model.state_dict().items():
        t = t.detach()
        full = t.to(dtype).full_tensor() if hasattr(t, "full_tensor") else t.to(dtype)
        yield hf_name(name), full


def resolve_weight_sync(requested: str, *, engine_in_process: bool) -> str:
    """The sync a run uses: ``memory`` needs an in-process engine (``external_launcher``); any
    other engine (a multiprocess one cannot receive a Python iterator) falls back to ``disk``."""
    if requested not in WEIGHT_SYNC_MODES:
        raise ValueError(f"model.weight_sync: {requested!r} not in {'|'.join(WEIGHT_SYNC_MODES)}")
    return requested if engine_in_process else "disk"


def engine_dtype(parts: Parts) -> torch.dtype:
    from zppo_core.trainer.build import torch_dtype

    return torch_dtype(parts.cfg.model.dtype)


def sync_in_memory(parts: Parts) -> int:
    """Stream the student's weights into this rank's engine; returns the tensors streamed."""
    count = 0

    def counted() -> Iterator[tuple[str, torch.Tensor]]:
        nonlocal count
        for item in iter_full_params(parts.model, engine_dtype(parts)):
            count += 1
            yield item

    parts.io.student.load_weights(counted())
    return count


__all__ = ["WEIGHT_SYNC_MODES", "hf_name", "iter_full_params", "resolve_weight_sync", "sync_in_memory"]
