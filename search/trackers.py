"""``search --log-to``: the experiment tracker a search also logs its trials to.

A team that tunes with Ray already logs to MLflow or Weights & Biases; ``--log-to`` adds Ray
Tune's own logger callback for it (search/raytune/trackers.py builds it): one tracker run per
trial with its sampled parameters, its metrics at every report, its newest sample grid, and
tags naming the gansearch experiment and the trial. ``resume`` keeps what the search chose (the
manifest's ``options.log_to``) and logs into the same runs.

This module only parses and checks the option (before Ray starts, for `--help` without
importing a tracker): ``mlflow:URI`` (MLflow's tracking URI: ``file:///abs/mlruns``, a server
``http://host:5000``, ``databricks``, ...) or ``wandb[:PROJECT]`` (the project defaults to the
experiment's name; the API key, entity and offline mode are wandb's own environment variables).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from gan_core.errors import GansearchError

TRACKERS = ("mlflow", "wandb")
FORMS = "mlflow:URI (e.g. mlflow:file:///abs/path/mlruns, mlflow:http://host:5000) or wandb[:PROJECT]"


@dataclass(frozen=True)
class Tracker:
    """A parsed ``--log-to``: ``kind`` (a TRACKERS name) and its ``target`` (MLflow's tracking
    URI; the wandb project, None for the experiment's name)."""

    kind: str
    target: str | None = None

    @property
    def package(self) -> str:
        """The Python package (and gansearch extra) the tracker needs."""
        return self.kind


def parse_tracker(value: str, flag: str = "--log-to") -> Tracker:
    """``value`` as a Tracker, or a one-line GansearchError naming ``flag`` and the valid forms."""
    kind, sep, target = value.strip().partition(":")
    if kind not in TRACKERS:
        raise GansearchError(f"{flag}: {value!r} is not a tracker; give {FORMS}")
    if kind == "mlflow" and not target.strip():
        raise GansearchError(f"{flag}: {value!r}: mlflow needs its tracking URI; give {FORMS}")
    if kind == "wandb" and sep and (not target.strip() or "/" in target):
        raise GansearchError(f"{flag}: {value!r}: a wandb project is a name without '/'; give {FORMS}")
    return Tracker(kind, target.strip() or None)


def check_tracker(value: str, flag: str = "--log-to") -> Tracker:
    """``parse_tracker``, its package installed (else one line saying how to install it) and, for
    MLflow, a tracking store MLflow accepts (MLflow 3 refuses a bare file store unless
    $MLFLOW_ALLOW_FILE_STORE is true): checked here, before Ray starts, not in the callback's
    setup inside Tune. Nothing is contacted: a server's URI is checked only for its form."""
    tracker = parse_tracker(value, flag)
    if importlib.util.find_spec(tracker.package) is None:
        raise GansearchError(f"{flag} {tracker.kind}: the {tracker.package} package is not installed: "
                             f"pip install 'gansearch[{tracker.package}]'")
    if tracker.kind == "mlflow":
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            MlflowClient(tracking_uri=tracker.target)  # makes its store: a refused URI raises here
        except MlflowException as exc:
            raise GansearchError(f"{flag} {value}: MLflow refuses it: {' '.join(str(exc.message).split())}") from None
    return tracker
