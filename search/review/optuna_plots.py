"""Optuna's own plots of a search's study (``optuna.visualization.matplotlib``): optimisation
history, slice, contour, parallel coordinates and intermediate values, as ``optuna_<name>.png``.
They show the study as Optuna sees it (completed trials; early-stopped ones are PRUNED there, and
intermediate values are indexed by Tune's training iteration); the toolkit's pictures in
search/review/plots.py show every trial from the folder. PBT searches have no study.

``plan_optuna_plots`` decides what to draw from the study's trials (pure); ``draw_optuna_plots``
draws it.

Example::

    paths, note = write_optuna_plots(load_experiment("runs/quick"), "runs/quick/plots")
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.review.plots import pyplot, save_figure
from search.review.reading import ReviewedExperiment

if TYPE_CHECKING:
    from optuna import Study
    from optuna.trial import FrozenTrial

CONTOUR_PARAMS = 3  # a contour grid of k params has k x k panels: keep the most-sampled few


@dataclass
class OptunaPlot:
    """One of Optuna's plot functions, by name, and its keyword arguments."""

    name: str  # optimization_history, slice, contour, parallel_coordinate, intermediate_values
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"optuna_{self.name}.png"


def plan_optuna_plots(trials: Sequence[FrozenTrial], metric: str, n_objectives: int = 1) -> tuple[list[OptunaPlot], str]:
    """The plots worth drawing for these study trials, and a note on what was left out and why.

    Parameters are those of completed trials (a conditional parameter has its branch in its name,
    ``model.g_depth@model.arch=mlp``); the contour takes the ``CONTOUR_PARAMS`` most often sampled
    numeric ones. A multi-objective study is plotted against its first objective."""
    from optuna.trial import TrialState

    done = [t for t in trials if t.state is TrialState.COMPLETE]
    counts: dict[str, int] = {}
    numeric: set[str] = set()
    for t in done:
        for name, value in t.params.items():
            counts[name] = counts.get(name, 0) + 1
            if isinstance(value, int | float) and not isinstance(value, bool):
                numeric.add(name)
    params = sorted(counts, key=lambda n: (-counts[n], n))
    common: dict[str, Any] = {}
    if n_objectives > 1:
        def first(t: FrozenTrial) -> float:
            return float(t.values[0])
        common = {"target": first, "target_name": metric}
    else:
        common = {"target_name": metric}
    if not done:
        return [], "no completed trial in the Optuna study: no Optuna plots"
    plots = [OptunaPlot("optimization_history", dict(common)), OptunaPlot("slice", {**common, "params": params}),
             OptunaPlot("parallel_coordinate", {**common, "params": params})]
    left = []
    contour = [n for n in params if n in numeric][:CONTOUR_PARAMS]
    if len(contour) >= 2:
        plots.append(OptunaPlot("contour", {**common, "params": contour}))
    else:
        left.append("contour (needs two numeric parameters)")
    if n_objectives == 1 and any(t.intermediate_values for t in trials):
        plots.append(OptunaPlot("intermediate_values"))
    else:
        left.append("intermediate values (none reported" + (", or several objectives)" if n_objectives > 1 else ")"))
    return plots, ("left out: " + "; ".join(left)) if left else ""


def draw_optuna_plots(study: Study, plots: list[OptunaPlot], out: Path) -> list[Path]:
    """Draw each planned plot of ``study`` into ``out`` with optuna.visualization.matplotlib."""
    import optuna
    import optuna.visualization.matplotlib as ovm

    pyplot()  # the Agg backend before Optuna touches pyplot
    paths = []
    for plot in plots:
        draw: Callable[..., Any] = getattr(ovm, f"plot_{plot.name}")
        with warnings.catch_warnings():  # the matplotlib module is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = draw(study, **plot.kwargs)
        first = axes.flat[0] if hasattr(axes, "flat") else axes
        fig = first.figure
        # Optuna lays out its own axes and colour bars (tight_layout would warn on the contour).
        fig.set_size_inches(max(8.0, fig.get_figwidth()), max(4.5, fig.get_figheight()))
        paths.append(save_figure(fig, out / plot.file_name))
    return paths


def write_optuna_plots(exp: ReviewedExperiment, out_dir: str | Path) -> tuple[list[Path], str]:
    """Optuna's plots of the experiment's study into ``out_dir``: the paths written and a note
    (why none or some were not drawn; empty when all were)."""
    from search.study_db import open_study  # loads Optuna

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gansearch-review-") as tmp:
        study = open_study(exp, Path(tmp))
        if study is None:
            return [], ("no Optuna study (PBT searches have none)" if exp.manifest.is_pbt
                        else "no Optuna study in the experiment")
        trials = study.get_trials(deepcopy=False)
        plots, note = plan_optuna_plots(trials, exp.metric, len(study.directions))
        return draw_optuna_plots(study, plots, out), note
