"""The review's GAN-specific pictures, each in two halves as ``optuna.visualization`` does: a
``collect_*`` function gathers the data into a small record of plain lists (testable without
matplotlib) and a ``draw_*`` function draws it. They show what Optuna's plots cannot: trials
stopped early, diverged or failed, PBT searches (no study), learning curves in images seen, and
the Lucic et al. study. Sample sheets are in search/review/samples.py, Optuna's own plots in
search/review/optuna_plots.py.

Example::

    exp = load_experiment("runs/quick")
    write_plots(exp, "runs/quick/plots", top=5)
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.experiment import TrialStatus
from search.objective import finite
from search.review.best_of_n import Group, best_of_n, ladder, lucic_groups
from search.review.reading import ReviewedExperiment, SearchedParam, param_value
from search.review.tables import status_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only: no display on a cluster node)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically (a reader never sees half a file) and close it."""
    from gan_core.io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


STATUS_STYLE: dict[TrialStatus, dict[str, str]] = {
    TrialStatus.COMPLETED: dict(color="tab:blue", marker="o"),
    TrialStatus.STOPPED: dict(color="tab:orange", marker="v"),
    TrialStatus.UNFINISHED: dict(color="tab:gray", marker="s"),
    TrialStatus.DIVERGED: dict(color="tab:red", marker="x"),
    TrialStatus.FAILED: dict(color="black", marker="x"),
}


@dataclass
class Points:
    """One scatter or line: its label, its style's status (None: no status style) and its points."""

    label: str
    xs: list[float]
    ys: list[float]
    status: TrialStatus | None = None


@dataclass
class Chart:
    """What a chart shows: titles, series, and whether the score axis is logarithmic."""

    title: str
    xlabel: str
    ylabel: str
    series: list[Points] = field(default_factory=list)
    log_y: bool = False
    highlight: Points | None = None  # the best trial, circled


def _ylabel(exp: ReviewedExperiment) -> str:
    return f"{exp.metric} ({exp.objective.better})"


def wide_range(values: list[float]) -> bool:
    """Positive scores spanning more than a factor 20 read better on a log axis."""
    v = [x for x in values if finite(x)]
    return bool(v) and min(v) > 0 and max(v) / min(v) > 20


def _finish(ax: Axes, chart: Chart) -> None:
    if chart.log_y:
        ax.set_yscale("log")
    ax.set_xlabel(chart.xlabel)
    ax.set_ylabel(chart.ylabel)
    ax.set_title(chart.title)
    ax.grid(alpha=0.3)


# ----------------------------------------------------------------------------- scores of every trial


def collect_scores(exp: ReviewedExperiment) -> Chart:
    """Each trial's best score in the order they started; trials without a score at the top."""
    scored = [t.score for t in exp.trials if finite(t.score)]
    worst = exp.objective.worst_of(scored)
    top = worst if worst is not None else 1.0  # where scoreless trials are drawn: the worst score
    chart = Chart(f"{exp.name}: best score of each trial", "trial (in the order they started)", _ylabel(exp),
                  log_y=wide_range([float(s) for s in scored]))
    for status in STATUS_STYLE:
        idx = [i for i, t in enumerate(exp.trials) if t.status is status]
        if idx:
            label = status.label + (" (no score; drawn at the top)"
                                    if status in (TrialStatus.DIVERGED, TrialStatus.FAILED) else "")
            scores = [exp.trials[i].score for i in idx]
            ys = [s if finite(s) else float(top) for s in scores]
            chart.series.append(Points(label, [float(i + 1) for i in idx], ys, status))
    best = exp.best()
    if best is not None and best.score is not None:
        chart.highlight = Points(f"best: {best.trial_id}", [float(exp.trials.index(best) + 1)], [best.score])
    return chart


