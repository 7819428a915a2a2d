"""Where processes and models go on a node: pure plans, no CUDA calls.

* :func:`map_visible_devices` / :func:`device_env`: the ``CUDA_VISIBLE_DEVICES`` of a child
  process that should see some of THIS process's GPUs. Indices are what this process calls
  its devices (``0 .. torch.cuda.device_count()-1``); under an existing mask (a Slurm
  allocation, a hand-set ``CUDA_VISIBLE_DEVICES=4,5,6,7``) device ``i`` is the mask's ``i``-th
  entry, so the child's mask must name that entry, not ``i``.
* :func:`frozen_model_plan`: how an in-process frozen model (the distillation teacher) is
  loaded and placed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: the device numbering written with every mask: PCI bus order, as nvidia-smi prints it
DEFAULT_DEVICE_ORDER = "PCI_BUS_ID"


def map_visible_devices(indices: Sequence[int], mask: str | None) -> str:
    """``CUDA_VISIBLE_DEVICES`` value naming this process's devices ``indices``.

    ``mask``: this process's own ``CUDA_VISIBLE_DEVICES`` (``None`` or ``""`` = unmasked: every
    device, numbered from 0). Entries may be numbers, ``GPU-<uuid>`` or ``MIG-<uuid>``; they are
    passed through as written. ``map_visible_devices([0, 2], "4,5,6,7") == "4,6"``.
    Raises ``ValueError`` naming an index the mask does not have.
    """
    if not mask or not mask.strip():
        return ",".join(str(int(i)) for i in indices)
    entries = [e.strip() for e in mask.split(",") if e.strip()]
    bad = [i for i in indices if not 0 <= int(i) < len(entries)]
    if bad:
        raise ValueError(f"GPU index(es) {bad} not among the {len(entries)} devices of CUDA_VISIBLE_DEVICES={mask!r}")
    return ",".join(entries[int(i)] for i in indices)


def device_env(indices: Sequence[int], environ: Mapping[str, str]) -> dict[str, str]:
    """Environment pinning a child process to this process's devices ``indices``: the mapped
    mask, and this process's ``CUDA_DEVICE_ORDER`` (``PCI_BUS_ID`` when it sets none), so the
    child reads the mask in the numbering the parent's mask was written in."""
    return {"CUDA_VISIBLE_DEVICES": map_visible_devices(indices, environ.get("CUDA_VISIBLE_DEVICES")),
            "CUDA_DEVICE_ORDER": environ.get("CUDA_DEVICE_ORDER", DEFAULT_DEVICE_ORDER)}


@dataclass(frozen=True)
class FrozenPlan:
    """How a frozen in-process model is loaded and placed.

    ``dtype``: the dtype its weights are loaded in (the compute dtype: no fp32 copy of a model
    that is never stepped); ``shard``: FSDP2-sharded over the ranks; ``source_ranks``: the ranks
    that read the checkpoint from disk (the others build the module on the meta device and
    receive their shards by broadcast); ``init_device``: where the readers hold it before
    sharding (``cpu``: never whole on a GPU) or, unsharded, where it is loaded directly.
    """

    dtype: str
    shard: bool
    source_ranks: tuple[int, ...]
    init_device: str


def frozen_model_plan(*, strategy: str, world: int, compute_dtype: str, device: str) -> FrozenPlan:
    """The plan of a frozen model under the student's layout ``strategy`` over ``world`` ranks.

    fsdp2: rank 0 reads the checkpoint on CPU in ``compute_dtype``, every rank builds the module
    on ``meta``, shards it (``fully_shard``), allocates only its shards on ``device`` and receives
    them from rank 0 (``set_model_state_dict(..., broadcast_from_rank0=True)``): 27B in bf16 is
    54 GB once in host memory, 54 GB / world per GPU. Other layouts: every rank loads a full copy
    in ``compute_dtype`` straight onto ``device``."""
    if strategy == "fsdp2":
        return FrozenPlan(compute_dtype, True, (0,), "cpu")
    return FrozenPlan(compute_dtype, False, tuple(range(world)), device)


__all__ = ["DEFAULT_DEVICE_ORDER", "FrozenPlan", "device_env", "frozen_model_plan", "map_visible_devices"]
