"""The typed config: paper defaults (Tab. 8), YAML mirror, unknown keys rejected by name."""

import re
from pathlib import Path

import pytest
import yaml

from zppo_core.config import (
    METHOD_LABELS,
    METHODS,
    Config,
    ConfigError,
    config_from_dict,
    dump_config,
    load_config,
    replace,
)

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_papers_table_8():
    c = Config()
    assert (c.rollout.group_size, c.rollout.teacher_group_size) == (8, 4)
    assert c.algo.iterations == 4
    assert (c.algo.clip_low, c.algo.clip_high, c.algo.dual_clip) == (0.20, 0.28, 10.0)
    assert c.algo.kl_coef == 0.0 and c.algo.loss_agg == "token" and c.algo.adv_norm == "without_zero"
    assert (c.zppo.tau, c.zppo.rho_replay, c.zppo.rho_aug) == (0.5, 0.25, 0.25)
    assert c.zppo.buffer_capacity == 10_000 and c.zppo.compression_max_tokens == 512
    assert c.optim.lr == 1.0e-6 and c.optim.betas == (0.9, 0.999) and c.optim.eps == 1e-8
    assert (c.optim.weight_decay, c.optim.grad_clip) == (0.1, 1.0)
    assert (c.schedule.rollout_batch, c.schedule.total_steps) == (384, 200)
    assert (c.rollout.student.temperature, c.rollout.student.top_p) == (1.0, 1.0)
    assert c.rollout.student.max_new_tokens == 12_288 and c.rollout.max_prompt_tokens == 4_096
    assert (c.curation.tier1_cap, c.curation.tier2_cap) == (2_800, 1_400)
    assert (c.model.min_pixels, c.model.max_pixels) == (256 * 32 * 32, 1280 * 32 * 32)
    e = c.eval.sampling
    assert (e.temperature, e.top_p, e.top_k, e.min_p, e.presence_penalty) == (0.6, 0.95, 20, 0.0, 1.5)
    assert e.max_new_tokens == 12_288
    assert c.model.trust_remote_code is False


def test_derived_counts_of_algorithm_1():
    c = Config()
    assert c.replay_count == 96  # 0.25 * 384
    assert c.aug_cap == 96
    assert replace(c, **{"zppo.method": "grpo"}).replay_count == 0


def test_method_switches():
    # every row of the paper's Tabs. 1, 2 and 4, in the paper's row order
    assert list(METHODS) == [
        "off_distill", "off_distill_replay", "on_distill", "on_distill_replay", "grpo", "grpo_replay",
        "grpo_both", "grpo_replay_hint", "grpo_replay_prefix", "grpo_replay_bcq", "grpo_replay_ncq", "zppo",
    ]
    assert list(METHOD_LABELS) == ["base", *METHODS]
    assert [METHOD_LABELS[m] for m in METHODS][:4] == ["+Off-Distill", "+Off-Distill†", "+On-Distill", "+On-Distill†"]
    assert METHOD_LABELS["grpo_replay_hint"] == "+GRPO†+Hint" and METHOD_LABELS["grpo_replay_prefix"] == "+GRPO†+Prefix"
    assert Config().pipeline.methods == list(METHODS)  # the paper sweep names every row
    for name, distill, guidance, replay in [
        ("off_distill", "off", "", False), ("off_distill_replay", "off", "", True), ("on_distill", "on", "", False),
        ("on_distill_replay", "on", "", True), ("grpo_replay_hint", "", "hint", True),
        ("grpo_replay_prefix", "", "prefix", True), ("zppo", "", "", True),
    ]:
        z = replace(Config(), **{"zppo.method": name}).zppo
        assert (z.distill, z.guidance, z.use_replay) == (distill, guidance, replay), name
        assert not (distill or guidance) or not (z.use_bcq or z.use_ncq)
    assert replace(Config(), **{"zppo.method": "off_distill_replay"}).replay_count == 96  # rho_replay 0.25
    c = replace(Config(), **{"zppo.method": "grpo_replay_ncq"})
    assert (c.zppo.use_replay, c.zppo.use_bcq, c.zppo.use_ncq) == (True, False, True)
    c = replace(Config(), **{"zppo.method": "grpo_both"})
    assert (c.zppo.use_replay, c.zppo.use_bcq, c.zppo.use_ncq) == (False, True, True)


