"""Shipped warm-start weights: the builtins whose behaviour tests and the demo rely on.

A warm start trained on the local CPU gives another model on another CPU (other kernels, other
float reductions), so every warm-started builtin ships its weights under ``assets/`` (the
miniature's teacher and student, the warm tiny Qwen3 and Qwen3.5-VL). Each shipped folder
carries a stamp (``recipe.json``): the **fingerprint** of what made it -- the recipe, the
tokenizer and the first rendered training examples (so a changed prompt template or generator
changes it) -- and the **sha256** of its ``model.safetensors``.

:func:`install` copies the shipped folder into the model cache when the stamp matches the code;
a stale stamp is an error naming the command that rebuilds the weights (``make models``), never
a silent local rebuild (``ZPPO_ALLOW_MODEL_REBUILD=1`` builds locally, with a warning: the
result then depends on this CPU). :func:`cached_copy_is_shipped` lets the resolver replace a
cache copy that is not byte-identical to the shipped weights.

``python -m zppo_core.models.shipped [--verify] [NAME ...]`` (``make models``,
``make models-verify``) rebuilds the folders; ``--verify`` rebuilds into a temporary folder and
compares the weights with the shipped ones (bit for bit on the CPU kind that shipped them; on
another kind it reports the largest difference).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

#: the repository's asset root (the shipped folders live below it)
ASSETS_ROOT = Path(__file__).resolve().parents[2] / "assets"
STAMP_FILE = "recipe.json"
WEIGHTS_FILE = "model.safetensors"
#: set to 1 to build a builtin locally when its shipped weights are stale (CPU-dependent result)
ALLOW_REBUILD_ENV = "ZPPO_ALLOW_MODEL_REBUILD"
#: rendered training examples hashed into a fingerprint (per example stream)
DIGEST_EXAMPLES = 16


class StaleShippedModel(RuntimeError):
    """The shipped weights of a builtin were made by another recipe than the code's."""


@dataclass(frozen=True)
class ShippedModel:
    """One shipped builtin: its folder under :data:`ASSETS_ROOT`, its fingerprint and builder."""

    name: str
    folder: str
    fingerprint: Callable[[], str]
    build: Callable[[Path], None]

    @property
    def path(self) -> Path:
        return ASSETS_ROOT / self.folder


def examples_digest(tok, pairs: Iterable) -> str:
    """sha256 (16 hex) of (request, target) pairs as the model saw them: the chat-template text
    of each request, its images' bytes and the target."""
    h = hashlib.sha256()
    for req, target in pairs:
        h.update(tok.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True).encode())
        for img in getattr(req, "images", None) or ():
            h.update(img.tobytes())
        h.update(target.encode())
    return h.hexdigest()[:16]


def _tokenizer_digest(tok) -> str:
    return hashlib.sha256(tok.backend_tokenizer.to_str().encode()).hexdigest()[:16]


