"""TPE over the latest trials of a study, so that its ask stops growing with the study.

Optuna's ``TPESampler`` reads every trial of the study at each ask and loops over them in Python
(the pruned ones scored, every parameter converted, two densities built): its ask is linear in
the study, ~50 ms of CPU against 1,000 trials and ~150 ms against 5,000 (bench/bench_scale.py's
Optuna-only table), past 100 ms at the 99th percentile at about 2,000 trials.

:class:`WindowedTPESampler` is ``TPESampler`` with one change: where TPE reads the study's trials
to split them into good and bad and build its two densities, it sees the latest ``history`` of
them (by trial number; finished ones, and the running ones under the constant liar). Up to
``history`` trials it is ``TPESampler`` exactly, the same draws for the same seed. Past it, its
ask costs what it did at ``history`` trials, whatever the size of the study. TPE already weighs
old trials less (Optuna's default weights ramp from 1/n for the oldest to 1 for the latest 25);
the window drops them. The start-up count (random draws until ``n_startup_trials`` finished) is
over the whole study. Chosen by measurement (bench/bench_optuna.py: the best point found and
the last trials' mean over three seeds, with and without a window; README, "At scale").

Relies on two private names of Optuna 5 (``TPESampler._sample`` and ``Study._get_trials``), which
pyproject.toml's ``optuna>=5.0,<6`` pins; tests/test_samplers.py checks both behaviours.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial


class _LatestTrials:
    """``study`` as TPE reads it: ``_get_trials`` gives the latest ``history`` trials asked for."""

    def __init__(self, study: Study, history: int) -> None:
        self._study, self._history = study, history

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return trials[-self._history:] if len(trials) > self._history else trials  # sorted by number


class WindowedTPESampler(TPESampler):
    """``TPESampler(**kwargs)`` that models the latest ``history`` trials of the study."""

    def __init__(self, *, history: int, **kwargs: Any) -> None:
        if history < 1:
            raise ValueError(f"history must be at least 1, not {history}")
        super().__init__(**kwargs)
        self.history = history

    def _sample(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return super()._sample(_LatestTrials(study, self.history), trial, search_space)  # type: ignore[arg-type]
