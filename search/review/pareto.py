"""pareto.png: every finished trial's score against its cost, the non-dominated ones joined as a
staircase (the data is collected by search/pareto.py, which the search's trials report into)."""

from __future__ import annotations

from pathlib import Path

from search.experiment import Experiment
from search.pareto import COSTS, cost_metric, pareto
from search.review.plots import pyplot, save_figure


def draw_front(exp: Experiment, cost: str, path: str | Path) -> Path:
    """Draw ``exp``'s quality/cost front for ``cost`` (a search/pareto.py COSTS name) into ``path``."""
    points, best = pareto(exp, cost)
    metric, label = cost_metric(cost).metric, COSTS[cost][1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    others = [p for p in points if p not in best]
    ax.scatter([p.cost for p in others], [p.quality for p in others], c="0.6", s=18, label="dominated")
    ax.step([p.cost for p in best], [p.quality for p in best], where="post", c="tab:red", lw=1)
    ax.scatter([p.cost for p in best], [p.quality for p in best], c="tab:red", s=28, label="Pareto front",
               zorder=3)
    for p in best:
        ax.annotate(p.trial_id, (p.cost, p.quality), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if cost == "params" and points and max(p.cost for p in points) > 10 * min(p.cost for p in points):
        ax.set_xscale("log")
    ax.set_xlabel(f"{label} ({metric})")
    ax.set_ylabel(f"{exp.metric} ({exp.objective.better})")
    ax.set_title(f"{exp.name}: quality vs cost, {len(best)} of {len(points)} trials on the front")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, out)
