"""Growing a search (resume --trials), seed-robust winners (review --confirm) and the
compute-aware two-objective search (--cost), on a real local Ray with tiny trials."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TINY = """
base: mnist-mlp
budget: {{images: {images}, eval_every: 512, grace_images: 512}}
params:
  optim.d.lr: {{float: [1.0e-4, 1.0e-2], log: true}}
  model.g_depth: {{int: [1, 3]}}
  model.width: {{choice: [0.03125, 0.0625]}}
  model.latent_dim: 16
  train.batch_size: 32
  train.log_every: 256
  train.sample_every: 1024
  train.checkpoint_every: 0
  eval.n: 64
search: {{scheduler: fifo}}
"""


def tiny_space(tmp_path: Path, name: str, images: int = 1024):
    from search.space import load_space

    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.format(images=images))
    return load_space(path)


def command(*argv: str) -> int:
    """Run one gansearch command's own parser and ``run`` (Ray already started by the fixture)."""
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog="gansearch")
    importlib.import_module(f"search.commands.{argv[0]}").add_parser(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return int(args.run(args) or 0)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.shutdown()
    env = {k: v for k, v in __import__("os").environ.items() if k in ("GANSEARCH_DATA", "GANSEARCH_CACHE")}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env | {"PYTHONPATH": str(REPO)}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def two_objective(local_ray, tmp_path_factory):
    """A real two-objective search of two tiny trials (score vs generator parameters), run through
    the search command; the tests below grow it, then review it."""
    tmp = tmp_path_factory.mktemp("mo")
    space_file = tmp / "mo.yaml"
    space_file.write_text(TINY.format(images=1024))
    assert command("search", "--space", str(space_file), "--name", "mo", "--storage", str(tmp / "runs"),
                   "--trials", "2", "--seed", "5", "--cost", "params", "--quiet") == 0
    return tmp / "runs" / "mo"


def test_resume_trials_adds_trials_warm_started_from_the_stored_ones(two_objective, capsys):
    import optuna

    from gan_core.errors import GansearchError
    from search.experiment import open_experiment
    from search.space import load_space

    exp = two_objective
    first = open_experiment(exp)
    assert [t.status for t in first.trials] == ["completed"] * 2
    before = {t.trial_id: digest(Path(t.path) / "result.json") for t in first.trials}
    capsys.readouterr()

    assert command("resume", str(exp), "--trials", "2") == 0  # two more
    out = capsys.readouterr().out
    assert "(4 trials: 4 completed)" in out

    grown = open_experiment(exp)
    ids = [t.trial_id for t in grown.trials]
    assert len(ids) == len(set(ids)) == 4 and set(before) < set(ids)
    for tid, d in before.items():  # the first two were not run again
        assert digest(Path(grown.trial(tid).path) / "result.json") == d
    state = json.loads((exp / "gansearch.json").read_text())
    assert state["options"]["trials"] == 4 and state["grown"][0]["added"] == 2
    assert state["options"]["cost"] == "params"
    summary = json.loads((exp / "summary.json").read_text())
    assert len(summary["trials"]) == 4 and not summary["interrupted"]

    # One study holds all four, numbered on from the first two (so the new trials got new seeds).
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{exp / 'optuna.db'}")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["tune_trial_id"] for t in trials} == set(ids)
    assert len({t.results[-1]["trial_seed"] for t in grown.trials}) == 4

    # TPE drew trial 2 from the two stored trials: the same seeded sampler over a study holding
    # just them proposes its values, and one over an empty study does not.
    space = load_space(exp / "space.yaml")

    def replay(stored: list) -> dict:
        memory = optuna.create_study(directions=study.directions, sampler=optuna.samplers.TPESampler(
            seed=5 + 2, n_startup_trials=space.n_startup_trials(4)))
        for t in stored:
            memory.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                       values=t.values))
        trial = memory.ask()
        space.define_by_run(5)(trial)
        return trial.params

    assert replay(trials[:2]) == trials[2].params
    assert replay([]) != trials[2].params

    with pytest.raises(GansearchError, match="--trials: must be >= 1"):  # growing by nothing
        command("resume", str(exp), "--trials", "0")


