"""Cache keys of the pipeline stages: resolved config + input data + code version.

A stage's key changes when (and only when) something that determines its output changes:

* the part of the resolved config the stage reads (``Config`` sections, hashed as sorted JSON),
* the input data (curated parquet content hash, a model folder's fingerprint, local source paths),
* the code version: the package version plus a hash of the source files of the packages the stage
  runs (``zppo_core``, ``data_prep``, ``eval``, ``tasks``). Hashing the tree (not only the git sha)
  also catches uncommitted edits,
* the versions of the third-party libraries that decide the numbers (:data:`RESULT_LIBRARIES`).

No Prefect import here, so the keys are unit-testable without an engine.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import zppo_core
from zppo_core.fingerprint import path_fingerprint, stable_hash

#: repository root (the folder holding the packages)
REPO_ROOT = Path(__file__).resolve().parent.parent
#: file suffixes that make up the code version of a package
_CODE_SUFFIXES = (".py", ".yaml", ".json", ".jinja")


@functools.lru_cache(maxsize=32)
def source_tree_hash(*packages: str) -> str:
    """Hash of every source file (path + bytes) of the given packages or files (repo-relative)."""
    h = hashlib.sha256()
    for pkg in sorted(packages):
        root = REPO_ROOT / pkg
        if not root.exists():
            h.update(f"missing:{pkg}".encode())
            continue
        for f in [root] if root.is_file() else sorted(root.rglob("*")):
            if f.is_file() and f.suffix in _CODE_SUFFIXES and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(REPO_ROOT)).encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def code_version(*packages: str) -> str:
    """``<package version>+<source tree hash>`` of the packages a stage runs."""
    return f"{zppo_core.__version__}+{source_tree_hash(*packages)}"


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """Commit of the working tree (``-dirty`` when it has local edits), ``unknown`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


#: third-party libraries whose version can change a stage's numbers (sampling, kernels,
#: image resizing, grading, DuckDB query results)
RESULT_LIBRARIES = ("torch", "transformers", "accelerate", "vllm", "safetensors", "numpy", "sympy",
                    "pillow", "duckdb", "pyarrow", "tokenizers")


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions of :data:`RESULT_LIBRARIES` (absent ones omitted)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in RESULT_LIBRARIES:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def stage_key(stage: str, *, config: Any, inputs: Any, packages: tuple[str, ...]) -> str:
    """Cache key ``<stage>-<hash>`` from a config fragment, input fingerprints, code version and
    the versions of the libraries that decide the numbers."""
    return f"{stage}-" + stable_hash(
        {"config": config, "inputs": inputs, "code": code_version(*packages), "libs": library_versions()},
        length=24,
    )


__all__ = [
    "REPO_ROOT",
    "RESULT_LIBRARIES",
    "library_versions",
    "code_version",
    "git_sha",
    "path_fingerprint",
    "source_tree_hash",
    "stable_hash",
    "stage_key",
]
