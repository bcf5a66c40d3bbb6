"""TPE's window (search/tpe_window.py): Optuna's TPE below it, the latest trials only past it."""

from __future__ import annotations

import pickle

import optuna
import pytest

from search.samplers import TPE_HISTORY, make_sampler
from search.tpe_window import WindowedTPESampler

optuna.logging.set_verbosity(optuna.logging.ERROR)
X = optuna.distributions.FloatDistribution(0.0, 1.0)
Y = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)


def _told(study: optuna.Study, points: list[tuple[float, float, float]]) -> None:
    for x, y, value in points:
        study.add_trial(optuna.trial.create_trial(params={"x": x, "y": y}, distributions={"x": X, "y": Y},
                                                  value=value))


def _ask(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.suggest_float("y", 1e-4, 1e-1, log=True)
    return trial


def test_the_search_samples_with_a_windowed_tpe_that_pickles():
    sampler = make_sampler("tpe", seed=3, n_startup=5)
    assert isinstance(sampler, WindowedTPESampler) and sampler.history == TPE_HISTORY
    again = pickle.loads(pickle.dumps(sampler))  # Ray saves the searcher, its sampler with it
    assert isinstance(again, WindowedTPESampler) and again.history == TPE_HISTORY
    assert type(make_sampler("tpe", seed=3, n_startup=5, tpe_history=None)) is optuna.samplers.TPESampler
    with pytest.raises(ValueError, match="history must be at least 1"):
        WindowedTPESampler(history=0)


def test_below_its_window_it_draws_what_optunas_tpe_draws():
    draws = []
    for sampler in (optuna.samplers.TPESampler(seed=7, n_startup_trials=5),
                    WindowedTPESampler(history=100, seed=7, n_startup_trials=5)):
        study = optuna.create_study(sampler=sampler)
        _told(study, [(i / 30, 10 ** (-4 + 3 * ((i * 7) % 30) / 30), abs(i / 30 - 0.3)) for i in range(30)])
        running = [_ask(study) for _ in range(4)]  # the constant liar sees these
        for trial in running:
            study.tell(trial, abs(trial.params["x"] - 0.3))
        draws.append([t.params for t in running] + [_ask(study).params for _ in range(6)])
    assert draws[0] == draws[1]
    assert len({round(p["x"], 9) for p in draws[0]}) == 10  # sampled, not a constant


def test_past_its_window_it_models_only_the_latest_trials():
    # 200 old trials: low x best (-1), high x bad. 60 latest: the other way round (0 against 10).
    old = [(0.2 * i / 100, 1e-3, -1.0) if i < 100 else (0.8 + 0.2 * (i - 100) / 100, 1e-3, 10.0) for i in range(200)]
    latest = [(0.8 + 0.2 * i / 30, 1e-3, 0.0) if i < 30 else (0.2 * (i - 30) / 30, 1e-3, 10.0) for i in range(60)]
    mean_x = {}
    for name, sampler in (("all", optuna.samplers.TPESampler(seed=0, n_startup_trials=5)),
                          ("window", WindowedTPESampler(history=60, seed=0, n_startup_trials=5))):
        study = optuna.create_study(sampler=sampler)
        _told(study, old + latest)
        xs = []
        for _ in range(10):
            trial = _ask(study)
            xs.append(trial.params["x"])
            study.tell(trial, 0.0 if trial.params["x"] > 0.5 else 10.0)  # what the latest trials say
        mean_x[name] = sum(xs) / len(xs)
    assert mean_x["all"] < 0.4 < 0.6 < mean_x["window"], mean_x


def test_a_two_objective_search_past_its_window():
    # --cost: TPE splits by non-domination rank and weighs the good trials by hypervolume, over the window.
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=WindowedTPESampler(history=20, seed=1, n_startup_trials=5))
    for i in range(60):
        trial = _ask(study)
        x = trial.params["x"]
        study.tell(trial, [x, (1 - x) ** 2 + (i % 3) * 0.01])
    assert len(study.best_trials) >= 2
    assert all(0.0 <= t.params["x"] <= 1.0 for t in study.trials)
