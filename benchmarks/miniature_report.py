"""Tables and MLflow logging of the miniature comparison (used by ``benchmarks/miniature.py``).

Intervals (:mod:`eval.stats`): with k >= 2 seeds, the Student-t 95 % interval of the k per-seed
accuracies (and of the k paired per-seed differences); with one seed, the percentile bootstrap
over test items (paired by item for differences).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.stats import Interval, bootstrap_interval, paired_bootstrap_diff, t_interval
from zppo_core.config import METHOD_LABELS

IN_FAMILY = "MiniAdd"
#: the protocol's primary comparison (README): ZPPO against GRPO† on the in-family split
PRIMARY = ("zppo", "grpo_replay")


def _by(results: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for r in results:
        out.setdefault(r["method"], {})[int(r["seed"])] = r
    return out


def accuracy_interval(runs: dict[int, dict[str, Any]], bench: str) -> Interval:
    if len(runs) == 1:
        (only,) = runs.values()
        return bootstrap_interval(list(only["eval"][bench]["scores"].values()))
    return t_interval([r["eval"][bench]["accuracy"] for r in runs.values()])


def diff_interval(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]], bench: str) -> Interval:
    """a - b over the seeds both have (paired by seed), or by item with one common seed."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) == 1:
        sa, sb = a[seeds[0]]["eval"][bench]["scores"], b[seeds[0]]["eval"][bench]["scores"]
        ids = sorted(set(sa) & set(sb))
        return paired_bootstrap_diff([sa[i] for i in ids], [sb[i] for i in ids])
    return t_interval([a[s]["eval"][bench]["accuracy"] - b[s]["eval"][bench]["accuracy"] for s in seeds])


def _label(m: str) -> str:
    return METHOD_LABELS.get(m, m)


def build_report(results: list[dict[str, Any]], gate: dict[str, Any] | None, meta: dict[str, Any]) -> dict[str, Any]:
    """``{"json": ..., "markdown": ...}``: accuracy table, differences, gate, run facts."""
    by = _by(results)
    benches = sorted({b for r in results for b in r["eval"]}, key=lambda b: (b != IN_FAMILY, b))
    methods = ["base"] + [m for m in by if m != "base"]
    table = {m: {b: accuracy_interval(by[m], b) for b in benches} for m in methods if m in by}
    diffs: dict[str, dict[str, Interval]] = {}
    for m in methods:
        if m != "base" and m in by and "base" in by:
            diffs[f"{m} - base"] = {b: diff_interval(by[m], by["base"], b) for b in benches}
    if all(x in by for x in PRIMARY):
        diffs["zppo - grpo_replay"] = {b: diff_interval(by[PRIMARY[0]], by[PRIMARY[1]], b) for b in benches}
    lines = ["| Method | " + " | ".join(benches) + " |", "|---|" + "---|" * len(benches)]
    lines += [f"| {_label(m)} | " + " | ".join(table[m][b].fmt() for b in benches) + " |" for m in table]
    dl = ["| Difference | " + " | ".join(benches) + " |", "|---|" + "---|" * len(benches)]
    dl += [f"| {k} | " + " | ".join(v[b].fmt() + (" *" if v[b].excludes_zero else "") for b in benches) + " |"
           for k, v in diffs.items()]
    n_seeds = len(meta.get("seeds", []))
    how = "t over seeds" if n_seeds >= 2 else "bootstrap over items (one seed)"
    md = [f"## Miniature comparison ({meta.get('steps')} steps, seeds {meta.get('seeds')}, "
          f"{meta.get('eval_size')} items per family)", "",
          f"Accuracy (%), mean [95 % interval, {how}]. MiniAdd is the in-family test split; "
          "MiniMul and MiniSub are held-out families.", "", *lines, "",
          "Differences (percentage points); * = the 95 % interval excludes zero.", "", *dl]
    if gate:
        md += ["", f"Reading gate: plain {gate['plain_on_bcq_items']:.3f} vs BCQ {gate['bcq']:.3f} on "
                   f"{gate['n_bcq']} hard in-family items (seed {gate.get('seed', '?')}) -> "
                   f"{'passed' if gate['passed'] else 'NOT met'}"]
    stamp = meta.get("stamp") or {}
    if stamp:
        md += ["", "Made by: " + ", ".join(f"{k} {stamp[k]}" for k in ("student", "teacher", "code", "config")
                                             if k in stamp)]
    js = {"meta": meta, "gate": gate,
          "accuracy": {m: {b: vars(iv) for b, iv in row.items()} for m, row in table.items()},
          "differences": {k: {b: vars(iv) for b, iv in v.items()} for k, v in diffs.items()},
          "per_seed": {m: {str(s): {b: r["eval"][b]["accuracy"] for b in r["eval"]} for s, r in runs.items()}
                       for m, runs in by.items()}}
    return {"json": js, "markdown": "\n".join(md) + "\n"}


def learning_curves(results: list[dict[str, Any]], path: Path) -> Path | None:
    """Plot plain / BCQ / NCQ reward and buffer size per step, one line per method (seed mean)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = ("reward/plain_mean", "reward/bcq_mean", "reward/ncq_mean", "buffer/size")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3))
    for m, runs in _by(results).items():
        rows = [r["steps"] for r in runs.values() if r["steps"]]
        if not rows:
            continue
        n = min(len(x) for x in rows)
        for ax, k in zip(axes, keys):
            ax.plot(range(1, n + 1), [sum(x[i][k] for x in rows) / len(rows) for i in range(n)], label=_label(m))
            ax.set_title(k)
            ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def log_mlflow(out: Path, cfg: Any, results: list[dict[str, Any]], report: dict[str, Any]) -> str:
    """One parent run ``miniature`` with a nested run per (method, seed): step metrics
    (learning curves), accuracy per benchmark; the tables, gate and curves as artifacts."""
    from tasks.tracking import Tracker, artifact_root, default_tracking_uri

    uri = default_tracking_uri(out)
    tr = Tracker(uri, "miniature", artifact_root(out))
    parent = tr.open_run("miniature", "miniature comparison", {"stage": "miniature", "config_hash": cfg.hash()})
    tr.log_params(parent, cfg.flatten())
    for r in results:
        key = f"miniature/{r['method']}/seed{r['seed']}"
        rid = tr.open_run(key, f"{_label(r['method'])} seed{r['seed']}",
                          {"method": r["method"], "seed": r["seed"], "stage": "miniature"}, parent_run_id=parent)
        tr.log_step_rows(rid, r["steps"])
        tr.log_summary(rid, {f"eval/{b}/accuracy": 100.0 * v["accuracy"] for b, v in r["eval"].items()})
        tr.finish(rid)
    curves = learning_curves(results, out / "learning_curves.png")
    for f in (out / "table.md", out / "results.json", out / "gate.json", curves):
        if f is not None and Path(f).exists():
            tr.log_artifact(parent, f)
    tr.finish(parent)
    return uri


__all__ = ["build_report", "diff_interval", "learning_curves", "log_mlflow"]