def draw_scores(chart: Chart, path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    for s in chart.series:
        ax.scatter(s.xs, s.ys, label=s.label, **STATUS_STYLE[s.status or TrialStatus.COMPLETED])
    if chart.highlight is not None:
        h = chart.highlight
        ax.scatter(h.xs, h.ys, s=260, facecolors="none", edgecolors="gold", linewidths=2.5, label=h.label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax, chart)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- best so far against time


def collect_best_vs_time(exp: ReviewedExperiment) -> Chart:
    """Every evaluation against wall-clock minutes since the search started, and the best so far."""
    reports = []
    for t in exp.trials:
        for r in t.results:
            when = r.get("reported_at") or r.get("timestamp")
            if finite(when) and finite(r.get(exp.metric)):
                reports.append((float(when), float(r[exp.metric])))
    reports.sort()
    start = exp.manifest.created
    if not finite(start):
        start = min((t.started for t in exp.trials), default=reports[0][0] if reports else 0.0)
    chart = Chart(f"{exp.name}: best score so far", "wall time since the search started (minutes)", _ylabel(exp))
    if reports:
        xs = [(w - float(start)) / 60 for w, _ in reports]
        ys = [s for _, s in reports]
        best: list[float] = []
        for s in ys:
            best.append(s if not best or exp.objective.is_better(s, best[-1]) else best[-1])
        chart.series = [Points("every evaluation", xs, ys), Points("best so far", xs, best)]
        chart.log_y = wide_range(ys)
    return chart


def draw_best_vs_time(chart: Chart, path: Path) -> Path:
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    if chart.series:
        every, best = chart.series
        ax.scatter(every.xs, every.ys, s=12, color="lightgray", label=every.label)
        ax.step(best.xs, best.ys, where="post", color="tab:blue", linewidth=2, label=best.label)
    _finish(ax, chart)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- one slice per searched key


@dataclass
class Slice(Chart):
    """Scores against one searched key; for a choice, x is the index into ``categories`` (jittered)."""

    param: SearchedParam | None = None
    categories: list[str] = field(default_factory=list)


def collect_slice(exp: ReviewedExperiment, p: SearchedParam) -> Slice:
    """Best score against one searched parameter, from the files (conditional branches merged,
    early-stopped trials included; Optuna's slice plot shows completed study trials only)."""
    rng = random.Random(0)
    chart = Slice(f"slice: {p.key}", p.key, _ylabel(exp), param=p, categories=[str(c) for c in p.choices],
                  log_y=wide_range([float(t.score) for t in exp.trials if finite(t.score)]))
    for status in (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.UNFINISHED):
        pts = [(param_value(exp, t, p), float(t.score)) for t in exp.trials
               if t.status is status and finite(t.score)]
        # A range's values are numbers; a choice's anything printable (None: not in this branch).
        pts = [(v, s) for v, s in pts if (v is not None if p.kind == "choice" else isinstance(v, int | float))]
        if not pts:
            continue
        if p.kind == "choice":
            for v, _ in pts:
                if str(v) not in chart.categories:
                    chart.categories.append(str(v))
            xs = [chart.categories.index(str(v)) + rng.uniform(-0.15, 0.15) for v, _ in pts]
        else:
            xs = [float(v) for v, _ in pts if isinstance(v, int | float)]
        chart.series.append(Points(status.label, xs, [s for _, s in pts], status))
    return chart


def draw_slice(chart: Slice, path: Path) -> Path:
    fig, ax = pyplot().subplots(figsize=(6.5, 4.2))
    for s in chart.series:
        ax.scatter(s.xs, s.ys, label=s.label, alpha=0.8, **STATUS_STYLE[s.status or TrialStatus.COMPLETED])
    p = chart.param
    if p is not None and p.kind == "choice":
        cats = chart.categories
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats, rotation=20 if max((len(c) for c in cats), default=0) > 8 else 0)
    elif p is not None:
        from matplotlib.ticker import NullFormatter

        if p.log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        if p.low is not None and p.high is not None:  # the searched range, to show its coverage
            if p.log:
                pad = (p.high / p.low) ** 0.03
                ax.set_xlim(p.low / pad, p.high * pad)
            else:
                pad = 0.03 * (p.high - p.low)
                ax.set_xlim(p.low - pad, p.high + pad)
    _finish(ax, chart)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_file_name(key: str) -> str:
    return "slice_" + "".join(c if c.isalnum() or c in "._-" else "_" for c in key) + ".png"


