"""Shipped warm-start weights: every warm-started builtin comes from assets/, stamped with the
fingerprint of what made it; a stale stamp is an error, never a silent local rebuild, and the
cache copy is always byte-identical to the shipped weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from zppo_core.models import resolve, shipped


@pytest.fixture(autouse=True)
def _fresh_fingerprints(monkeypatch):
    monkeypatch.setattr(shipped, "_FINGERPRINTS", {})


def _sha(folder) -> str:
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(shipped.SHIPPED))
def test_every_shipped_folder_matches_the_code_and_is_what_resolve_installs(tmp_path, name):
    """A recipe, template or generator changed without `make models` fails here (a stale stamp
    would otherwise stop every user at the first resolve)."""
    assert shipped.stale_reason(name) is None, f"{shipped.stale_reason(name)}: run `make models`"
    out = Path(resolve(f"builtin:{name}", cache_dir=str(tmp_path)))
    assert shipped.fingerprint(name) in out.name  # a new recipe never reuses an old cache copy
    assert _sha(out) == _sha(shipped.SHIPPED[name].path) == shipped.read_stamp(out)["sha256"]


def test_the_bcq_template_is_part_of_the_miniature_fingerprint(monkeypatch):
    import zppo_core.prompts as prompts

    before = shipped.world_fingerprint("mini-student")
    build_bcq = prompts.build_bcq
    monkeypatch.setattr(prompts, "build_bcq", lambda q, cands, **kw: build_bcq(q, cands, **kw) + " ")
    assert shipped.world_fingerprint("mini-student") != before
    # the teacher never saw a BCQ prompt: its fingerprint does not move
    monkeypatch.setattr(prompts, "build_bcq", build_bcq)
    teacher = shipped.world_fingerprint("mini-teacher")
    monkeypatch.setattr(prompts, "build_bcq", lambda q, cands, **kw: build_bcq(q, cands, **kw) + " ")
    assert shipped.world_fingerprint("mini-teacher") == teacher


def test_the_plain_template_is_part_of_the_tiny_fingerprint(monkeypatch):
    import zppo_core.prompts as prompts

    before = shipped.tiny_fingerprint("tiny-qwen3")
    build_plain = prompts.build_plain
    monkeypatch.setattr(prompts, "build_plain", lambda q, **kw: build_plain(q, **kw) + "!")
    assert shipped.tiny_fingerprint("tiny-qwen3") != before


def test_a_stale_stamp_is_an_error_naming_the_rebuild_command(tmp_path, monkeypatch):
    monkeypatch.setitem(shipped._FINGERPRINTS, "tiny-qwen3", "0" * 16)
    with pytest.raises(shipped.StaleShippedModel, match=r"builtin:tiny-qwen3: the shipped weights in "
                       r"assets/tiny/tiny-qwen3 were made by another recipe .*make models"):
        resolve("builtin:tiny-qwen3", cache_dir=str(tmp_path))
    assert not any(tmp_path.iterdir()) or all(p.name.startswith(".") for p in tmp_path.iterdir())


def test_a_cache_copy_that_is_not_the_shipped_one_is_replaced(tmp_path):
    out = Path(resolve("builtin:tiny-qwen3", cache_dir=str(tmp_path)))
    (out / "model.safetensors").write_bytes(b"a local build")  # e.g. a warm start run on this CPU
    again = Path(resolve("builtin:tiny-qwen3", cache_dir=str(tmp_path)))
    assert again == out and _sha(again) == _sha(shipped.SHIPPED["tiny-qwen3"].path)


def test_rebuild_is_allowed_only_when_asked_and_then_warns(tmp_path, monkeypatch):
    """With the opt-in a stale builtin is built locally (stamped) and its copy is kept."""
    assets = tmp_path / "assets"
    (assets / "fake").mkdir(parents=True)

    def build(out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"built here")

    monkeypatch.setattr(shipped, "ASSETS_ROOT", assets)
    monkeypatch.setitem(shipped.SHIPPED, "fake", shipped.ShippedModel("fake", "fake", lambda: "f" * 16, build))
    with pytest.raises(shipped.StaleShippedModel, match="has no recipe.json"):
        shipped.install("fake", tmp_path)
    monkeypatch.setenv(shipped.ALLOW_REBUILD_ENV, "1")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.warns(UserWarning, match="building it on this CPU"):
        shipped.install("fake", out)
    assert (out / "model.safetensors").read_bytes() == b"built here"
    assert shipped.read_stamp(out) == {"fingerprint": "f" * 16, "sha256": hashlib.sha256(b"built here").hexdigest()}


def test_main_refuses_unknown_names(capsys):
    assert shipped.main(["nope"]) == 2
    assert "unknown shipped model(s) ['nope']" in capsys.readouterr().err
