"""Evaluation suite: the paper's 31 benchmarks (16 VLM, 10 LLM, 5 Video) plus three offline
families, scored as in arXiv 2606.18216 App. B.2.

Layout: :mod:`eval.registry` / :mod:`eval.suite` / :mod:`eval.offline` (entries),
:mod:`eval.fields` / :mod:`eval.adapters` / :mod:`eval.loaders` (row -> :class:`eval.items.EvalItem`),
:mod:`eval.prompting` (closer, options, pixel budget), :mod:`eval.scorers` /
:mod:`eval.metrics_det` / :mod:`eval.ocrbench_v2` / :mod:`eval.teds` (rule part via
:mod:`zppo_core.grading`; official metrics vs ours: ``eval/README.md``), :mod:`eval.judges` /
:mod:`eval.judge_prompts` (shared + benchmark judges), :mod:`eval.video` (frame rule),
:mod:`eval.runner` (``evaluate``), :mod:`eval.report` (``family_table``), :mod:`eval.cli`.
No Prefect / MLflow here: results are return values and files.
"""