# ----------------------------------------------------------------------------- learning curves of the top trials


def collect_learning_curves(exp: ReviewedExperiment, top: int) -> Chart:
    """The score of each of the top trials at each evaluation, against images seen."""
    chart = Chart(f"{exp.name}: learning curves of the top {top}", "images seen", _ylabel(exp))
    for rank, t in enumerate(exp.ranked()[:top], 1):
        pts = [(float(r["images_seen"]), float(r[exp.metric])) for r in t.results
               if finite(r.get("images_seen")) and finite(r.get(exp.metric))]
        if pts:
            chart.series.append(Points(f"#{rank} {t.trial_id} ({status_text(t)})",
                                       [x for x, _ in pts], [y for _, y in pts]))
    chart.log_y = wide_range([y for s in chart.series for y in s.ys])
    return chart


def draw_learning_curves(chart: Chart, path: Path) -> Path:
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    for s in chart.series:
        ax.plot(s.xs, s.ys, marker="o", markersize=3, label=s.label)
    _finish(ax, chart)
    if chart.series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- Lucic et al. 2018


@dataclass
class Curve:
    """Expected best of n trials of one group for n = 1..m, with its 10-90 % band."""

    label: str
    ns: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]


def collect_lucic(exp: ReviewedExperiment, groups: list[Group]) -> tuple[list[Curve], list[int]]:
    """One curve per architecture x loss with trials, and the x ticks (1, 2, 4, ..., the largest m)."""
    curves = []
    for g in groups:
        m = len(g.scores)
        if m:
            ns = list(range(1, m + 1))
            stats = [best_of_n(g.scores, n, exp.objective) for n in ns]
            curves.append(Curve(f"{g.arch} / {g.loss} ({m} trials)", ns, [s[0] for s in stats],
                                [s[1] for s in stats], [s[2] for s in stats]))
    return curves, ladder(max((len(c.ns) for c in curves), default=0))


def draw_lucic(exp: ReviewedExperiment, curves: list[Curve], ticks: list[int], path: Path) -> Path:
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    for c in curves:
        line = ax.plot(c.ns, c.mean, marker="o", markersize=3, label=c.label)
        ax.fill_between(c.ns, c.low, c.high, alpha=0.15, color=line[0].get_color())
    if curves:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(n) for n in ticks])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no completed trials yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("number of trials (budget)")
    ax.set_ylabel(f"expected best {exp.metric} ({exp.objective.better})")
    ax.set_title("best score against the number of trials (Lucic et al. 2018); band: 10-90 %")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- all of them


def write_plots(exp: ReviewedExperiment, out_dir: str | Path, *, top: int = 5, include_stopped: bool = False) -> list[Path]:
    """Every review picture into ``out_dir``; returns the paths written."""
    from search.review.samples import collect_samples, draw_samples

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [draw_scores(collect_scores(exp), out / "scores.png"),
             draw_best_vs_time(collect_best_vs_time(exp), out / "best_vs_time.png")]
    paths += [draw_slice(collect_slice(exp, p), out / plot_file_name(p.key)) for p in exp.searched]
    paths.append(draw_learning_curves(collect_learning_curves(exp, top), out / "learning_curves.png"))
    paths.append(draw_samples(collect_samples(exp, top), out / "top_samples.png"))
    curves, ticks = collect_lucic(exp, lucic_groups(exp, include_stopped=include_stopped))
    paths.append(draw_lucic(exp, curves, ticks, out / "lucic.png"))
    return paths
