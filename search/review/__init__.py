"""Review a search: what won and why. One concept per module:

- ``reading``: the experiment with the hyperparameters its search varied (the leaderboard's columns);
- ``tables``: the leaderboard as text, CSV and JSON;
- ``export``: a trial's complete config for ``gansearch retrain``;
- ``importance``: hyperparameter importance (Optuna's PED-ANOVA, or rank correlations);
- ``best_of_n``: the "Are GANs Created Equal?" study (Lucic et al., 2018);
- ``plots``, ``samples``, ``optuna_plots``: the pictures, each collected then drawn.

The experiment is read through search/experiment/, never through Ray, and nothing in its folder
is modified. Importing this package loads neither torch, Ray, Optuna nor matplotlib.

Example::

    from search import review

    exp = review.load_experiment("runs/quick")
    print(review.format_leaderboard(exp))
    review.export_config(exp, "best.yaml")                # the winner's complete config, for retrain
"""

from search.review.best_of_n import Group, best_of_n, format_lucic, ladder, lucic_groups
from search.review.export import export_config
from search.review.importance import MIN_IMPORTANCE_TRIALS, format_importance, importance
from search.review.reading import (
    ReviewedExperiment,
    SearchedParam,
    load_experiment,
    metric_parts,
    param_value,
    short_key,
)
from search.review.tables import fmt, format_leaderboard, status_text, table

__all__ = [
    "MIN_IMPORTANCE_TRIALS",
    "Group",
    "ReviewedExperiment",
    "SearchedParam",
    "best_of_n",
    "export_config",
    "fmt",
    "format_importance",
    "format_leaderboard",
    "format_lucic",
    "importance",
    "ladder",
    "load_experiment",
    "lucic_groups",
    "metric_parts",
    "param_value",
    "short_key",
    "status_text",
    "table",
]
