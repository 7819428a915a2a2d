"""The result table lists every method with the paper's label, in the paper's row order."""

from __future__ import annotations

from eval.report import family_table, paper_order


def test_rows_follow_the_paper_order_whatever_the_sweep_order() -> None:
    sweep = ["zppo", "grpo_replay_prefix", "off_distill_replay", "grpo", "base", "grpo_replay_hint", "on_distill",
             "custom_row"]
    assert paper_order(sweep) == ["base", "off_distill_replay", "on_distill", "grpo", "grpo_replay_hint",
                                  "grpo_replay_prefix", "zppo", "custom_row"]
    res = {m: {"AIME25": {"accuracy": 10.0 + i, "skipped": None}} for i, m in enumerate(sweep)}
    table = family_table(res, paper_size="0.8B", families=("LLM",))
    labels = [ln.split(" | ")[0].lstrip("| ") for ln in table.splitlines()[4:]]
    assert labels == [
        "Base", "Base (paper 0.8B)", "+Off-Distill†", "+Off-Distill† (paper 0.8B)", "+On-Distill",
        "+On-Distill (paper 0.8B)",        "+GRPO", "+GRPO (paper 0.8B)", "+GRPO†+Hint", "+GRPO†+Prefix", "+ZPPO", "+ZPPO (paper 0.8B)", "custom_row",
    ]
    # the paper reports LLM numbers only for the † distillation rows (Tab. 2)
    assert "| +Off-Distill† (paper 0.8B) | 0.0 |" in table
    assert "| +On-Distill (paper 0.8B) | skip |" in table
