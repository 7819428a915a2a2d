"""GPU placement on one node: which devices the training ranks get and which serve the
teacher/judge, mapped through the device mask the node already has.

Slurm (``--gpus-per-node`` with gres) or the user may have set ``CUDA_VISIBLE_DEVICES`` before
anything of ours runs, e.g. ``4,5,6,7`` or GPU UUIDs. Every id we hand to a child process is an
entry *of that mask*, never a plain ``0..n-1`` index, or a rank would land on a GPU the job was
not given. Pure functions, no I/O: the environment comes in as a mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MASK_ENV = "CUDA_VISIBLE_DEVICES"


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
    if raw is None or not raw.strip():
        return tuple(str(i) for i in range(count))
    mask = tuple(part.strip() for part in raw.split(",") if part.strip())
    if len(mask) < count:
        raise ValueError(f"{MASK_ENV}={raw!r} names {len(mask)} device(s); the job needs {count} per node")
    return mask[:count]


def map_through_mask(mask: Sequence[str], indices: Sequence[int]) -> str:
    """``CUDA_VISIBLE_DEVICES`` for node-local ``indices`` (positions in ``mask``):
    ``map_through_mask(("4", "5", "6", "7"), [0, 2]) == "4,6"``."""
    bad = [i for i in indices if not 0 <= i < len(mask)]
    if bad:
        raise ValueError(f"GPU indices {bad} are outside the node's {len(mask)} visible device(s) {list(mask)}")
    return ",".join(mask[i] for i in indices)


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


__all__ = ["MASK_ENV", "NodeSplit", "map_through_mask", "ranks_per_node", "split_node", "visible_devices"]
