"""The ZPPO trainer: Algorithm 1 loop, checkpoints, distributed, ``zppo train``.

``train(cfg, output_dir, *, max_steps=None, callbacks=(), run_id=None) -> dict`` (see
:mod:`zppo_core.trainer.setup`); ``checkpoint.latest_run_id(output_dir)``.
Imported lazily so ``import zppo_core.trainer`` stays light.
"""

from __future__ import annotations

from typing import Any

from zppo_core.config import Config


def train(cfg: Config, output_dir: Any, **kw: Any) -> dict[str, Any]:
    """Run or resume training (:func:`zppo_core.trainer.setup.train`)."""
    from zppo_core.trainer.setup import train as _train

    return _train(cfg, output_dir, **kw)


__all__ = ["train"]
