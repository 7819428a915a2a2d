"""Where processes and models go on a node: pure plans, no CUDA calls, no I/O.

Slurm (``--gpus-per-node`` with gres) or the user may have set ``CUDA_VISIBLE_DEVICES`` before
anything of ours runs, e.g. ``4,5,6,7`` or GPU UUIDs. Every id we hand to a child process is an
entry *of that mask*, never a plain ``0..n-1`` index, or a rank would land on a GPU it was not
given. Indices are what this process calls its devices (``0 .. torch.cuda.device_count()-1``).

* :func:`mask_entries` / :func:`map_through_mask` / :func:`map_visible_devices` /
  :func:`device_env`: the ``CUDA_VISIBLE_DEVICES`` of a child that should see some of THIS
  process's devices;
* :func:`visible_devices` / :func:`split_node` / :func:`ranks_per_node`: a node's devices split
  into training ranks and the teacher/judge server (the cluster executor);
* :func:`frozen_model_plan`: how an in-process frozen model (the distillation teacher) is
  loaded and placed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MASK_ENV = "CUDA_VISIBLE_DEVICES"
#: the device numbering written with every mask: PCI bus order, as nvidia-smi prints it
DEFAULT_DEVICE_ORDER = "PCI_BUS_ID"


def mask_entries(mask: str | None) -> tuple[str, ...]:
    """The entries of a ``CUDA_VISIBLE_DEVICES`` value as written (numbers, ``GPU-<uuid>``,
    ``MIG-<uuid>``); ``()`` for ``None`` or blank (unmasked)."""
    return tuple(part.strip() for part in (mask or "").split(",") if part.strip())


def map_through_mask(mask: Sequence[str], indices: Sequence[int]) -> str:
    """``CUDA_VISIBLE_DEVICES`` for ``indices`` (positions in ``mask``):
    ``map_through_mask(("4", "5", "6", "7"), [0, 2]) == "4,6"``. Raises ``ValueError`` naming an
    index the mask does not have."""
    bad = [i for i in indices if not 0 <= int(i) < len(mask)]
    if bad:
        raise ValueError(f"GPU index(es) {bad} not among the {len(mask)} devices of "
                         f"{MASK_ENV}={','.join(mask)!r}")
    return ",".join(mask[int(i)] for i in indices)


def map_visible_devices(indices: Sequence[int], mask: str | None) -> str:
    """``CUDA_VISIBLE_DEVICES`` value naming this process's devices ``indices`` under its own
    ``mask`` (``None``/blank = unmasked: every device, numbered from 0):
    ``map_visible_devices([0, 2], "4,5,6,7") == "4,6"``."""
    entries = mask_entries(mask)
    if not entries:
        return ",".join(str(int(i)) for i in indices)
    return map_through_mask(entries, indices)


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


@dataclass(frozen=True)
class NodeSplit:
    """Device ids (entries of the node's mask) of the training ranks and of the served models."""

    train: tuple[str, ...]
    serve: tuple[str, ...]

    @property
    def train_mask(self) -> str:
        """``CUDA_VISIBLE_DEVICES`` of the training launcher ("" on a CPU node)."""
        return ",".join(self.train)

    @property
    def serve_mask(self) -> str:
        """``CUDA_VISIBLE_DEVICES`` of the teacher/judge server ("" when none is served)."""
        return ",".join(self.serve)


def visible_devices(env: Mapping[str, str], count: int) -> tuple[str, ...]:
    """The node's device ids: the entries of ``CUDA_VISIBLE_DEVICES`` when it is set (Slurm's gres
    or the user's mask, ids or UUIDs kept as written), else ``0..count-1``. ``count`` is how many
    the job asked for; a mask with fewer entries is an error, one with more is cut to ``count``."""
    raw = env.get(MASK_ENV)
    mask = mask_entries(raw)
    if not mask:
        return tuple(str(i) for i in range(count))
    if len(mask) < count:
        raise ValueError(f"{MASK_ENV}={raw!r} names {len(mask)} device(s); the job needs {count} per node")
    return mask[:count]


def split_node(devices: Sequence[str], serve: int) -> NodeSplit:
    """The last ``serve`` devices serve the teacher/judge, the others train (paper: 8 GPUs,
    ``serve=2``: ranks on the first 6). With no devices (a CPU node) nothing is split."""
    if serve < 0:
        raise ValueError(f"serving GPUs per node must be >= 0, got {serve}")
    devices = tuple(devices)
    if not devices:
        return NodeSplit((), ())
    if serve >= len(devices):
        raise ValueError(f"{serve} serving GPU(s) of {len(devices)} per node leave none to training")
    cut = len(devices) - serve
    return NodeSplit(devices[:cut], devices[cut:])


def ranks_per_node(gpus_per_node: int, serve: int) -> int:
    """Training ranks one node starts: one per training GPU, one on a CPU node."""
    return max(1, gpus_per_node - serve) if gpus_per_node else 1


__all__ = [
    "DEFAULT_DEVICE_ORDER", "MASK_ENV", "FrozenPlan", "NodeSplit", "device_env", "frozen_model_plan",
    "map_through_mask", "map_visible_devices", "mask_entries", "ranks_per_node", "split_node", "visible_devices",
]