def _stable(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------- the tiny models
def _tiny_recipe(name: str):
    from zppo_core.models.tiny import VLM_WARMSTART_STEPS, TinyTextSpec, TinyVisionSpec
    from zppo_core.models.warmstart import WarmstartSpec

    if name == "tiny-qwen3":
        return {"text": asdict(TinyTextSpec())}, WarmstartSpec()
    return ({"text": asdict(TinyTextSpec()), "vision": asdict(TinyVisionSpec())},
            WarmstartSpec(steps=VLM_WARMSTART_STEPS, images=True))


def tiny_fingerprint(name: str) -> str:
    """Fingerprint of the warm-started tiny ``name``: model specs, warm-start spec, tokenizer and
    the first :data:`DIGEST_EXAMPLES` rendered warm-start examples."""
    from zppo_core.models import BUILD_VERSION
    from zppo_core.models.tokenizer import TokenizerSpec, build_tokenizer
    from zppo_core.models.warmstart import make_example

    shapes, spec = _tiny_recipe(name)
    tok = build_tokenizer(TokenizerSpec())
    rng = random.Random(spec.seed)
    pairs = [make_example(rng, spec) for _ in range(DIGEST_EXAMPLES)]
    return _stable({"name": name, "shapes": shapes, "warmstart": asdict(spec), "version": BUILD_VERSION,
                    "tokenizer": _tokenizer_digest(tok), "examples": examples_digest(tok, pairs)})


def _build_tiny(name: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        import torch

        from zppo_core.models.tiny import build_tiny

        torch.set_num_threads(1)  # one thread: the same float reductions on every run of this CPU kind
        build_tiny(name, out, warmstart=True)
    return build


# ----------------------------------------------------------------------- the miniature's models
def world_fingerprint(name: str) -> str:
    """Fingerprint of the miniature's ``name``: its recipe (every stage), the tokenizer and the
    first rendered examples of every kind of every stage (templates and generators included)."""
    from zppo_core.models.miniature_warmstart import RECIPES, WORLD_VERSION, make_example
    from zppo_core.models.tokenizer import TokenizerSpec, build_tokenizer

    recipe = RECIPES[name]
    tok = build_tokenizer(TokenizerSpec())
    digests = []
    for stage in (recipe, *recipe.then):
        for kind, _ in stage.mix:
            rng = random.Random(stage.seed)
            digests.append(examples_digest(tok, [make_example(kind, stage, rng) for _ in range(DIGEST_EXAMPLES)]))
    return _stable({"name": name, "recipe": asdict(recipe), "version": WORLD_VERSION,
                    "tokenizer": _tokenizer_digest(tok), "examples": digests})


def _build_world(name: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        from zppo_core.models.miniature_warmstart import build_world

        build_world(name, out, log_every=50)
    return build


SHIPPED: dict[str, ShippedModel] = {
    "tiny-qwen3": ShippedModel("tiny-qwen3", "tiny/tiny-qwen3", lambda: tiny_fingerprint("tiny-qwen3"),
                               _build_tiny("tiny-qwen3")),
    "tiny-qwen3.5-vl": ShippedModel("tiny-qwen3.5-vl", "tiny/tiny-qwen3.5-vl",
                                    lambda: tiny_fingerprint("tiny-qwen3.5-vl"), _build_tiny("tiny-qwen3.5-vl")),
    "mini-teacher": ShippedModel("mini-teacher", "miniature/mini-teacher", lambda: world_fingerprint("mini-teacher"),
                                 _build_world("mini-teacher")),
    "mini-student": ShippedModel("mini-student", "miniature/mini-student", lambda: world_fingerprint("mini-student"),
                                 _build_world("mini-student")),
}

_FINGERPRINTS: dict[str, str] = {}


def fingerprint(name: str) -> str:
    """The code's fingerprint of shipped builtin ``name`` (computed once per process)."""
    if name not in _FINGERPRINTS:
        _FINGERPRINTS[name] = SHIPPED[name].fingerprint()
    return _FINGERPRINTS[name]


def weights_sha(folder: str | Path) -> str:
    """sha256 of ``folder``'s ``model.safetensors`` ("" when it has none)."""
    f = Path(folder) / WEIGHTS_FILE
    return hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else ""


def read_stamp(folder: str | Path) -> dict:
    f = Path(folder) / STAMP_FILE
    return json.loads(f.read_text()) if f.is_file() else {}


def write_stamp(name: str, folder: str | Path) -> dict:
    stamp = {"fingerprint": fingerprint(name), "sha256": weights_sha(folder)}
    (Path(folder) / STAMP_FILE).write_text(json.dumps(stamp, sort_keys=True) + "\n")
    return stamp


def stale_reason(name: str) -> str | None:
    """Why the shipped folder of ``name`` cannot be used (None when it can)."""
    model = SHIPPED[name]
    stamp = read_stamp(model.path)
    if not stamp:
        return f"{model.path} has no {STAMP_FILE}"
    if stamp.get("fingerprint") != fingerprint(name):
        return (f"the shipped weights in assets/{model.folder} were made by another recipe "
                f"(stamp {stamp.get('fingerprint')}, code {fingerprint(name)})")
    if stamp.get("sha256") != weights_sha(model.path):
        return f"assets/{model.folder}/{WEIGHTS_FILE} does not match its stamp's sha256"
    return None


def install(name: str, out: str | Path) -> None:
    """Copy the shipped folder of ``name`` into the empty folder ``out``.

    Raises :class:`StaleShippedModel` when the shipped weights do not match the code, unless
    ``$ZPPO_ALLOW_MODEL_REBUILD=1`` (then it builds locally, with a warning)."""
    model = SHIPPED[name]
    reason = stale_reason(name)
    if reason is None:
        for f in model.path.iterdir():
            shutil.copy2(f, Path(out) / f.name)
        return
    if os.environ.get(ALLOW_REBUILD_ENV) != "1":
        raise StaleShippedModel(f"builtin:{name}: {reason}; rebuild them with `make models` (or set "
                                f"{ALLOW_REBUILD_ENV}=1 to build locally: the model then depends on this CPU)")
    warnings.warn(f"builtin:{name}: {reason}; building it on this CPU ({ALLOW_REBUILD_ENV}=1)", stacklevel=2)
    model.build(Path(out))
    write_stamp(name, out)


def cached_copy_is_shipped(name: str, folder: str | Path) -> bool:
    """Whether a cache folder of ``name`` holds exactly the shipped weights."""
    shipped = read_stamp(SHIPPED[name].path).get("sha256")
    return bool(shipped) and weights_sha(folder) == shipped


def _max_abs_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    ta, tb = load_file(str(a / WEIGHTS_FILE)), load_file(str(b / WEIGHTS_FILE))
    return max(float((ta[k].float() - tb[k].float()).abs().max()) for k in ta)


def ship(names: Iterable[str] = tuple(SHIPPED), verify: bool = False) -> dict[str, str]:
    """Rebuild each ``name`` into its shipped folder (or, with ``verify``, into a temporary one
    and compare the weights). Returns the sha256 of each rebuilt ``model.safetensors``."""
    digests = {}
    for name in names:
        model = SHIPPED[name]
        work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        model.build(work)
        digests[name] = weights_sha(work)
        if verify:
            shipped = read_stamp(model.path).get("sha256")
            if shipped != digests[name]:
                diff = _max_abs_diff(work, model.path) if weights_sha(model.path) else float("nan")
                raise SystemExit(f"{name}: rebuilt weights differ from assets/{model.folder} "
                                 f"({digests[name][:16]} != {str(shipped)[:16]}; largest difference {diff:.3g})")
            print(f"{name}: sha256 {digests[name]} (identical to the shipped folder)", flush=True)
        else:
            if model.path.exists():
                shutil.rmtree(model.path)
            shutil.copytree(work, model.path)
            write_stamp(name, model.path)
            print(f"{name}: sha256 {digests[name]} -> assets/{model.folder}", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    return digests


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verify = "--verify" in args
    names = [a for a in args if a != "--verify"] or list(SHIPPED)
    unknown = sorted(set(names) - set(SHIPPED))
    if unknown:
        print(f"unknown shipped model(s) {unknown}; choose from {sorted(SHIPPED)}", file=sys.stderr)
        return 2
    ship(names, verify=verify)
    return 0


if __name__ == "__main__":  # python -m zppo_core.models.shipped [--verify] [NAME ...]
    raise SystemExit(main())


__all__ = [
    "ALLOW_REBUILD_ENV", "ASSETS_ROOT", "SHIPPED", "STAMP_FILE", "ShippedModel", "StaleShippedModel",
    "cached_copy_is_shipped", "examples_digest", "fingerprint", "install", "read_stamp", "ship",
    "stale_reason", "tiny_fingerprint", "weights_sha", "world_fingerprint", "write_stamp",
]
