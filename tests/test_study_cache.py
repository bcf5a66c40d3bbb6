"""search/study_cache.py: the driver's study storage keeps its own running trials in memory.

Real Optuna studies on SQLite files, no Ray: the same seeded searches through StudyCache and
through Optuna's own RDBStorage, another storage handle on the same file standing in for another
driver, and the database reads counted by a subclass of RDBStorage.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from search.samplers import make_sampler
from search.study_cache import StudyCache
from search.study_db import RedactedRDBStorage, fast_sqlite

optuna.logging.set_verbosity(optuna.logging.WARNING)
RUNNING = 6  # trials running at once


class CountingRDBStorage(RDBStorage):
    """RDBStorage counting its reads of many trials and the trials they returned."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        fast_sqlite(self)
        self.reads = 0
        self.rows = 0

    def _get_trials(self, *args: Any, **kwargs: Any) -> list[FrozenTrial]:
        trials = super()._get_trials(*args, **kwargs)
        self.reads += 1
        self.rows += len(trials)
        return trials


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _rdb(url: str) -> RDBStorage:
    """Optuna's RDBStorage as the driver opens it (committing without waiting for the disk)."""
    storage = RDBStorage(url)
    fast_sqlite(storage)
    return storage


def _sample(trial: optuna.Trial) -> None:
    """A define-by-run space like a GAN search's: log floats, an int, a choice, a conditional."""
    trial.suggest_float("lr", 1e-5, 1e-2, log=True)
    trial.suggest_int("depth", 1, 4)
    if trial.suggest_categorical("loss", ["hinge", "ns", "wgan"]) == "wgan":
        trial.suggest_float("gp", 0.1, 10.0, log=True)


def _score(trial: optuna.Trial, step: int) -> float:
    p = trial.params
    return (math.log10(p["lr"]) + 3.5) ** 2 + 0.1 * p["depth"] + (0.3 if p["loss"] == "ns" else 0.0) - 0.01 * step


def _search(storage: Any, n: int = 40, seed: int = 3) -> optuna.Study:
    """A seeded search with RUNNING trials at once, as the driver runs one: two points enqueued
    first, each trial tagged and reporting twice, then the oldest told complete, pruned or failed
    (by turns) and a new one asked."""
    study = optuna.create_study(storage=storage, study_name="s", sampler=make_sampler("tpe", seed=seed, n_startup=5))
    study.enqueue_trial({"lr": 1e-3, "depth": 2, "loss": "hinge"})
    study.enqueue_trial({"lr": 1e-4, "depth": 3, "loss": "wgan", "gp": 1.0})
    running: list[optuna.Trial] = []
    asked = 0
    while asked < n or running:
        while asked < n and len(running) < RUNNING:
            trial = study.ask()
            _sample(trial)
            trial.set_user_attr("experiment", "/x/e")
            trial.set_user_attr("tune_trial_id", f"t{asked}")
            running.append(trial)
            asked += 1
        trial = running.pop(0)
        for step in (1, 2):
            trial.report(_score(trial, step), step)
        trial.set_user_attr("images_seen", 2 * 64_000)
        if trial.number % 7 == 3:
            study.tell(trial, state=TrialState.FAIL)
        elif trial.number % 5 == 1:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, _score(trial, 2))
    return study


def _as_stored(url: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name="s", storage=url).get_trials()


def test_the_same_draws_and_the_same_database_as_optunas_storage(tmp_path):
    plain = _search(_rdb(_url(tmp_path / "plain.db")))
    cached = _search(StudyCache(_rdb(_url(tmp_path / "cached.db"))))
    assert [t.params for t in cached.trials] == [t.params for t in plain.trials]
    assert len({str(t.params) for t in cached.trials}) == 40  # TPE drew, it did not repeat the first points
    stored_plain, stored_cached = _as_stored(_url(tmp_path / "plain.db")), _as_stored(_url(tmp_path / "cached.db"))
    for a, b in zip(stored_plain, stored_cached, strict=True):
        assert (a.number, a.state, a.values, a.params, a.distributions, a.user_attrs, a.system_attrs,
                a.intermediate_values) == (b.number, b.state, b.values, b.params, b.distributions, b.user_attrs,
                                           b.system_attrs, b.intermediate_values)
    assert cached.trials == stored_cached  # what the driver sees is what the database holds, times included


