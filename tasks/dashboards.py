"""Per-training-run dashboards: PNG figures and one HTML page that opens offline (figures embedded
as data URIs, inline CSS), logged under ``dashboards/`` of the run; the candidate-match audit
files (``bcq_debug.jsonl`` / ``ncq_debug.jsonl``) go under ``audit/``.

Views (paper §4.3, App. F): reward by group kind; buffer size; Fig. 4 (graduated / admitted by
entry-accuracy bin over steps); Fig. 23 (fate of entries that left the buffer); entropy with the
positive-advantage and dual-clip fractions (F.2); candidate-match rates pooled over steps (F.7).
The series come from :mod:`zppo_core.dynamics` (pure); this module only draws and logs.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Mapping, Sequence

from tasks import plots
from tasks.tracking import read_jsonl
from zppo_core.dynamics import bin_curves, buffer_fates, cumulative_match_rates

plt = plots.plt
AUDIT_FILES = ("bcq_debug.jsonl", "ncq_debug.jsonl")
REWARD_BY_KIND = ("reward/plain_mean", "reward/new_mean", "reward/replay_mean", "reward/bcq_mean", "reward/ncq_mean")
POLICY_KEYS = ("train/entropy", "train/pos_adv_frac", "train/dual_clip_frac")
Rows = Sequence[Mapping[str, Any]]


def _line_panel(ax: Any, rows: Rows, keys: Sequence[str], title: str) -> None:
    for k in keys:
        xs, ys = plots._series(rows, k)
        if xs:
            ax.plot(xs, ys, marker="o", markersize=3, label=k.split("/", 1)[1])
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="x-small")


def _fig(n: int, title: str) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 3.3), squeeze=False)
    fig.suptitle(title)
    return fig, list(axes[0])


def rewards_and_buffer(rows: Rows) -> Any:
    fig, (a, b) = _fig(2, "Rewards by group kind and replay buffer size")
    _line_panel(a, rows, REWARD_BY_KIND, "mean reward by kind")
    _line_panel(b, rows, ("buffer/size",), "buffer size")
    fig.tight_layout()
    return fig


def fig4_bins(rows: Rows) -> Any:
    """Paper Fig. 4: cumulative graduated / admitted per entry-accuracy bin over steps."""
    fig, (a, b) = _fig(2, "Replay buffer by entry accuracy (paper Fig. 4)")
    for bin_, c in bin_curves(rows).items():
        a.plot(c.steps, [100 * f for f in c.graduated_frac], marker="o", markersize=3, label=f"acc {bin_}")
        b.plot(c.steps, c.admitted, linestyle="--", label=f"admitted {bin_}")
        b.plot(c.steps, c.graduated, label=f"graduated {bin_}")
    a.set_title("graduated / admitted (%)")
    b.set_title("cumulative counts")
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def fig23_fates(rows: Rows) -> Any:
    """Paper Fig. 23: of the entries that left the buffer, graduated vs evicted, per bin."""
    fates = buffer_fates(rows)
    names = list(fates)
    fig, (ax,) = _fig(1, "Fate of entries that left the buffer (paper Fig. 23)")
    grad = [fates[n]["graduated"] for n in names]
    ev = [fates[n]["evicted"] for n in names]
    ax.bar(names, grad, label="graduated")
    ax.bar(names, ev, bottom=grad, label="evicted")
    for i, n in enumerate(names):
        ax.annotate(f"{100 * fates[n]['graduated_share']:.0f}% grad", (i, grad[i] + ev[i]), ha="center",
                    fontsize="x-small", va="bottom")
    ax.set_xlabel("entry accuracy bin")
    ax.set_ylabel("entries")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def policy_and_audit(rows: Rows) -> Any:
    fig, (a, b) = _fig(2, "Policy entropy (F.2/F.3) and candidate-match rates (F.7)")
    _line_panel(a, rows, POLICY_KEYS, "entropy (nats/token) and fractions")
    for name, (xs, ys) in cumulative_match_rates(rows).items():
        if xs:
            b.plot(xs, ys, marker="o", markersize=3, label=name)
    b.set_title("pooled over steps so far")
    b.set_xlabel("step")
    b.set_ylim(-0.02, 1.02)
    b.grid(alpha=0.3)
    if b.lines:
        b.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


FIGURES = {"rewards_buffer.png": rewards_and_buffer, "fig4_entry_accuracy.png": fig4_bins,
           "fig23_buffer_fates.png": fig23_fates, "entropy_candidate_match.png": policy_and_audit}


def _summary_rows(rows: Rows) -> list[tuple[str, str]]:
    fates = buffer_fates(rows)
    out = [(f"bin {b}: graduated / admitted",
            f"{v['graduated']:.0f} / {v['admitted']:.0f} ({100 * v['graduated'] / v['admitted']:.0f}%)"
            if v["admitted"] else f"{v['graduated']:.0f} / 0") for b, v in fates.items()]
    if "all" in fates:
        a = fates["all"]
        out.append(("left the buffer: graduated / evicted",
                    f"{a['graduated']:.0f} / {a['evicted']:.0f} ({100 * a['graduated_share']:.1f}% graduated)"))
    for name, (_, ys) in cumulative_match_rates(rows).items():
        if ys:
            out.append((f"{name} (pooled)", f"{100 * ys[-1]:.1f}%"))
    return out


def write_dashboards(rows: Rows, out_dir: str | Path, title: str) -> list[Path]:
    """PNG files plus ``index.html`` (self-contained) under ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files, imgs = [], []
    for name, make in FIGURES.items():
        fig = make(rows)
        path = out / name
        fig.savefig(path, dpi=100)
        plots.close(fig)
        files.append(path)
        data = base64.b64encode(path.read_bytes()).decode()
        imgs.append(f'<h2>{html.escape(name[:-4])}</h2><img alt="{name}" src="data:image/png;base64,{data}">')
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in _summary_rows(rows))
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:1.5em}img{max-width:100%}td{border:1px solid #bbb;padding:2px 6px}"
            "table{border-collapse:collapse}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{len(rows)} steps</p><table>{table}</table>{''.join(imgs)}</body></html>")
    index = out / "index.html"
    index.write_text(page)
    return [*files, index]


def log_training_dashboards(tracker: Any, run_id: str, train_dir: str | Path, title: str) -> list[Path]:
    """Build the dashboards of ``<train_dir>/metrics.jsonl`` and log them (and the audit files)."""
    train_dir = Path(train_dir)
    rows = read_jsonl(train_dir / "metrics.jsonl")
    if not rows:
        return []
    files = write_dashboards(rows, train_dir / "dashboards", title)
    for f in files:
        tracker.log_artifact(run_id, f, "dashboards")
    for name in AUDIT_FILES:
        if (train_dir / name).exists():
            tracker.log_artifact(run_id, train_dir / name, "audit")
            files.append(train_dir / name)
    return files


__all__ = ["AUDIT_FILES", "FIGURES", "log_training_dashboards", "write_dashboards"]
