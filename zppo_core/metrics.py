"""The one documented table of every metric key the project logs.

Each key maps to a :class:`MetricSpec` (meaning, unit). A ``<name>`` segment is a template
(``buffer/admissions/<bin>``: one key per entry-accuracy bin); :func:`template_of` maps a
concrete key to its entry. The trainer returns and appends to ``metrics.jsonl`` exactly the
keys of :data:`TRAIN_METRICS` (templates instantiated, plus ``step``); ``tasks/`` forwards
them to MLflow unchanged (keys only use ``[A-Za-z0-9_/.-]``, which MLflow accepts).
Evaluation / curation keys are added to :data:`METRICS` by their owners.

Pure module: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """Meaning and unit of one metric key."""

    meaning: str
    unit: str


#: Metrics of one training (rollout) step, returned by the trainer as a flat dict.
TRAIN_METRICS: dict[str, MetricSpec] = {
    "step": MetricSpec("rollout step index, 1-based (one entry of Algorithm 1's outer loop)", "count"),
    # -- rewards ------------------------------------------------------------------------
    "reward/plain_mean": MetricSpec("mean reward of plain rollouts (new + replayed questions)", "fraction 0-1"),
    "reward/new_mean": MetricSpec("mean reward of plain rollouts on new questions only", "fraction 0-1"),
    "reward/replay_mean": MetricSpec("mean reward of plain rollouts on replayed questions (0 when none)", "fraction 0-1"),
    "reward/bcq_mean": MetricSpec("mean reward of BCQ rollouts (0 when no BCQ group)", "fraction 0-1"),
    "reward/ncq_mean": MetricSpec("mean reward of NCQ rollouts (0 when no NCQ group)", "fraction 0-1"),
    "reward/all_mean": MetricSpec("mean reward over every rollout that enters the gradient", "fraction 0-1"),
    # -- ZPD selection ------------------------------------------------------------------
    "zppo/hard_frac": MetricSpec("fraction of plain questions with mean plain reward < tau", "fraction 0-1"),
    "zppo/hard_count": MetricSpec("number of hard plain questions (new + replayed)", "count"),
    "zppo/bcq_count": MetricSpec("BCQ groups built this step (after the rho_aug cap)", "count"),
    "zppo/ncq_count": MetricSpec("NCQ groups built this step (after the rho_aug cap)", "count"),
    "zppo/teacher_rollouts": MetricSpec("teacher rollouts drawn this step (G_T per teacher-visited question: BCQ pool, Off-Distill, Hint/Prefix)", "count"),
    "zppo/teacher_pass_rate": MetricSpec("fraction of teacher rollouts graded correct (0 when none drawn)", "fraction 0-1"),
    "zppo/compressions": MetricSpec("candidate compressions requested from the teacher backend", "count"),
    "zppo/compression_fallbacks": MetricSpec(
        "compressions that returned nothing usable (e.g. recorded teacher), raw candidate text used instead", "count"
    ),
    "reward/judged": MetricSpec(
        "rollouts rewarded by the LLM judge (rows with reward_type 'judge', zppo.judge_rewards on)", "count"
    ),
    "reward/judge_malformed": MetricSpec("judged rollouts whose verdict was malformed (scored 0)", "count"),
    # -- groups / rollouts --------------------------------------------------------------
    "rollout/new_questions": MetricSpec("new questions this step on all ranks (|X_new|)", "count"),
    "rollout/replay_questions": MetricSpec("questions drawn from the replay buffer this step", "count"),
    "rollout/image_load_skipped": MetricSpec(
        "questions (new + replayed, all ranks) dropped this step because their image could not be loaded "
        "(unreadable, truncated, over PIL's pixel limit); each is logged with its row id and image path",
        "count",
    ),
    "rollout/groups": MetricSpec("rollout groups (plain + BCQ + NCQ) in the gradient batch", "count"),
    "rollout/sequences": MetricSpec("sampled student sequences in the gradient batch", "count"),
    "rollout/trivial_group_frac": MetricSpec("fraction of groups whose rewards are all equal (zero advantage)", "fraction 0-1"),
    "rollout/response_len_mean": MetricSpec("mean sampled response length", "tokens"),
    "rollout/truncated_frac": MetricSpec("fraction of responses stopped by max_new_tokens", "fraction 0-1"),
    # -- replay buffer ------------------------------------------------------------------
    "buffer/size": MetricSpec("replay buffer size after this step's update", "count"),
    "buffer/admissions": MetricSpec("questions newly admitted to the buffer this step", "count"),
    "buffer/graduations": MetricSpec("buffered questions removed this step because mean plain reward >= tau", "count"),
    "buffer/evictions": MetricSpec("questions evicted FIFO this step because the buffer was over capacity", "count"),
    "buffer/admissions/<bin>": MetricSpec(
        "admissions this step whose entry accuracy is <bin> (f'{k/G_S:.3f}' for every k/G_S < tau, e.g. "
        "0.000, 0.125, 0.250, 0.375 for G_S = 8; 0 when none); cumulative over steps = paper Fig. 4's denominator",
        "count",
    ),
    "buffer/graduations/<bin>": MetricSpec(
        "graduations this step of entries admitted with entry accuracy <bin> (paper Fig. 4 numerator, Fig. 23)", "count"
    ),
    "buffer/evictions/<bin>": MetricSpec(
        "FIFO evictions this step of entries admitted with entry accuracy <bin> (paper Fig. 23)", "count"
    ),
    # -- update -------------------------------------------------------------------------
    "train/loss": MetricSpec("clipped token-level policy loss, mean over the I mini-batch updates (distillation rows: the JSD loss of the one update)", "nats/token"),
    "train/clip_frac": MetricSpec("fraction of response tokens whose ratio was clipped, mean over updates", "fraction 0-1"),
    "train/dual_clip_frac": MetricSpec(
        "fraction of response tokens where the dual clip binds (A < 0 and ratio > dual_clip), mean over updates",
        "fraction 0-1",
    ),
    "train/entropy": MetricSpec(
        "policy entropy -sum_v p log p (at the sampling temperature) averaged over the response tokens of the update, "
        "measured by the pre-update (old-logprob) pass on all ranks (paper F.2/F.3 actor entropy)",
        "nats/token",
    ),
    "train/pos_adv_frac": MetricSpec(
        "fraction of the step's rollouts with a positive advantage, all ranks (paper F.2)", "fraction 0-1"
    ),
    "train/approx_kl": MetricSpec("k3 estimate of KL(old||new), mean(ratio - 1 - log ratio) over response tokens, mean over updates", "nats/token"),
    "train/grad_norm": MetricSpec("global gradient L2 norm before clipping, mean over updates", "L2 norm"),
    "train/grad_norm_max": MetricSpec("largest pre-clip gradient norm of the I updates", "L2 norm"),
    "train/lr": MetricSpec("learning rate of the last update", "1/step"),
    "train/updates": MetricSpec("optimizer steps taken this rollout step (= algo.iterations; distillation rows: 1, or 0 when the batch is empty)", "count"),
    "train/adv_abs_mean": MetricSpec("mean |advantage| over sequences", "advantage units"),
    "train/response_tokens": MetricSpec("response tokens that entered the loss on all ranks", "tokens"),
    "train/sampler_logprob_diff": MetricSpec(
        "mean |sampler logprob - trainer logprob| over response tokens: the health check of the weight sync "
        "(model.weight_sync memory or disk) -- near 0 (bf16 noise) when the engine holds the trainer's weights, "
        "a jump means a missed/wrong sync (0 when the backend gives no logprobs)",
        "nats/token",
    ),
    # -- baseline rows (0 for the methods they do not apply to) ---------------------------
    "distill/jsd": MetricSpec(
        "Off-/On-Distill: mean per-token Jensen-Shannon divergence (full vocabulary) between student and "
        "teacher next-token distributions over the tokens of this step's update, all ranks", "nats/token"),
    "distill/teacher_correct_frac": MetricSpec(
        "Off-Distill: fraction of the step's G_T teacher rollouts graded correct (the loss runs on those; 0 for "
        "other methods)", "fraction 0-1"),
    "distill/tokens": MetricSpec("Off-/On-Distill: response tokens in the JSD loss of this step, all ranks", "tokens"),
    "hint/groups": MetricSpec("GRPO†+Hint: hint groups (x ‖ <hint>h</hint>, G_S rollouts each) built this step", "count"),
    "hint/reward_mean": MetricSpec("GRPO†+Hint: mean reward of the hint-group rollouts (0 when none)", "fraction 0-1"),
    "hint/leaks_dropped": MetricSpec(
        "GRPO†+Hint: teacher hints dropped because they state the final answer (a \\boxed{}, 'the answer is "
        "<gold>', or the gold as their conclusion; zppo_core.guidance.hint_leak)", "count"),
    "hint/dropped_frac/boxed": MetricSpec(
        "GRPO†+Hint: share of the step's teacher hints (with text) dropped for a \\boxed{} / \\fbox{}", "fraction 0-1"),
    "hint/dropped_frac/answer_stated": MetricSpec(
        "GRPO†+Hint: share of the step's teacher hints (with text) dropped for stating the gold ('the answer is X', "
        "'answer: X', 'choose X')", "fraction 0-1"),
    "hint/dropped_frac/conclusion": MetricSpec(
        "GRPO†+Hint: share of the step's teacher hints (with text) dropped for ending on the gold ('= X', 'is X', "
        "a last sentence that is X)", "fraction 0-1"),
    "hint/unavailable": MetricSpec(
        "GRPO†+Hint: hint requests that returned no text (e.g. a recorded teacher has no hint), no group", "count"),
    "prefix/groups": MetricSpec("GRPO†+Prefix: groups sampled from a forced teacher prefix this step", "count"),
    "prefix/reward_mean": MetricSpec(
        "GRPO†+Prefix: mean reward of the prefix groups' trajectories (prefix + sampled continuation)", "fraction 0-1"),
    "prefix/prefix_tokens_mean": MetricSpec(
        "GRPO†+Prefix: mean forced-prefix length, floor(alpha L) of the teacher rollout (masked from the loss)",
        "tokens"),
    # -- candidate-match audit (paper F.7, zppo_core.audit) ----------------------------------
    "audit/bcq_rollouts": MetricSpec("student rollouts on BCQ prompts this step", "count"),
    "audit/bcq_correct": MetricSpec("BCQ rollouts graded correct", "count"),
    "audit/bcq_accuracy": MetricSpec("BCQ accuracy: correct / BCQ rollouts (0 when none)", "fraction 0-1"),
    "audit/bcq_match_pos_count": MetricSpec(
        "correct BCQ rollouts whose boxed answer equals the teacher-correct candidate's (F.7 normalisation)", "count"
    ),
    "audit/bcq_match_pos": MetricSpec("BCQ match-pos: bcq_match_pos_count / correct BCQ rollouts (0 when none)", "fraction 0-1"),
    "audit/bcq_match_neg_count": MetricSpec(
        "wrong BCQ rollouts whose boxed answer equals the student-wrong candidate's (F.7 normalisation)", "count"
    ),
    "audit/bcq_match_neg": MetricSpec("BCQ match-neg: bcq_match_neg_count / wrong BCQ rollouts (0 when none)", "fraction 0-1"),
    "audit/ncq_rollouts": MetricSpec("student rollouts on NCQ prompts this step", "count"),
    "audit/ncq_correct": MetricSpec("NCQ rollouts graded correct", "count"),
    "audit/ncq_accuracy": MetricSpec("NCQ accuracy: correct / NCQ rollouts (0 when none)", "fraction 0-1"),
    "audit/ncq_match_neg_count": MetricSpec(
        "NCQ rollouts whose boxed answer repeats one of the listed wrong answers (F.7 normalisation)", "count"
    ),
    "audit/ncq_match_neg": MetricSpec("NCQ match-neg: ncq_match_neg_count / NCQ rollouts (0 when none)", "fraction 0-1"),
    # -- performance ----------------------------------------------------------------------
    "perf/step_time_s": MetricSpec("wall time of the whole rollout step", "seconds"),
    "perf/rollout_time_s": MetricSpec("wall time of student generation (plain + BCQ/NCQ)", "seconds"),
    "perf/teacher_time_s": MetricSpec("wall time of teacher rollouts and candidate compression", "seconds"),
    "perf/update_time_s": MetricSpec("wall time of old-logprob recomputation plus the I updates", "seconds"),
    "perf/tokens_per_s": MetricSpec("(prompt + response tokens through the update) / step time, all ranks", "tokens/second"),
    "perf/gen_tokens_per_s": MetricSpec("student response tokens generated / rollout time", "tokens/second"),
}

#: Metrics the pipeline (``tasks/``) logs for evaluation and curation. ``<benchmark>`` is a registry
#: abbreviation (e.g. ``AI2D``, ``OfflineVLM``), ``<family>`` one of VLM / LLM / Video, ``<count>`` a
#: key path of ``run_curation``'s ``counts`` dict (nested keys joined by ``/``).
PIPELINE_METRICS: dict[str, MetricSpec] = {
    "eval/acc/<benchmark>": MetricSpec(
        "accuracy of a (student, method, seed) training run or a base run on one benchmark; one section "
        "`eval/acc` in the UI, one column per benchmark in the compare view", "percent 0-100"
    ),
    "summary/<student>/<method>/<family>": MetricSpec(
        "pipeline parent run: mean accuracy over the family's benchmarks and seeds of (student, method) "
        "(`summary.md`'s cell; method `base` = the untrained student)", "percent 0-100"),
    "summary/<student>/<method>/delta/<family>": MetricSpec(
        "pipeline parent run: Δ vs Base of that cell (its interval is in summary.json)", "accuracy points"),
    "eval/family_avg/<family>": MetricSpec(
        "mean accuracy over the family's evaluated (not skipped) benchmarks, on the same runs", "percent 0-100"
    ),
    "accuracy": MetricSpec("accuracy on the benchmark of a nested `eval <benchmark>` run", "percent 0-100"),
    "n": MetricSpec("items scored in a nested `eval <benchmark>` run", "count"),
    "curation/<count>": MetricSpec("row counts of the curation report (per stage / source / tier)", "count"),
}

#: Every metric key of the project (training keys above; eval/curation keys added by their owners).
METRICS: dict[str, MetricSpec] = dict(TRAIN_METRICS)
METRICS.update(PIPELINE_METRICS)


def template_of(key: str) -> str | None:
    """The documented key ``key`` is an instance of: itself, or a template whose ``<name>``
    segments match any one segment (``buffer/admissions/0.125`` -> ``buffer/admissions/<bin>``)."""
    if key in METRICS:
        return key
    parts = key.split("/")
    for tmpl in METRICS:
        t = tmpl.split("/")
        if len(t) == len(parts) and "<" in tmpl and all(
            a == b or (a.startswith("<") and a.endswith(">") and b) for a, b in zip(t, parts)
        ):
            return tmpl
    return None


def describe(key: str) -> MetricSpec:
    """Spec of ``key`` (or of the template it instantiates); ``KeyError`` naming it when undocumented."""
    tmpl = template_of(key)
    if tmpl is None:
        raise KeyError(f"metric key {key!r} is not documented in zppo_core.metrics")
    return METRICS[tmpl]


def markdown_table(keys: list[str] | None = None) -> str:
    """The table as Markdown (``| key | meaning | unit |``), for docs and run reports."""
    rows = ["| key | meaning | unit |", "|---|---|---|"]
    for k in keys if keys is not None else list(METRICS):
        spec = describe(k)
        rows.append(f"| `{k}` | {spec.meaning} | {spec.unit} |")
    return "\n".join(rows)


__all__ = ["METRICS", "PIPELINE_METRICS", "TRAIN_METRICS", "MetricSpec", "describe", "markdown_table", "template_of"]
