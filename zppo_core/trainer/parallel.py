"""How the student is laid out over the training processes: ``single``, ``ddp`` or ``fsdp2``.

FSDP2 is applied by the trainer itself with :func:`torch.distributed.fsdp.fully_shard` -- one
FSDP unit per text decoder layer, then the root -- on a 1-D device mesh of all ranks, with a
:class:`~torch.distributed.fsdp.MixedPrecisionPolicy` taken from ``model.dtype`` (compute dtype)
and float32 gradient reduction. The same code runs on GPUs (NCCL) and on CPU ranks (gloo); we do
not rely on accelerate's FSDP plugin, which on a machine without CUDA silently falls back to
DDP. Parameters stay float32 (master weights); the optimizer is built on the sharded
parameters, so its state is float32 and sharded too.

Vision towers are not wrapped on their own: their parameters live in the root unit, which
every rank gathers at every forward, so a rank whose micro-batch has no image still issues the
same collectives as a rank whose micro-batch has one.
"""

from __future__ import annotations

import os
from typing import Any

import torch

STRATEGIES = ("single", "ddp", "fsdp2")


def resolve_strategy(requested: str, world: int, launched_with_fsdp: bool | None = None) -> str:
    """``parallel.strategy`` -> the layout used. ``auto``: fsdp2 under an FSDP accelerate config
    (``ACCELERATE_USE_FSDP``), ddp for other multi-process launches, single for one process."""
    if launched_with_fsdp is None:
        launched_with_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")
    if requested == "auto":
        if world == 1:
            return "single"
        return "fsdp2" if launched_with_fsdp else "ddp"
    if requested == "ddp" and world == 1:
        return "single"
    if requested == "single" and world > 1:
        raise RuntimeError(f"parallel.strategy: 'single' with {world} processes; use ddp or fsdp2")
    return requested


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The text decoder layers: modules whose class is in HF's ``_no_split_modules`` (the same
    rule as accelerate's TRANSFORMER_BASED_WRAP), vision-tower blocks excluded."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    out = []
    for qual, mod in model.named_modules():
        if type(mod).__name__ in names and not any(v in qual for v in ("visual", "vision")):
            out.append(mod)
    if not out:
        raise RuntimeError(f"{type(model).__name__}: no decoder layers found among {sorted(names)} to shard")
    return out


def enable_activation_checkpointing(model: torch.nn.Module) -> int:
    """Wrap each decoder layer so its activations are recomputed in the backward instead of
    stored (torch's non-reentrant checkpoint wrapper, applied before sharding as torchtitan
    does). Unlike HF's ``gradient_checkpointing_enable`` it does not depend on ``model.training``
    (the trainer updates in eval mode: no dropout). Parameter names are unchanged in state
    dicts. Returns the number of wrapped layers."""
    import functools

    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        apply_activation_checkpointing,
        checkpoint_wrapper,
    )

    layers = {id(m) for m in decoder_layers(model)}
    apply_activation_checkpointing(
        model, checkpoint_wrapper_fn=functools.partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT),
        check_fn=lambda m: id(m) in layers,
    )
    return len(layers)


def apply_fsdp2(model: torch.nn.Module, *, compute_dtype: torch.dtype, device_type: str,
                reshard_after_forward: bool = True) -> torch.nn.Module:
    """Shard ``model`` in place over all ranks: ``fully_shard`` per decoder layer, then the root."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device_type, (dist.get_world_size(),))
    mp = MixedPrecisionPolicy(param_dtype=None if compute_dtype == torch.float32 else compute_dtype,
                              reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard_after_forward)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    """True when ``model`` is an FSDP2 module whose parameters are DTensors."""
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor

    return isinstance(model, FSDPModule) and all(isinstance(p, DTensor) for p in model.parameters())


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> float:
    """Clip by the global L2 norm of all gradients (DTensor shards included); returns the norm."""
    from torch.distributed.tensor import DTensor

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.nn.utils.get_total_norm(grads, 2.0)
    if isinstance(norm, DTensor):
        norm = norm.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return float(norm)


def full_model_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded state dict on CPU (a collective under FSDP2: EVERY rank must call it;
    rank 0 gets the tensors, other ranks an empty dict)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def describe(strategy: str, world: int) -> dict[str, Any]:
    """The ``"parallel"`` record of checkpoints and run params."""
    return {"strategy": strategy, "world_size": int(world)}


__all__ = [
    "STRATEGIES",
    "apply_fsdp2",
    "clip_grad_norm",
    "decoder_layers",
    "describe",
    "enable_activation_checkpointing",
    "full_model_state_dict",
    "is_sharded",
    "resolve_strategy",
]
