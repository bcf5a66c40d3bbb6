"""ASHA and PBT that a resumed search continues as if it had never stopped.

Ray Tune saves its trials, its searcher and its callbacks with the experiment state, but not its
scheduler (``TuneController.__getstate__`` leaves ``_scheduler_alg`` out, and nothing calls a
scheduler's ``save``): ``Tuner.restore`` brings back the scheduler as it was built, empty. A
resumed ASHA then had no rungs, so a trial resumed past a rung was judged at its next report
(20,480 images, not a rung) against whatever few trials had reported since; a resumed
synchronous PBT had no perturbation times and waited for ever for trials past its first one.

:class:`SchedulerState` is a Tune callback whose state is its scheduler's (Tune saves callback
states with its own and puts them back on restore, before it re-adds the trials); it and the
scheduler are pickled together in the Tuner, so they stay one object after a restore. Each
scheduler here says what of it must survive: :class:`ResumableASHA` its rungs (every trial's
score at each rung it reached), :class:`ResumablePBT` each member's last perturbation time,
train time, score and result, and when the population next perturbs together.

PBT's own choices (which better member to copy, how to perturb a value) use Python's and
NumPy's global random generators, whose state no one saves and which depend on everything else
the driver drew: :class:`ResumablePBT` makes each choice from a generator seeded by the search's
seed, the member and the images it stands at, so an uninterrupted and a resumed search of the
same seed make the same choices.

Ray internals used (checked against Ray 2.60): AsyncHyperBandScheduler's ``_brackets``, each
``_Bracket._rungs`` and ``_num_stopped`` (ASHA's whole state); PopulationBasedTraining's
``_trial_state`` (per-member ``_PBTTrialState``), ``_next_perturbation_sync``, ``_synch``,
``_time_attr``, ``_num_perturbations``, ``_num_checkpoints`` and its ``_checkpoint_or_exploit``
step (where all its random choices are made); and the order inside
``TuneController.add_trial`` (the scheduler's ``on_trial_add`` runs before the trial is filed
under its status), which lets a restored member wait PAUSED.

Example::

    scheduler = ResumablePBT(seed=0, time_attr="images_seen", perturbation_interval=2048, ...)
    callbacks.append(SchedulerState(scheduler))
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

# What a PBT member's state keeps between perturbations (ray.tune.schedulers.pbt._PBTTrialState);
# last_checkpoint is set afresh at every perturbation before it is used.
PBT_TRIAL_FIELDS = ("last_score", "last_perturbation_time", "last_train_time", "last_result")


class SchedulerState(Callback):
    """Saves its scheduler's state with Tune's and gives it back on restore."""

    def __init__(self, scheduler: ResumableASHA | ResumablePBT) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any] | None:
        return {"scheduler": self.scheduler.resumable_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.scheduler.restore_state(state["scheduler"])


class ResumableASHA(ASHAScheduler):
    """Ray's ASHA whose rungs survive a resume (see the module docstring)."""

    def resumable_state(self) -> dict[str, Any]:
        rungs = [[(milestone, dict(recorded)) for milestone, recorded in b._rungs] for b in self._brackets]
        return {"rungs": rungs, "num_stopped": self._num_stopped}

    def restore_state(self, state: dict[str, Any]) -> None:
        saved = state.get("rungs") or []
        if [[m for m, _ in b] for b in saved] != [[m for m, _ in b._rungs] for b in self._brackets]:
            return  # another rung layout: not this search's state
        for bracket, rungs in zip(self._brackets, saved, strict=True):
            bracket._rungs = [(milestone, dict(recorded)) for milestone, recorded in rungs]
        self._num_stopped = int(state.get("num_stopped", 0))

    def rungs(self) -> list[tuple[float, dict[str, float]]]:
        """(milestone, trial id -> recorded score) of the first bracket, lowest rung first."""
        return [(m, dict(r)) for m, r in reversed(self._brackets[0]._rungs)]


def _member(trial: Any) -> int | str:
    """A PBT member's place in the population: the number Tune ends its trial id with."""
    tail = str(trial.trial_id).rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else str(trial.trial_id)


@contextmanager
def _seeded(*key: Any) -> Iterator[None]:
    """Python's and NumPy's global generators seeded from ``key`` for the block, then put back."""
    seed = zlib.crc32(repr(key).encode())
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


class ResumablePBT(PopulationBasedTraining):
    """Ray's PBT with seeded choices and a state that survives a resume (see the module docstring)."""

    def __init__(self, *args: Any, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seed = seed
        self._restored: dict[str, dict[str, Any]] = {}  # trial id -> its saved member state

    def _checkpoint_or_exploit(self, trial: Any, tune_controller: Any, upper_quantile: list[Any],
                               lower_quantile: list[Any]) -> None:
        when = self._trial_state[trial].last_perturbation_time
        with _seeded(self.seed, _member(trial), when):
            super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, lower_quantile)

    def resumable_state(self) -> dict[str, Any]:
        members = {t.trial_id: {k: getattr(s, k) for k in PBT_TRIAL_FIELDS} for t, s in self._trial_state.items()}
        return {"members": members, "next_sync": self._next_perturbation_sync,
                "num_perturbations": self._num_perturbations, "num_checkpoints": self._num_checkpoints}

    def restore_state(self, state: dict[str, Any]) -> None:
        self._restored = dict(state.get("members") or {})
        self._next_perturbation_sync = state.get("next_sync", self._next_perturbation_sync)
        self._num_perturbations = int(state.get("num_perturbations", 0))
        self._num_checkpoints = int(state.get("num_checkpoints", 0))

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)
        saved = self._restored.get(trial.trial_id)
        if not saved:
            return
        state = self._trial_state[trial]
        for key in PBT_TRIAL_FIELDS:
            if key in saved:
                setattr(state, key, saved[key])
        if not self._synch or trial.status != Trial.PENDING:
            return
        # A member that reached the population's next perturbation and stopped there to wait
        # whose checkpoint Ray had not saved yet (the stop came while it was saving) goes back
        # to the checkpoint it has: it reports that point again and waits then.
        latest = trial.latest_checkpoint_result
        at = int((latest.metrics if latest is not None else {}).get(self._time_attr, 0) or 0)
        if at < state.last_train_time and state.last_perturbation_time < state.last_train_time:
            state.last_train_time = state.last_perturbation_time
        # Tune requeues every unfinished trial as PENDING and starts all PENDING trials, while a
        # member waiting at the perturbation was PAUSED there (it would run on and be perturbed
        # past it): it waits again. Tune's add_trial files the trial under the status it has
        # after this call (checked on Ray 2.60).
        if state.last_train_time >= self._next_perturbation_sync:
            trial.set_status(Trial.PAUSED)