def test_asks_do_not_read_the_running_trials_back(tmp_path):
    """Optuna's own cached storage reads every running trial back at each ask; StudyCache reads
    the study once per refresh_s, and then none of its own trials."""
    counts = {}
    for name, storage in (("optuna", None), ("cache", StudyCache), ("cache, refresh always", StudyCache)):
        backend = CountingRDBStorage(_url(tmp_path / f"{len(counts)}.db"))
        wrapped: Any = (optuna.storages._CachedStorage(backend) if storage is None else
                        StudyCache(backend, refresh_s=0.0 if "always" in name else 3600.0))
        study = optuna.create_study(storage=wrapped, study_name="s", sampler=make_sampler("tpe", seed=0, n_startup=4))
        for _ in range(10):  # a study of finished trials
            trial = study.ask()
            _sample(trial)
            study.tell(trial, _score(trial, 0))
        for _ in range(16):  # 16 running at once
            _sample(study.ask())
        backend.reads = backend.rows = 0
        for _ in range(20):  # 20 asks more, with 16 to 35 running
            _sample(study.ask())
        counts[name] = (backend.reads, backend.rows)
    reads, rows = counts["optuna"]
    assert reads >= 3 * 20 and rows >= reads * 16  # three reads an ask or more, each of every running trial
    assert counts["cache"] == (0, 0)  # read once, before
    assert counts["cache, refresh always"][1] == 0  # a read at each ask, of nothing: no trial is another's


def test_another_drivers_trials_are_seen_after_refresh_s(tmp_path):
    url = _url(tmp_path / "s.db")
    lazy = optuna.create_study(storage=StudyCache(_rdb(url), refresh_s=3600.0), study_name="s")
    eager = optuna.load_study(storage=StudyCache(_rdb(url), refresh_s=0.0), study_name="s")
    other = optuna.load_study(storage=url, study_name="s")  # another driver, Optuna's own storage
    mine = lazy.ask()
    mine.suggest_float("x", 0, 1)
    assert [t.state for t in lazy.trials] == [t.state for t in eager.trials] == [TrialState.RUNNING]
    theirs = other.ask()
    theirs.suggest_float("x", 0, 1)
    other.add_trial(optuna.trial.create_trial(params={"x": 0.5}, distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                                              value=2.0))
    assert len(lazy.trials) == 1  # read before the other's trials came, and not again within the hour
    assert [(t.number, t.state) for t in eager.trials] == [(0, TrialState.RUNNING), (1, TrialState.RUNNING),
                                                           (2, TrialState.COMPLETE)]
    other.tell(theirs, 1.0)
    lazy.tell(mine, 3.0)
    assert eager.trials[1].state == TrialState.COMPLETE and eager.trials[1].values == [1.0]  # its running trial is read again
    assert eager.trials[0].values == [3.0]
    assert [t.state for t in lazy.trials] == [TrialState.COMPLETE]  # its own trial, told


def test_a_trial_another_driver_takes_or_finishes_is_no_longer_own(tmp_path):
    url = _url(tmp_path / "s.db")
    study = optuna.create_study(storage=StudyCache(_rdb(url), refresh_s=3600.0), study_name="s")
    other = optuna.load_study(storage=url, study_name="s")
    study.enqueue_trial({"x": 0.25})
    study.enqueue_trial({"x": 0.75})
    assert [t.state for t in study.trials] == [TrialState.WAITING] * 2
    taken = other.ask()  # the other driver runs the first point
    assert taken.suggest_float("x", 0, 1) == 0.25
    mine = study.ask()  # this one tries the first, finds it taken, runs the second
    assert mine.suggest_float("x", 0, 1) == 0.75
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 2
    other.tell(taken, 1.0)
    other.tell(mine.number, state=TrialState.FAIL)  # as study_db.fail_orphans does
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        mine.report(0.5, 1)
    assert study.trials[1].state == TrialState.FAIL  # read back when the write was refused
    assert study.trials[0].state == TrialState.RUNNING  # another's: read again after refresh_s only