def test_unknown_keys_are_rejected_by_name(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("zppo:\n  tua: 0.4\n")
    with pytest.raises(ConfigError, match=r"zppo\.tua"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"nonsense"):
        config_from_dict({"nonsense": 1})


def test_type_and_value_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"algo\.iterations"):
        config_from_dict({"algo": {"iterations": "four"}})
    with pytest.raises(ConfigError, match=r"zppo\.method"):
        config_from_dict({"zppo": {"method": "dpo"}})


def test_partial_yaml_keeps_paper_defaults(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("rollout:\n  student:\n    max_new_tokens: 64\n")
    c = load_config(p)
    assert c.rollout.student.max_new_tokens == 64
    assert c.rollout.student.temperature == 1.0  # untouched sibling keeps its default
    assert c.rollout.teacher.max_new_tokens == 12_288


def test_paper_yaml_mirrors_every_default():
    """configs/paper.yaml is the full mirror of the dataclass defaults, generated with their help."""
    from zppo_core.config.__main__ import HEADER
    from zppo_core.config.field_help import commented_yaml

    text = (ROOT / "configs" / "paper.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert config_from_dict(data).to_dict() == Config().to_dict()
    assert data == yaml.safe_load(dump_config(Config()))
    assert text == HEADER + "\n" + commented_yaml(Config()), "regenerate: python -m zppo_core.config > configs/paper.yaml"


def test_every_config_field_has_help():
    from zppo_core.config.field_help import missing_help

    assert missing_help(Config()) == []


def test_field_help_reads_the_comment_above_else_the_one_at_the_end_of_the_line():
    from dataclasses import dataclass, field

    from zppo_core.config.field_help import commented_yaml, field_help

    @dataclass
    class Inner:
        """What inner holds.

        More detail that is not the help."""

        k: int = 3

    @dataclass
    class Demo:
        #: first line
        #: second line
        a: int = 1
        b: str = "x"  # at the end
        # a plain comment is not help
        c: float = 0.5
        inner: Inner = field(default_factory=Inner)

    assert field_help(Demo) == {"a": "first line second line", "b": "at the end", "c": "", "inner": "What inner holds."}
    assert commented_yaml(Demo()) == ("# first line second line\na: 1\n# at the end\nb: x\nc: 0.5\n\n"
                                      "# What inner holds.\ninner:\n  k: 3\n")


def test_every_yaml_under_configs_loads():
    for p in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(p)  # raises on unknown keys


def test_hash_is_stable_and_sensitive():
    a, b = Config(), Config()
    assert a.hash() == b.hash()
    assert replace(a, **{"zppo.tau": 0.4}).hash() != a.hash()
    flat = a.flatten()
    assert flat["zppo.tau"] == 0.5 and flat["rollout.student.temperature"] == 1.0


def test_set_overrides_parse_yaml_values_and_reject_malformed_items():
    from zppo_core.config import parse_overrides

    assert parse_overrides(["algo.iterations=1", "eval.benchmarks=[AI2D, MMLU]", "model.student=a=b"]) == {
        "algo.iterations": 1, "eval.benchmarks": ["AI2D", "MMLU"], "model.student": "a=b"}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["algo.iterations"])
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_overrides(["eval.benchmarks=[AI2D"])


def _literal_fields(obj, prefix=""):
    from dataclasses import fields, is_dataclass
    from typing import Literal, get_args, get_origin, get_type_hints

    hints = get_type_hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            yield from _literal_fields(value, f"{prefix}{f.name}.")
        elif get_origin(hints[f.name]) is Literal:
            yield prefix + f.name, get_args(hints[f.name])


def test_every_choice_field_refuses_other_values_by_name():
    found = dict(_literal_fields(Config()))
    assert found["model.dtype"] == ("bfloat16", "float16", "float32") and "cluster.serve_on" in found
    assert len(found) == 20  # every str/int field with a fixed set of values is typed Literal
    for key, allowed in found.items():
        bad = 7 if isinstance(allowed[0], int) else "nope"
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: {bad!r} not in "):
            replace(Config(), **{key: bad})
    with pytest.raises(ConfigError, match=r"^data\.toy_kind: 'x' not in ''\|arithmetic\|fixed\|miniature$"):
        replace(Config(), **{"data.toy_kind": "x"})
    with pytest.raises(ConfigError, match=r"^model\.vllm_sleep_level: '1' not in 0\|1$"):  # YAML "1" is a string
        replace(Config(), **{"model.vllm_sleep_level": "1"})
