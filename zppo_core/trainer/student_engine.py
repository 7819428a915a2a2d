"""The student's generation engine around each update: one lifecycle, decided once per run.

* ``transformers``: the engine samples from the live (trained) module itself -- nothing to do.
* ``vllm``: a separate engine with its own copy of the weights. Before the update it sleeps
  when built with sleep mode (weights offloaded, KV cache dropped, ``model.vllm_sleep_level``;
  the CPU build has none); after it, the new weights go in (``model.weight_sync``: ``memory``
  streams full tensors into this rank's in-process engine, ``disk`` has rank 0 write a
  safetensors folder every engine re-reads) and it wakes (the reload wakes weights, then the KV
  cache, so old + new weights + KV never coexist).
* ``recorded`` / ``openai``: no weights of the student to refresh -- nothing to do.

Every rank calls :meth:`StudentEngine.after_update`: both syncs are collectives under FSDP2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zppo_core.config import Config
from zppo_core.trainer import checkpoint as ck
from zppo_core.trainer.weight_sync import resolve_weight_sync, sync_in_memory

if TYPE_CHECKING:  # the parts hold this engine
    from zppo_core.trainer.state import Parts


@dataclass(frozen=True)
class StudentEngine:
    """``backend``: the student's generation backend; ``weight_sync``: "" (nothing to refresh) |
    "memory" | "disk"; ``sleeps``: put to sleep for the update."""

    backend: Any
    weight_sync: str = ""
    sleeps: bool = False

    @classmethod
    def for_run(cls, cfg: Config, backend: Any) -> StudentEngine:
        """The lifecycle of ``backend``, the run's ``model.student_backend``."""
        if cfg.model.student_backend != "vllm":
            return cls(backend)
        mode = resolve_weight_sync(cfg.model.weight_sync, engine_in_process=bool(backend.in_process))
        return cls(backend, weight_sync=mode, sleeps=bool(backend.sleep_enabled))

    def before_update(self) -> None:
        """Free the engine's accelerator memory for the update (sleep mode)."""
        if self.sleeps:
            self.backend.sleep()

    def after_update(self, parts: Parts) -> str:
        """Give the engine the updated weights (and wake it); returns the sync used ("" = none)."""
        if self.weight_sync == "memory":
            sync_in_memory(parts)
        elif self.weight_sync == "disk":
            sync_dir = parts.output_dir / ".weight_sync"
            sd = ck.gather_model_state(parts)
            if parts.dist.is_main:
                ck.write_model(parts, sync_dir, sd)
            parts.dist.barrier()
            self.backend.update_weights(str(sync_dir))
        return self.weight_sync


__all__ = ["StudentEngine"]