def test_pickled_it_owns_nothing_and_reads_the_study_again(tmp_path):
    url = _url(tmp_path / "s.db")
    study = optuna.create_study(storage=StudyCache(RedactedRDBStorage(url), refresh_s=3600.0), study_name="s")
    done = study.ask()
    done.suggest_float("x", 0, 1)
    study.tell(done, 1.0)
    orphan = study.ask()
    orphan.suggest_float("x", 0, 1)
    orphan.set_user_attr("experiment", "/x/e")
    saved = pickle.dumps(study)  # as Ray saves the searcher, trial running
    optuna.load_study(storage=url, study_name="s").tell(orphan.number, state=TrialState.FAIL)  # resume's fail_orphans
    assert study.trials[1].state == TrialState.RUNNING  # its own copy, until it writes it again
    restored = pickle.loads(saved)
    storage = restored._storage
    assert isinstance(storage, StudyCache) and isinstance(storage._backend, RedactedRDBStorage)
    assert storage.refresh_s == 3600.0
    assert [(t.state, t.user_attrs) for t in restored.trials] == [(TrialState.COMPLETE, {}),
                                                                    (TrialState.FAIL, {"experiment": "/x/e"})]
    assert restored.trials == _as_stored(url)
    grown = restored.ask()  # and the restored study searches on
    grown.suggest_float("x", 0, 1)
    restored.tell(grown, 0.5)
    assert [t.number for t in _as_stored(url)] == [0, 1, 2]


def test_a_trial_it_writes_that_it_did_not_create_becomes_own(tmp_path):
    """A resumed search reports into trials asked before it was pickled: read back once, then
    written through."""
    url = _url(tmp_path / "s.db")
    backend = CountingRDBStorage(url)
    study = optuna.create_study(storage=StudyCache(backend, refresh_s=3600.0), study_name="s")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    restored = pickle.loads(pickle.dumps(study))
    assert restored.trials[0].state == TrialState.RUNNING
    storage = restored._storage
    for step in range(1, 6):
        storage.set_trial_intermediate_value(trial._trial_id, step, 0.1 * step)
    assert storage._own == {trial._trial_id}
    assert restored.trials[0].intermediate_values == {s: 0.1 * s for s in range(1, 6)}
    assert restored.trials == _as_stored(url)
    mine = storage.get_trial(trial._trial_id)
    mine.intermediate_values[1] = 9.0  # optuna.Trial edits the trial it is given
    assert storage.get_trial(trial._trial_id).intermediate_values[1] == pytest.approx(0.1)


def test_a_new_study_in_a_deleted_ones_place_is_read_afresh(tmp_path):
    """SQLite gives a new study, and its trials, the ids of a deleted one."""
    url = _url(tmp_path / "s.db")
    storage = StudyCache(_rdb(url), refresh_s=3600.0)
    first = optuna.create_study(storage=storage, study_name="a")
    for _ in range(3):
        first.ask().suggest_float("x", 0, 1)
    assert len(first.trials) == 3
    optuna.delete_study(study_name="a", storage=storage)
    second = optuna.create_study(storage=storage, study_name="b")
    optuna.load_study(storage=url, study_name="b").add_trial(optuna.trial.create_trial(
        params={"x": 0.5}, distributions={"x": optuna.distributions.FloatDistribution(0, 1)}, value=1.0))
    assert second._study_id == first._study_id  # the id reused
    assert [(t.state, t.params) for t in second.trials] == [(TrialState.COMPLETE, {"x": 0.5})]
    assert storage._own == set()


def test_a_new_search_of_a_deleted_uri_experiment_drops_the_study_its_cache_kept(tmp_path, monkeypatch):
    """An s3:// / gs:// / file:// experiment's study is a local file under the cache, named by the
    URI: after the experiment is deleted from storage, a new search of the same URI found it and
    was refused as "an earlier search of this name". The search (holding the experiment's lock,
    having checked nothing of it is on storage) drops it first."""
    import optuna

    from gan_core.errors import GansearchError
    from search.study_db import check_study_name, discard_orphan_copy, study_url

    monkeypatch.setenv("GANSEARCH_CACHE", str(tmp_path / "cache"))
    url = study_url(f"file://{tmp_path}/runs/deleted", None)
    assert url.startswith(f"sqlite:///{tmp_path / 'cache' / 'optuna'}")
    optuna.create_study(study_name="deleted", storage=url)
    with pytest.raises(GansearchError, match="already exists"):
        check_study_name(url, "deleted", join=False, space_text="x", objectives=1)
    assert discard_orphan_copy(url) and not discard_orphan_copy(url)
    assert not list((tmp_path / "cache" / "optuna").iterdir())  # with its -wal and -shm files
    check_study_name(url, "deleted", join=False, space_text="x", objectives=1)  # a new study: no error
