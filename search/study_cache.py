"""The driver's view of its Optuna study: its own trials kept in memory, written through to the database.

Optuna wraps an RDBStorage in ``_CachedStorage``, which keeps finished trials in memory but reads
every unfinished trial back from the database at each ``get_all_trials``: a TPE ``ask`` calls it
two or three times, so with 64 trials running each ask re-read 64 trials with their parameters,
attributes and reports through SQLAlchemy (bench/bench_scale.py: ~1.2 s an ask at 100 trials,
9x bare Ray Tune, whose study is in memory). The running trials are this driver's own, and it
wrote every value they hold.

:class:`StudyCache` is that ``_CachedStorage`` with two changes:

- **Own trials are written through.** A trial created through it (asked, or enqueued and WAITING)
  is *own* until it finishes: each write goes to the database first (what is persisted, and when,
  is exactly as before: a killed driver loses nothing written), then into a new copy of the
  cached trial, which ``get_trial`` and ``get_all_trials`` serve without reading the database.
  A trial another process took (its WAITING trial ran elsewhere, or it was finished by another
  handle: ``study_db.fail_orphans``, a stale heartbeat) is read back once and is no longer own. A
  trial this process writes that it did not create (a resumed search's running trials) becomes
  own, read back once. A finished trial is read back once, so the cache holds exactly what the
  database holds, and never read again (as in ``_CachedStorage``).
- **Other processes' trials are read at most every ``refresh_s`` seconds** (the first read always
  happens): a joined study (``--join-study``), a team's PostgreSQL server. The read fetches the
  trials created since the last one and the others' unfinished trials, never an own trial, and
  never overwrites an own trial's copy.

With one driver the sampler sees what it saw before (the same draws for the same seed: own
trials are what it wrote, and nobody else writes), and an ask no longer reads the running trials.
Trials of other drivers are seen up to ``refresh_s`` late, as if their reports came that much later.

Pickled (Ray saves the searcher with its study into the experiment folder, again and again) it
keeps only the database storage (RedactedRDBStorage: its password hidden) and ``refresh_s``: the
pickle does not grow with the study, and a restored one owns nothing and reads the whole study at
its first read, so trials marked FAIL while the search was stopped show as FAIL.

Example::

    storage = StudyCache(RedactedRDBStorage(url))     # what the searcher's study is created on
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True)
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from optuna import distributions
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
from optuna.trial import FrozenTrial, TrialState

# Reading another driver's 64 running trials (ten parameters, five attributes, three reports
# each) from SQLite costs 65 ms of CPU here (256 trials: 0.3 s): every 5 s that is 1-6 % of
# a core, and a GAN trial's reports are minutes apart, so the sampler misses nothing that matters.
REFRESH_S = 5.0


def _json(value: Any) -> Any:
    """``value`` as the database gives it back (an attribute is stored as JSON: a tuple reads as a list)."""
    return json.loads(json.dumps(value))


class StudyCache(_CachedStorage):
    """Optuna's ``_CachedStorage`` over ``backend`` that keeps this process's unfinished trials in
    memory (written through) and reads other processes' at most every ``refresh_s`` seconds."""

    def __init__(self, backend: RDBStorage, *, refresh_s: float = REFRESH_S) -> None:
        super().__init__(backend)
        self.refresh_s = refresh_s
        self._own: set[int] = set()  # trial ids: unfinished, created or written by this process
        self._read_at: dict[int, float] = {}  # study id -> time.monotonic() of its last read
        # study id -> a trial id such that every trial of the study with an id up to it is cached.
        # Optuna creates a study's trials one at a time (it locks the study's row), so their ids
        # rise in the order they are committed: a read of the ids above it misses none.
        self._cached_to: dict[int, int] = {}
        self._top: dict[int, int] = {}  # study id -> the highest trial number cached

    def __getstate__(self) -> dict[Any, Any]:
        return {"_backend": self._backend, "refresh_s": self.refresh_s}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        self.__init__(state["_backend"], refresh_s=state["refresh_s"])  # type: ignore[misc]

    def delete_study(self, study_id: int) -> None:
        super().delete_study(study_id)
        with self._lock:  # SQLite may give a new study (and its trials) the ids of a deleted one
            self._read_at.pop(study_id, None)
            self._cached_to.pop(study_id, None)
            self._top.pop(study_id, None)
            self._own &= self._trial_id_to_study_id_and_number.keys()

    # ------------------------------------------------------------------ reads

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            if trial_id in self._own:
                # A copy: optuna.Trial edits the dicts of the one it is given.
                return copy.deepcopy(self._cached(trial_id))
        return super().get_trial(trial_id)

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        """The trials other processes created or changed, at most every ``refresh_s`` seconds."""
        with self._lock:
            now = time.monotonic()
            last = self._read_at.get(study_id)
            if last is not None and now - last < self.refresh_s:
                return
            self._read_at[study_id] = now
            study = self._studies.setdefault(study_id, _StudyInfo())
            cached_to = self._cached_to.get(study_id, -1)
            trials = self._backend._get_trials(study_id, states=None,
                                               included_trial_ids=study.unfinished_trial_ids - self._own,
                                               trial_id_greater_than=cached_to)
            if trials:
                self._cached_to[study_id] = max(cached_to, max(t._trial_id for t in trials))
            others = [t for t in trials if t._trial_id not in self._own]
            self._add_trials_to_cache(study_id, others)
            for trial in others:
                if trial.state.is_finished():
                    study.unfinished_trial_ids.discard(trial._trial_id)
                else:
                    study.unfinished_trial_ids.add(trial._trial_id)

    def _add_trials_to_cache(self, study_id: int, trials: list[FrozenTrial]) -> None:
        super()._add_trials_to_cache(study_id, trials)
        if trials:
            self._top[study_id] = max(self._top.get(study_id, -1), max(t.number for t in trials))

    def _cached(self, trial_id: int) -> FrozenTrial:
        study_id, number = self._trial_id_to_study_id_and_number[trial_id]
        return self._studies[study_id].trials[number]

    # ------------------------------------------------------------------ trials this process creates and writes

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial = self._backend._create_new_trial(study_id, template_trial)
        with self._lock:
            study = self._studies.setdefault(study_id, _StudyInfo())
            # Every trial numbered below it is cached, and none above: all of the study's trials
            # with smaller ids are, so a read need not fetch this one back.
            # (Distinct numbers from 0, as many as trial.number, all below it: 0 .. trial.number - 1.)
            if (study_id in self._cached_to and len(study.trials) == trial.number
                    and self._top.get(study_id, -1) < trial.number):
                self._cached_to[study_id] = max(self._cached_to[study_id], trial._trial_id)
            self._add_trials_to_cache(study_id, [trial])
            if not trial.state.is_finished():
                self._own.add(trial._trial_id)
                study.unfinished_trial_ids.discard(trial._trial_id)
        return trial._trial_id

    def _write(self, trial_id: int, write: Callable[[], None],
               change: Callable[[FrozenTrial], dict[str, Any]]) -> None:
        """Run ``write`` (the database's), then put ``change(cached)`` (FrozenTrial attribute ->
        new value) into a new copy of an own trial; a trial not own is read back and becomes own.
        A trial another process finished meanwhile is read back, no longer own, and the error raised."""
        try:
            write()
        except UpdateFinishedTrialError:
            self._read_back(trial_id, own=False)
            raise
        with self._lock:
            if trial_id in self._own:
                new = copy.copy(self._cached(trial_id))  # the sampler may hold the old one: it stays as it was
                for attr, value in change(new).items():
                    setattr(new, attr, value)
                self._add_trials_to_cache(self._trial_id_to_study_id_and_number[trial_id][0], [new])
                return
        self._read_back(trial_id, own=True)

    def _read_back(self, trial_id: int, *, own: bool) -> None:
        """Replace the cached copy of ``trial_id`` by the database's. Unfinished, it is own (``own``)
        or another process's, read again at each refresh; finished, it is never read again."""
        trial = self._backend.get_trial(trial_id)
        with self._lock:
            self._own.discard(trial_id)
            if trial_id not in self._trial_id_to_study_id_and_number:
                return  # its study is not read yet: the first read brings it
            study_id = self._trial_id_to_study_id_and_number[trial_id][0]
            study = self._studies[study_id]
            self._add_trials_to_cache(study_id, [trial])
            study.unfinished_trial_ids.discard(trial_id)
            if trial.state.is_finished():
                return
            if own:
                self._own.add(trial_id)
            else:
                study.unfinished_trial_ids.add(trial_id)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: distributions.BaseDistribution) -> None:
        with self._lock:
            study_id = self._trial_id_to_study_id_and_number.get(trial_id, (None, 0))[0]
            known = None if study_id is None else self._studies[study_id].param_distribution.get(param_name)

        def write() -> None:
            self._backend._set_trial_param(trial_id, param_name, param_value_internal, distribution, known)
            if study_id is not None and known is None:
                with self._lock:
                    self._studies[study_id].param_distribution[param_name] = distribution

        self._write(trial_id, write, lambda t: {
            "params": {**t.params, param_name: distribution.to_external_repr(param_value_internal)},
            "distributions": {**t.distributions, param_name: distribution}})

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        """The database's answer. The trial is read back (its times are the database's); one
        another process took (False) or finished (UpdateFinishedTrialError) is no longer own."""
        try:
            taken = self._backend.set_trial_state_values(trial_id, state=state, values=values)
        except UpdateFinishedTrialError:
            self._read_back(trial_id, own=False)
            raise
        self._read_back(trial_id, own=taken)
        return taken

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self._write(trial_id, lambda: self._backend.set_trial_intermediate_value(trial_id, step, intermediate_value),
                    lambda t: {"intermediate_values": {**t.intermediate_values, step: float(intermediate_value)}})

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._write(trial_id, lambda: self._backend.set_trial_user_attr(trial_id, key=key, value=value),
                    lambda t: {"user_attrs": {**t.user_attrs, key: _json(value)}})

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._write(trial_id, lambda: self._backend.set_trial_system_attr(trial_id, key=key, value=value),
                    lambda t: {"system_attrs": {**t.system_attrs, key: _json(value)}})
