"""Loading a frozen in-process model (the distillation teacher) by :func:`zppo_core.placement.frozen_model_plan`.

Sharded plan (fsdp2): every rank builds the module on the ``meta`` device from the checkpoint's
config, shards it with the trainer's FSDP2 helper, allocates only its shards on its device
(``to_empty``); rank 0 alone reads the checkpoint (on CPU, in the compute dtype) and the shards
reach every rank by ``set_model_state_dict(..., full_state_dict=True, broadcast_from_rank0=True)``.
Non-persistent buffers (rotary ``inv_freq``) are not in a state dict: rank 0 broadcasts its own.
So a 27B teacher in bf16 is 54 GB once in host memory and 54 GB / world per GPU; it is never
whole on a GPU, and no fp32 copy exists.

Unsharded plan: a full copy in the compute dtype on this rank's device.
"""

from __future__ import annotations

import torch

from zppo_core.config import Config
from zppo_core.trainer.distributed import Dist


def non_persistent_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``{qualified name: tensor}`` of the buffers a state dict leaves out."""
    out = {}
    for mod_name, mod in model.named_modules():
        for name in getattr(mod, "_non_persistent_buffers_set", ()):
            buf = mod._buffers.get(name)
            if buf is not None:
                out[f"{mod_name}.{name}" if mod_name else name] = buf
    return out


def _set_buffers(model: torch.nn.Module, buffers: dict[str, torch.Tensor], device: torch.device) -> None:
    for qual, value in buffers.items():
        mod_name, _, name = qual.rpartition(".")
        mod = model.get_submodule(mod_name) if mod_name else model
        mod._buffers[name] = value.to(device)


def _meta_skeleton(model_dir: str, cfg: Config, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    from zppo_core.models.processor import is_vlm_dir
    from zppo_core.trainer.build import attn_implementation

    cls = AutoModelForImageTextToText if is_vlm_dir(model_dir) else AutoModelForCausalLM
    conf = AutoConfig.from_pretrained(model_dir, trust_remote_code=cfg.model.trust_remote_code)
    attn = attn_implementation(cfg)
    with torch.device("meta"):
        return cls.from_config(conf, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code,
                               **({"attn_implementation": attn} if attn else {}))


def load_sharded_frozen(model_dir: str, cfg: Config, dist: Dist, dtype: torch.dtype) -> torch.nn.Module:
    """The frozen model of ``model_dir`` sharded over every rank (the sharded plan above).
    A collective: every rank calls it. Returns the FSDP2 module (DTensor parameters, frozen, eval)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    from zppo_core.trainer.build import load_student
    from zppo_core.trainer.parallel import apply_fsdp2

    model = _meta_skeleton(model_dir, cfg, dtype)
    model.requires_grad_(False)
    apply_fsdp2(model, compute_dtype=dtype, device_type=dist.device.type,
                reshard_after_forward=cfg.parallel.reshard_after_forward)
    model.to_empty(device=dist.device)
    full: dict[str, torch.Tensor] = {}
    buffers: dict[str, torch.Tensor] = {}
    if dist.rank == 0:
        source, _ = load_student(model_dir, cfg, dtype=dtype)  # on CPU
        full = source.state_dict()
        buffers = {k: v.detach().cpu() for k, v in non_persistent_buffers(source).items()}
        del source
    set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    _set_buffers(model, dist.broadcast(buffers), dist.device)
    model.eval()
    return model


def load_frozen(model_dir: str, cfg: Config, dist: Dist) -> torch.nn.Module:
    """The frozen model of ``model_dir`` placed by :func:`frozen_model_plan` for this run."""
    from zppo_core.placement import frozen_model_plan
    from zppo_core.trainer.build import load_student, torch_dtype

    plan = frozen_model_plan(strategy=dist.strategy, world=dist.world, compute_dtype=cfg.model.dtype,
                             device=str(dist.device))
    dtype = torch_dtype(plan.dtype)
    if plan.shard:
        return load_sharded_frozen(model_dir, cfg, dist, dtype)
    model, _ = load_student(model_dir, cfg, dtype=dtype)
    model.requires_grad_(False)
    model.eval()
    return model.to(dist.device)


__all__ = ["load_frozen", "load_sharded_frozen", "non_persistent_buffers"]
