"""The one documented table of every metric key the project logs.

Each key maps to a :class:`MetricSpec` (meaning, unit). The trainer returns and appends to
``metrics.jsonl`` exactly the keys of :data:`TRAIN_METRICS` (plus ``step``); ``tasks/`` forwards
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
    "zppo/teacher_rollouts": MetricSpec("teacher rollouts drawn this step (G_T per teacher-visited question)", "count"),
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
    # -- update -------------------------------------------------------------------------
    "train/loss": MetricSpec("clipped token-level policy loss, mean over the I mini-batch updates", "nats/token"),
    "train/clip_frac": MetricSpec("fraction of response tokens whose ratio was clipped, mean over updates", "fraction 0-1"),
    "train/approx_kl": MetricSpec("k3 estimate of KL(old||new), mean(ratio - 1 - log ratio) over response tokens, mean over updates", "nats/token"),
    "train/grad_norm": MetricSpec("global gradient L2 norm before clipping, mean over updates", "L2 norm"),
    "train/grad_norm_max": MetricSpec("largest pre-clip gradient norm of the I updates", "L2 norm"),
    "train/lr": MetricSpec("learning rate of the last update", "1/step"),
    "train/updates": MetricSpec("optimizer steps taken this rollout step (= algo.iterations)", "count"),
    "train/adv_abs_mean": MetricSpec("mean |advantage| over sequences", "advantage units"),
    "train/response_tokens": MetricSpec("response tokens that entered the loss on all ranks", "tokens"),
    "train/sampler_logprob_diff": MetricSpec(
        "mean |sampler logprob - trainer logprob| over response tokens: the health check of the weight sync "
        "(model.weight_sync memory or disk) -- near 0 (bf16 noise) when the engine holds the trainer's weights, "
        "a jump means a missed/wrong sync (0 when the backend gives no logprobs)",
        "nats/token",
    ),
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
    "eval/<benchmark>/accuracy": MetricSpec(
        "accuracy of a (student, method) run on one benchmark (on the student x method run)", "percent 0-100"
    ),
    "eval/family/<family>/avg": MetricSpec(
        "mean accuracy over the family's evaluated (not skipped) benchmarks", "percent 0-100"
    ),
    "accuracy": MetricSpec("accuracy on the benchmark of a nested `eval <benchmark>` run", "percent 0-100"),
    "n": MetricSpec("items scored in a nested `eval <benchmark>` run", "count"),
    "curation/<count>": MetricSpec("row counts of the curation report (per stage / source / tier)", "count"),
}

#: Every metric key of the project (training keys above; eval/curation keys added by their owners).
METRICS: dict[str, MetricSpec] = dict(TRAIN_METRICS)
METRICS.update(PIPELINE_METRICS)


def describe(key: str) -> MetricSpec:
    """Spec of ``key``; raises ``KeyError`` naming the key when it is undocumented."""
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"metric key {key!r} is not documented in zppo_core.metrics") from None


def markdown_table(keys: list[str] | None = None) -> str:
    """The table as Markdown (``| key | meaning | unit |``), for docs and run reports."""
    rows = ["| key | meaning | unit |", "|---|---|---|"]
    for k in keys if keys is not None else list(METRICS):
        spec = describe(k)
        rows.append(f"| `{k}` | {spec.meaning} | {spec.unit} |")
    return "\n".join(rows)


__all__ = ["METRICS", "PIPELINE_METRICS", "TRAIN_METRICS", "MetricSpec", "describe", "markdown_table"]
