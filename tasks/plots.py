"""Figures a researcher would rather look at than read (matplotlib, Agg backend, no display).

* reward curves per method (``reward/*`` keys of metrics.jsonl over ``step``; several seeds of a
  method: their mean with a min-max band; integer step ticks),
* replay-buffer size / admissions / graduations / evictions over steps per method,
* accuracy by family per method (grouped bars, one figure per student).

Each function takes plain data and returns a ``matplotlib.figure.Figure`` (the caller saves or
logs it), so they run in tests without MLflow.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

REWARD_KEYS = ("reward/plain_mean", "reward/bcq_mean", "reward/ncq_mean", "reward/all_mean")
BUFFER_KEYS = ("buffer/size", "buffer/admissions", "buffer/graduations", "buffer/evictions")
_FIGSIZE_PER_PANEL = (4.2, 3.2)
#: the seed part of a run label (``/seed0``, ``/s0``)
_SEED_PART = re.compile(r"/(?:seed|s)\d+$")


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = [(int(r["step"]), float(r[key])) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def seed_groups(labels: Sequence[str]) -> dict[str, list[str]]:
    """Run labels grouped by everything but their seed: ``tiny/zppo/seed0``, ``tiny/zppo/seed1``
    -> ``{"tiny/zppo": [both]}``; a label without a seed part is its own group."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(_SEED_PART.sub("", label), []).append(label)
    return groups


def band(series: Sequence[tuple[list[int], list[float]]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps every series has, with the mean, min and max over the series at each of them."""
    common = sorted(set.intersection(*(set(xs) for xs, _ in series))) if series else []
    at = [dict(zip(xs, ys)) for xs, ys in series]
    vals = [[d[s] for d in at] for s in common]
    return common, [sum(v) / len(v) for v in vals], [min(v) for v in vals], [max(v) for v in vals]


def step_panels(runs: Mapping[str, Sequence[Mapping[str, Any]]], keys: Sequence[str], title: str) -> Figure:
    """One panel per key, one line per run label (e.g. ``tiny/zppo``); keys no run has are left out.

    Runs that differ only by seed are drawn as their mean with a shaded min-max band over the
    seeds (the legend says how many); the step axis has integer ticks.
    """
    present = [k for k in keys if any(_series(rows, k)[0] for rows in runs.values())]
    present = present or list(keys[:1])
    fig, axes = plt.subplots(1, len(present), figsize=(_FIGSIZE_PER_PANEL[0] * len(present), _FIGSIZE_PER_PANEL[1]),
                             squeeze=False)
    groups = seed_groups(list(runs))
    for ax, key in zip(axes[0], present):
        for name, members in groups.items():
            series = [s for s in (_series(runs[m], key) for m in members) if s[0]]
            if not series:
                continue
            if len(series) == 1:
                ax.plot(*series[0], marker="o", markersize=3, label=members[0] if len(members) == 1 else name)
                continue
            xs, mean, lo, hi = band(series)
            line, = ax.plot(xs, mean, marker="o", markersize=3, label=f"{name} (mean of {len(series)} seeds)")
            ax.fill_between(xs, lo, hi, alpha=0.2, color=line.get_color(), linewidth=0)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reward_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    return step_panels(runs, REWARD_KEYS, "Rewards over training steps")


def buffer_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    return step_panels(runs, BUFFER_KEYS, "Replay buffer over training steps")


def family_bars(acc: Mapping[str, Mapping[str, float]], title: str,
                intervals: Mapping[str, Mapping[str, tuple[float, float]]] | None = None) -> Figure:
    """Grouped bars: ``acc[method][family] -> accuracy`` (0-100); ``intervals[method][family]``
    = (low, high) draws an error bar (e.g. the 95 % interval over seeds)."""
    methods = list(acc)
    families = sorted({f for m in methods for f in acc[m]})
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(families) + 2), _FIGSIZE_PER_PANEL[1] + 0.6))
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        xs = [j + i * width for j in range(len(families))]
        ys = [acc[m].get(f, 0.0) for f in families]
        iv = (intervals or {}).get(m, {})
        err = None
        if iv:
            err = [[max(0.0, y - iv[f][0]) if f in iv else 0.0 for f, y in zip(families, ys)],
                   [max(0.0, iv[f][1] - y) if f in iv else 0.0 for f, y in zip(families, ys)]]
        bars = ax.bar(xs, ys, width, label=m, yerr=err, capsize=3 if err else 0)
        ax.bar_label(bars, fmt="%.1f", fontsize="x-small")
    ax.set_xticks([j + width * (len(methods) - 1) / 2 for j in range(len(families))], families)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)


__all__ = ["BUFFER_KEYS", "REWARD_KEYS", "band", "seed_groups", "buffer_curves", "close", "family_bars", "reward_curves", "step_panels"]