def test_two_objective_search_pareto_front_and_confirmed_winner(two_objective, capsys):
    import optuna

    from gan_core.config import load_config
    from search.experiment import CONFIRM_FILE, BestPoint, open_experiment

    exp = two_objective
    # One study, two directions: the score and the generator's parameter count, both minimised.
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{exp / 'optuna.db'}")
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE] * 2
    record = open_experiment(exp)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == len(record.trials) >= 2
    for t in done:  # told the best score and the cost the trial measured
        trial = record.trial(t.user_attrs["tune_trial_id"])
        assert t.values == [trial.score, trial.last["g_params"]]
        assert trial.last["images_per_s"] > 0

    # review lists the front (checked here by brute force) and draws it; --confirm re-trains the
    # top two besides the base point, and the base point, on two further seeds, two processes at
    # once, and --export takes the best mean.
    values = {t.user_attrs["tune_trial_id"]: t.values for t in done}
    front = {a for a, (q, c) in values.items()
             if not any(q2 <= q and c2 <= c and (q2 < q or c2 < c) for b, (q2, c2) in values.items() if b != a)}
    plots, best_yaml = exp.parent / "plots", exp.parent / "best.yaml"
    capsys.readouterr()
    assert command("review", str(exp), "--plots", str(plots), "--confirm", "2", "--seeds", "2", "--jobs", "2",
                   "--export", str(best_yaml), "--json", str(exp.parent / "board.json")) == 0
    out = capsys.readouterr().out
    listed = out.split("Pareto front", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert {line.split()[0] for line in listed} == front, out
    png = (plots / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    report = json.loads((exp / CONFIRM_FILE).read_text())
    base = record.base_trial()
    assert base is not None  # the space's base point, evaluated first
    top2 = [t.trial_id for t in record.ranked() if t.trial_id != base.trial_id][:2]  # besides it
    assert sorted(c["trial_id"] for c in report["configs"]) == sorted([*top2, base.trial_id])
    assert [c["trial_id"] for c in report["configs"] if c["base"]] == [base.trial_id]
    for c in report["configs"]:
        assert len(c["seeds"]) == len(set(c["seeds"])) == 2 and len(c["scores"]) == 2
        assert c["mean"] == pytest.approx(sum(c["scores"]) / 2)
        assert c["sd"] == pytest.approx(abs(c["scores"][0] - c["scores"][1]) / 2 ** 0.5)
        assert c["images"] == [1024, 1024]
        for seed in c["seeds"]:  # real runs of the trial's config with the further seed
            cfg = load_config(exp / "confirm" / c["trial_id"] / f"seed_{seed}" / "config.yaml")
            assert cfg.train.seed == seed and cfg.model.g_depth == record.trial(c["trial_id"]).config.model.g_depth
    means = {c["trial_id"]: c["mean"] for c in report["configs"]}
    assert report["best"] == min(means, key=means.get)
    assert BestPoint.from_config_text(best_yaml.read_text()).trial == report["best"]
    confirmed = exp / "confirmed_config.yaml"  # also kept in the experiment, ready for retrain
    assert report["config"] == str(confirmed) and "# confirmed: score " in confirmed.read_text()
    assert BestPoint.from_config_text(confirmed.read_text()).trial == report["best"]
    assert load_config(confirmed).model == record.trial(report["best"]).config.model
    # The leaderboard marks the confirmed rows with mean±sd (2 seeds), and compares the best
    # confirmed config other than the base point with the base point on those seeds.
    board = out.split("confirmed on 2 further seeds", 1)[0]
    assert " confirmed " in board and f"{means[report['best']]:.4g}±" in board and "(2 seeds)" in board
    rival = min((c for c in report["configs"] if not c["base"]), key=lambda c: c["mean"])
    (line,) = [x for x in board.splitlines() if x.startswith("against the base point")]
    assert line.startswith("against the base point, over 2 further seeds each") and rival["trial_id"] in line
    (base_row,) = [c for c in report["configs"] if c["base"]]
    beaten = base_row["mean"] - rival["mean"] > max(rival["sd"], base_row["sd"])
    assert ("the search beat its base" in line) == beaten
    assert len(open_experiment(exp).trials) == len(record.trials)  # the confirmation runs are not trials
    # --json carries the confirmation and both costs of every trial.
    rows = {r["trial"]: r for r in json.loads((exp.parent / "board.json").read_text())["trials"]}
    for c in report["configs"]:
        assert rows[c["trial_id"]]["confirmed_mean"] == pytest.approx(c["mean"])
        assert rows[c["trial_id"]]["confirmed"].endswith("(2 seeds)")
    for tid, (_, cost) in values.items():
        assert rows[tid]["g_params"] == cost and rows[tid]["images_per_s"] > 0


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    from search.experiment import TrialStatus
    from search.objective import Direction, Objective
    from search.pareto import Point, front

    done, stopped = TrialStatus.COMPLETED, TrialStatus.STOPPED
    pts = [Point("a", 5.0, 100, done), Point("b", 4.0, 300, done),
           Point("c", 6.0, 300, done),  # worse and no cheaper than b
           Point("d", 4.0, 300, done),  # equal to b: neither dominates
           Point("e", 9.0, 50, done), Point("f", 5.0, 120, stopped)]  # f: a is as good and cheaper
    score, params = Objective(), Objective("g_params", Direction.MIN)
    assert [p.trial_id for p in front(pts, score, params)] == ["e", "a", "b", "d"]  # cheapest first
    # images/s is a cost to maximise: the fastest trials are the cheap ones.
    assert [p.trial_id for p in front(pts, score, Objective("images_per_s", Direction.MAX))] == ["b", "d"]


def test_confirmed_winner_against_the_base_point_counts_one_seeds_spread():
    from search.confirm import Confirmed, against_the_base
    from search.objective import Direction, Objective

    base = Confirmed("b", 6.0, [1, 2, 3], [6.0, 6.5, 5.5], base=True)  # mean 6, sd 0.5
    clear = Confirmed("w", 4.0, [4, 5, 6], [4.0, 4.2, 3.8])  # mean 4, sd 0.2: 2 apart, > 0.5
    close = Confirmed("c", 5.0, [7, 8, 9], [5.0, 6.5, 5.3])  # mean 5.6: 0.4 apart, < its sd 0.79
    line = against_the_base([close, base, clear], Objective())
    assert line is not None and "(trial w)" in line and "33% better" in line and "the search beat its base" in line
    line = against_the_base([close, base], Objective())
    assert line is not None and "within one seed's spread (sd 0.79)" in line
    assert "did not beat" in (against_the_base([base, Confirmed("x", 1.0, [1], [7.0])], Objective()) or "")
    # Higher is better: the same numbers read the other way round.
    assert "did not beat" in (against_the_base([base, clear], Objective("cis", Direction.MAX)) or "")
    assert against_the_base([clear, close], Objective()) is None  # the base point was not confirmed
    assert against_the_base([base], Objective()) is None  # nothing else was


def test_confirm_marks_and_seeds():
    from search.confirm import Confirmed, confirm_seed

    c = Confirmed("t1", 3.0, [1, 2, 3], [2.0, 4.0, None])
    assert c.mean == 3.0 and c.sd == pytest.approx(2 ** 0.5) and c.mark() == "3±1.4 (2 seeds, 1 diverged)"
    assert Confirmed("t2", None, [1], [None]).mark() == "diverged on all 1 seeds"
    seeds = {confirm_seed("t1", i) for i in range(3)} | {confirm_seed("t2", 0)}
    assert len(seeds) == 4 and all(0 <= s < 2 ** 31 for s in seeds)


def test_resume_of_a_state_file_without_its_keys_is_one_line(two_objective, tmp_path, capsys):
    """An experiment whose gansearch.json lost keys (a partial copy) is refused in one line, exit 2."""
    import shutil

    from search.cli import main

    copy = tmp_path / "mo"
    shutil.copytree(two_objective, copy)
    state = json.loads((copy / "gansearch.json").read_text())
    del state["scheduler"], state["options"]["gpus_per_trial"]
    (copy / "gansearch.json").write_text(json.dumps(state))
    assert main(["resume", str(copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gansearch.json: no scheduler, options.gpus_per_trial" in err


def test_growing_a_pbt_search_is_one_line_before_anything_is_touched(two_objective, tmp_path, capsys):
    """resume --trials of a PBT search says PBT cannot grow and what to do (issue 23 item 1: it
    gave a false 'cut short' error about state files PBT never writes)."""
    import shutil

    from search.cli import main

    copy = tmp_path / "pbt"
    shutil.copytree(two_objective, copy)
    state = json.loads((copy / "gansearch.json").read_text())
    state["scheduler"] = "pbt"
    (copy / "gansearch.json").write_text(json.dumps(state))
    before = {p.relative_to(copy): digest(p) for p in copy.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["resume", str(copy), "--trials", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a PBT search cannot grow" in err and "new search" in err, err
    assert {p.relative_to(copy): digest(p) for p in copy.rglob("*") if p.is_file()} == before


def test_an_experiment_written_before_search_raytune_resumes(local_ray, tmp_path, capsys):
    """tests/fixtures/search_2026_12 was written by the code before the Ray modules moved into
    search/raytune/: Ray's pickles in it (the Tuner's searcher and callbacks, each trial's name
    function) name the old module paths. Resuming it restores them (search/raytune/legacy.py),
    runs nothing again, and ends as that code recorded it."""
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(REPO / "tests" / "fixtures" / "search_2026_12", copy)
    old = json.loads((copy / "summary.json").read_text())
    assert b"search.tune_searcher" in (copy / "tuner.pkl").read_bytes()  # what the fixture stands for
    capsys.readouterr()
    assert command("resume", str(copy)) == 0
    out = capsys.readouterr().out
    assert "(3 trials: 2 completed, 1 diverged)" in out
    assert f"best trial: {old['best']['trial_id']}  score = {old['best']['score']:.6g} (min)" in out
    # The old pickled StatusLines speak, and count the trials restored finished (none ran again).
    assert "3/3 done (2 completed, 0 stopped early, 1 failed)" in out
    new = json.loads((copy / "summary.json").read_text())
    assert [(t["trial_id"], t["status"], t["score"]) for t in new["trials"]] == \
           [(t["trial_id"], t["status"], t["score"]) for t in old["trials"]]
    assert not new["interrupted"] and new["counts"] == old["counts"]
