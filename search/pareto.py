"""Compute-aware search: the cost a trial reports, and the quality/cost Pareto front of a search.

A GAN that scores a little worse but trains three times faster, or has a tenth of the
generator's weights, is often the one to retrain. Every trial reports two costs next to its
score: ``images_per_s`` (its median training throughput between log lines, higher is cheaper)
and ``g_params`` (the generator's parameter count, lower is cheaper). ``gansearch search --cost
params|images_per_s`` hands the score and one cost to Optuna's multi-objective TPE; ``review``
lists the non-dominated trials of any search and ``--plots`` draws them (pareto.png, drawn by
search/review/pareto.py; this module only collects).

Example::

    points = collect(open_experiment("runs/quick"), "params")
    for p in front(points):
        print(p.trial_id, p.quality, p.cost)
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gan_core.errors import GansearchError
from search.objective import Direction, Objective, finite

if TYPE_CHECKING:
    from gan_core.config import Config
    from search.experiment import Experiment, TrialStatus

# --cost name -> (the metric a trial reports and its direction, how a person reads it)
COSTS: dict[str, tuple[Objective, str]] = {
    "params": (Objective("g_params", Direction.MIN), "generator parameters"),
    "images_per_s": (Objective("images_per_s", Direction.MAX), "training images per second"),
}


def cost_metric(name: str) -> Objective:
    """The reported metric and its direction of a ``--cost`` name; a bad name is one line listing
    the choices."""
    if name not in COSTS:
        raise GansearchError(f"--cost: {name!r} is not one of {', '.join(COSTS)}")
    return COSTS[name][0]


def generator_params(cfg: Config) -> int:
    """The generator's parameter count, built on the meta device (no memory, no time)."""
    import torch

    from gan_core import models
    from gan_core.data import load_dataset

    data = load_dataset(cfg.data, "train")
    with torch.device("meta"):
        g, _ = models.build(cfg.model, data.shape, data.num_classes)
    return models.count_params(g)


class ThroughputMeter:
    """The median of the loop's ``images_per_s`` log records: a trial's speed without the
    evaluations in between (the median shrugs off a step that waited for another process)."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_log(self, record: dict[str, Any]) -> None:
        rate = record.get("images_per_s")
        if isinstance(rate, (int, float)) and rate > 0:
            self.rates.append(float(rate))

    def value(self, fallback: float) -> float:
        return statistics.median(self.rates) if self.rates else fallback


# ----------------------------------------------------------------------------- the front


@dataclass(frozen=True)
class Point:
    trial_id: str
    quality: float  # the objective at the trial's best point
    cost: float  # the cost metric in that report
    status: TrialStatus


def collect(exp: Experiment, cost: str) -> list[Point]:
    """Every finished trial with a finite score and cost, at its best point (what it is ranked by)."""
    metric = cost_metric(cost).metric
    out = []
    for t in exp.trials:
        if not t.status.finished or not finite(t.score):
            continue
        value = t.best_result.get(metric, t.last.get(metric))
        if finite(value):
            out.append(Point(t.trial_id, float(t.score), float(value), t.status))
    return out


def front(points: list[Point], quality: Objective, cost: Objective) -> list[Point]:
    """The non-dominated points, cheapest first: no other point is at least as good on both
    objectives and better on one."""

    def dominates(a: Point, b: Point) -> bool:
        aq, ac, bq, bc = quality.key(a.quality), cost.key(a.cost), quality.key(b.quality), cost.key(b.cost)
        return aq <= bq and ac <= bc and (aq < bq or ac < bc)

    out = [p for p in points if not any(dominates(o, p) for o in points if o is not p)]
    return sorted(out, key=lambda p: (cost.key(p.cost), quality.key(p.quality), p.trial_id))


def pareto(exp: Experiment, cost: str) -> tuple[list[Point], list[Point]]:
    """(all points, the front) of an experiment for ``cost``."""
    points = collect(exp, cost)
    return points, front(points, exp.objective, cost_metric(cost))


def format_front(exp: Experiment, cost: str) -> str:
    """The front as review prints it: one line per non-dominated trial, cheapest first."""
    points, best = pareto(exp, cost)
    objective, label = COSTS[cost]
    metric = objective.metric
    if not best:
        return f"Pareto front ({exp.metric} vs {metric}): no finished trial reported {metric}"
    lines = [f"Pareto front ({exp.metric} {exp.objective.direction} vs {label}, {metric} {objective.direction}): "
             f"{len(best)} of {len(points)} trials"]
    for p in best:
        lines.append(f"  {p.trial_id}  {exp.metric} {p.quality:.4g}  {metric} {p.cost:.4g}  ({p.status})")
    return "\n".join(lines)
