"""The review's pictures: scores of every trial, best score against wall time, one slice per
searched key, learning curves and sample grids of the top trials, and the Lucic et al. study.

Example::

    exp = load_experiment("runs/quick")
    write_plots(exp, "runs/quick/plots", top=5)
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from gan_core.errors import GansearchError
from search.experiment import finite, local_checkpoint
from search.review import (
    Group,
    ReviewedExperiment,
    SearchedParam,
    _ns,
    best_of_n,
    fmt,
    lucic_groups,
    param_value,
    status_text,
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    from gan_core.io import _atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    _atomic_write_bytes(path, buf.getvalue())
    return path


STATUS_STYLE = {
    "completed": dict(color="tab:blue", marker="o"),
    "stopped": dict(color="tab:orange", marker="v"),
    "unfinished": dict(color="tab:gray", marker="s"),
    "diverged": dict(color="tab:red", marker="x"),
    "failed": dict(color="black", marker="x"),
}


def _ylabel(exp: ReviewedExperiment) -> str:
    return f"{exp.metric} ({'lower' if exp.mode == 'min' else 'higher'} is better)"


def _maybe_log_y(ax: Any, values: list[float]) -> None:
    v = [x for x in values if finite(x)]
    if v and min(v) > 0 and max(v) / min(v) > 20:
        ax.set_yscale("log")


def plot_scores(exp: ReviewedExperiment, path: Path) -> Path:
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.5))
    scored = [t for t in exp.trials if finite(t.score)]
    top = max((t.score for t in scored), default=1.0) if exp.mode == "min" else min((t.score for t in scored), default=0.0)
    for status, style in STATUS_STYLE.items():
        idx = [i for i, t in enumerate(exp.trials) if t.status == status]
        if not idx:
            continue
        xs = [i + 1 for i in idx]
        ys = [exp.trials[i].score if finite(exp.trials[i].score) else top for i in idx]
        label = {"stopped": "stopped early"}.get(status, status)
        if status in ("diverged", "failed"):
            label += " (no score; drawn at the top)"
        ax.scatter(xs, ys, label=label, **style)
    best = exp.best()
    if best is not None:
        i = exp.trials.index(best) + 1
        ax.scatter([i], [best.score], s=260, facecolors="none", edgecolors="gold", linewidths=2.5,
                   label=f"best: {best.trial_id}")
    _maybe_log_y(ax, [t.score for t in scored])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (in the order they started)")
    ax.set_ylabel(_ylabel(exp))
    ax.set_title(f"{exp.name}: best score of each trial")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_best_vs_time(exp: ReviewedExperiment, path: Path) -> Path:
    plt = _plt()
    reports = []
    for t in exp.trials:
        for r in t.results:
            when = r.get("reported_at") or r.get("timestamp")
            if finite(when) and finite(r.get(exp.metric)):
                reports.append((float(when), float(r[exp.metric])))
    reports.sort()
    start = exp.state.get("created")
    if not finite(start):
        start = min((t.started for t in exp.trials), default=reports[0][0] if reports else 0.0)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if reports:
        xs = [(w - start) / 60 for w, _ in reports]
        ys = [s for _, s in reports]
        best, run = [], None
        for s in ys:
            run = s if run is None else (min(run, s) if exp.mode == "min" else max(run, s))
            best.append(run)
        ax.scatter(xs, ys, s=12, color="lightgray", label="every evaluation")
        ax.step(xs, best, where="post", color="tab:blue", linewidth=2, label="best so far")
        _maybe_log_y(ax, ys)
    ax.set_xlabel("wall time since the search started (minutes)")
    ax.set_ylabel(_ylabel(exp))
    ax.set_title(f"{exp.name}: best score so far")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_slice(exp: ReviewedExperiment, p: SearchedParam, path: Path) -> Path:
    """Best score against one searched parameter (Optuna's slice plot, from the files)."""
    import random

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    rng = random.Random(0)
    cats = [str(c) for c in p.choices]
    for status in ("completed", "stopped", "unfinished"):
        pts = [(param_value(exp, t, p), t.score) for t in exp.trials
               if t.status == status and finite(t.score)]
        pts = [(v, s) for v, s in pts if v is not None]
        if not pts:
            continue
        if p.kind == "choice":
            for v, _ in pts:
                if str(v) not in cats:
                    cats.append(str(v))
            xs = [cats.index(str(v)) + rng.uniform(-0.15, 0.15) for v, _ in pts]
        else:
            xs = [float(v) for v, _ in pts]
        ax.scatter(xs, [s for _, s in pts], label={"stopped": "stopped early"}.get(status, status),
                   alpha=0.8, **STATUS_STYLE[status])
    if p.kind == "choice":
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats, rotation=20 if max((len(c) for c in cats), default=0) > 8 else 0)
    else:
        from matplotlib.ticker import NullFormatter

        if p.log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        if p.low is not None and p.high is not None:  # the searched range, to show its coverage
            pad = (p.high / p.low) ** 0.03 if p.log else 0.03 * (p.high - p.low)
            ax.set_xlim(p.low / pad, p.high * pad) if p.log else ax.set_xlim(p.low - pad, p.high + pad)
    _maybe_log_y(ax, [t.score for t in exp.trials if finite(t.score)])
    ax.set_xlabel(p.key)
    ax.set_ylabel(_ylabel(exp))
    ax.set_title(f"slice: {p.key}")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_learning_curves(exp: ReviewedExperiment, top: int, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    values = []
    for rank, t in enumerate(exp.ranked()[:top], 1):
        pts = [(r["images_seen"], r[exp.metric]) for r in t.results
               if finite(r.get("images_seen")) and finite(r.get(exp.metric))]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", markersize=3,
                    label=f"#{rank} {t.trial_id} ({status_text(t)})")
            values += [y for _, y in pts]
    _maybe_log_y(ax, values)
    ax.set_xlabel("images seen")
    ax.set_ylabel(_ylabel(exp))
    ax.set_title(f"{exp.name}: learning curves of the top {top}")
    ax.grid(alpha=0.3)
    if values:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_lucic(exp: ReviewedExperiment, groups: list[Group], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = 0
    for g in groups:
        m = len(g.scores)
        if m == 0:
            continue
        ns = list(range(1, m + 1))
        stats = [best_of_n(g.scores, n, exp.mode) for n in ns]
        line = ax.plot(ns, [s[0] for s in stats], marker="o", markersize=3, label=f"{g.arch} / {g.loss} ({m} trials)")
        ax.fill_between(ns, [s[1] for s in stats], [s[2] for s in stats], alpha=0.15, color=line[0].get_color())
        drawn += 1
    if drawn:
        ax.set_xscale("log", base=2)
        ticks = _ns(max(len(g.scores) for g in groups))
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(n) for n in ticks])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no completed trials yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("number of trials (budget)")
    ax.set_ylabel(f"expected best {exp.metric} ({'lower' if exp.mode == 'min' else 'higher'} is better)")
    ax.set_title("best score against the number of trials (Lucic et al. 2018); band: 10-90 %")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def sample_sheet(exp: ReviewedExperiment, top: int, path: Path, seed: int = 0) -> Path:
    """One picture: a labelled sample grid from the checkpoint of each of the top trials."""
    import torch
    from PIL import Image

    from gan_core import viz
    from gan_core.checkpoint import generate, load_run
    from search.explore import labelled_grid, scale_for, to_image

    panels = []
    tmp = tempfile.TemporaryDirectory(prefix="gansearch-review-")  # checkpoints fetched from a URI
    for rank, t in enumerate(exp.ranked()[:top], 1):
        title = f"#{rank} {t.trial_id}  {exp.metric} {fmt(t.score)}"
        ckpt = local_checkpoint(t, Path(tmp.name))
        if ckpt is None:
            tiles, ncol = [Image.new("RGB", (56, 56), (200, 200, 200))], 1
            title += " (no checkpoint)"
        else:
            try:
                run = load_run(ckpt)
            except GansearchError as exc:
                tiles, ncol = [Image.new("RGB", (56, 56), (200, 200, 200))], 1
                title += f" ({str(exc)[:40]})"
            else:
                G = run.G
                n, ncol = (20, 5) if G.conditional else (16, 4)
                labels = torch.arange(n) % G.num_classes if G.conditional else None
                images = generate(G, n, seed=seed, labels=labels)
                s = scale_for(G.shape[1], 56)
                tiles = [to_image(x, s) for x in images]
        page, _ = labelled_grid(tiles, ncol, title=title, gap=3, margin=8)
        panels.append(page)
    tmp.cleanup()
    if not panels:
        page, _ = labelled_grid([Image.new("RGB", (56, 56), (200, 200, 200))], 1, title="no ranked trials yet")
        panels = [page]
    per_row = 5
    rows = [viz.hstack(panels[i : i + per_row], gap=10) for i in range(0, len(panels), per_row)]
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows) + 10 * (len(rows) - 1)), (255, 255, 255))
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + 10
    viz.save_png(sheet, path)
    return path


def plot_file_name(key: str) -> str:
    return "slice_" + "".join(c if c.isalnum() or c in "._-" else "_" for c in key) + ".png"


def write_plots(exp: ReviewedExperiment, out_dir: str | Path, *, top: int = 5, include_stopped: bool = False) -> list[Path]:
    """Every review picture into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_scores(exp, out / "scores.png"), plot_best_vs_time(exp, out / "best_vs_time.png")]
    paths += [plot_slice(exp, p, out / plot_file_name(p.key)) for p in exp.searched]
    paths.append(plot_learning_curves(exp, top, out / "learning_curves.png"))
    paths.append(sample_sheet(exp, top, out / "top_samples.png"))
    paths.append(plot_lucic(exp, lucic_groups(exp, include_stopped=include_stopped), out / "lucic.png"))
    return paths
