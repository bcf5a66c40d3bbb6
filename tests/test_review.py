"""review on a tiny real search (Ray Tune + Optuna + the real loop and evaluator, no mocks):
leaderboard, statuses, export round trip into retrain, importance, the Lucic et al. study, plots,
and experiments that are running, interrupted or copied elsewhere."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image
from ray.tune import Callback

from gan_core.config import load_config, to_dict
from search import review
from search.cli import main
from search.experiment import BestPoint, TrialRecord, TrialStatus

REPO = Path(__file__).resolve().parents[1]

# Two architectures x two losses (the Lucic groups), a learning rate, and a generator lr choice
# whose 1e30 point diverges at once. ASHA stops some trials at 256 images.
SPACE = """
base: mnist-mlp
budget: {images: 512, eval_every: 256, grace_images: 256}
params:
  optim.d.lr: {float: [1.0e-4, 1.0e-2], log: true}
  optim.g.lr: {choice: [0.0002, 0.0005, 0.001, 0.002, 1.0e+30]}
  model.arch:
    choice: [mlp, dcgan-upsample]
    when:
      mlp: {model.g_depth: {int: [1, 2]}}
  loss.name: {choice: [bce, lsgan]}
  model.width: 0.0625
  model.latent_dim: 16
  train.batch_size: 32
  train.log_every: 256
  train.sample_every: 512
  train.checkpoint_every: 0
  eval.n: 64
points:
  - {optim.g.lr: 1.0e+30}
search: {trials: 6, reduction_factor: 2}
"""


class MidSearchReview(Callback):
    """Reviews the experiment folder from the driver while the search is running: a trial is held
    inside its training after its first report (tests/ray_hooks.py) until the experiment folder,
    which the driver copies from its staging folder every few seconds, shows that report; the
    review then sees a running trial whatever the machine's speed, and lets it go on."""

    def __init__(self, exp: Path, hold: Path) -> None:
        self.exp = exp
        self.hold = hold
        self.text: str | None = None
        self.statuses: dict[str, str] = {}

    def _look(self) -> None:
        from tests import ray_hooks

        held = ray_hooks.held(self.hold)
        if self.text is not None or held is None:
            return
        rows = self.exp / held["trial"] / "result.json"
        if not rows.is_file() or not rows.read_text().strip():
            return
        exp = review.load_experiment(self.exp)
        self.text = review.format_leaderboard(exp)
        self.statuses = {t.trial_id: t.status for t in exp.trials}
        ray_hooks.release(self.hold)

    def on_step_begin(self, iteration, trials, **info):
        self._look()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._look()


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    import ray

    from search.experiment import SearchOptions
    from search.raytune.tune import run_search
    from search.space import load_space

    root = tmp_path_factory.mktemp("review")
    (root / "tiny.yaml").write_text(SPACE)
    space = load_space(root / "tiny.yaml")
    from tests import ray_hooks

    hold = root / "hold"
    ray_hooks.hold_after(hold, 1)
    env = {k: os.environ[k] for k in ("GANSEARCH_DATA", "GANSEARCH_CACHE") if k in os.environ}
    ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {**env, "PYTHONPATH": str(REPO), ray_hooks.HOLD_ENV: str(hold)},
                          "worker_process_setup_hook": "tests.ray_hooks.setup"})
    try:
        live = MidSearchReview(root / "runs" / "tiny", hold)
        outcome = run_search(space, SearchOptions(name="tiny", storage=str(root / "runs"), seed=1,
                                                  max_failures=0, verbose=0), callbacks=[live])
    finally:
        ray.shutdown()
    return Path(outcome.experiment_path), outcome, live


def test_statuses_agree_with_the_search(search):
    path, outcome, _ = search
    exp = review.load_experiment(path)
    assert len(exp.trials) == 6
    ours = {t.trial_id: (t.status, t.score) for t in exp.trials}
    theirs = {r.trial_id: (r.status, r.score) for r in outcome.rows}
    assert ours == theirs  # read from the files alone, the same as search/tune.py's Ray-based view
    assert exp.count("diverged") >= 1 and exp.count("completed") >= 1 and exp.count("failed") == 0
    assert exp.best().trial_id == outcome.best.trial_id
    assert [p.key for p in exp.searched] == ["optim.d.lr", "optim.g.lr", "model.arch", "model.g_depth",
                                             "loss.name"]


def test_leaderboard(search, capsys):
    path, outcome, _ = search
    assert main(["review", str(path)]) == 0
    out = capsys.readouterr().out
    board = out.split("hyperparameter importance")[0]
    header = next(line for line in board.splitlines() if line.startswith("rank"))
    for col in ("trial", "score", "at", "last", "cis", "precision", "recall", "d.lr", "g.lr", "arch", "g_depth",
                "loss", "images", "status"):
        assert col in header.split(), col
    assert "score = cfd_64" in board.splitlines()[0]
    first = next(line for line in board.splitlines() if line.lstrip().startswith("1 "))
    assert outcome.best.trial_id in first
    diverged = next(r for r in outcome.rows if r.status == "diverged")
    assert f"{diverged.trial_id} diverged: non-finite" in board
    for r in outcome.rows:
        if r.status == "stopped":
            assert f"{r.trial_id} stopped early: at {r.images_seen} of 512 images" in board
    assert f"best: trial {outcome.best.trial_id}" in board
    # How the winner compares with the base point, which Optuna's study holds as its first trial.
    import optuna

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path / 'optuna.db'}")
    base_id = study.trials[0].user_attrs["tune_trial_id"]
    exp = review.load_experiment(path)
    assert exp.base_trial().trial_id == base_id
    base = next(r for r in outcome.rows if r.trial_id == base_id)
    line = next(x for x in board.splitlines() if x.startswith("against the base point:"))
    if base_id == outcome.best.trial_id:
        others = len(exp.ranked()) - 1
        assert f"the base point (trial {base_id}) is the winner; none of the {others} other" in line, line
    elif base.score is None:
        assert f"trial {base_id} ran it and has no finite score" in line, line
    elif base.status == "stopped" and exp.best().best_images > base.images_seen:
        # Stopped early: the two compared after the same number of images, the winner's best so far.
        early = min(r["score"] for r in exp.best().results if r["images_seen"] <= base.images_seen)
        word = "better" if early < base.score else "worse"
        assert (f"after {base.images_seen} images, where the scheduler stopped it (trial {base_id}), its score "
                f"{review.fmt(base.score)} vs the winner's {review.fmt(early)} ("
                f"{abs(early - base.score) / abs(base.score):.0%} {word})") in line, line
        assert f"went on to {review.fmt(outcome.best.score)} after {exp.best().best_images} images" in line, line
    else:
        gain = abs(outcome.best.score - base.score) / abs(base.score)
        assert f"vs {review.fmt(base.score)} for the base point (trial {base_id}" in line, line
        assert f"{gain:.0%} better" in line, line
    # Importance uses the trials that trained the whole budget only (ASHA-stopped ones are PRUNED).
    done, early = outcome.count("completed"), outcome.count("stopped")
    note = (f"Optuna PED-ANOVA importance over {done} trials at the full budget" if done >= 5
            else f"too few Optuna trials at the full budget for importance ({done}, need 5; {early} stopped early)")
    assert note in out
    assert "Are GANs Created Equal?" in out


def test_export_round_trips_into_retrain(search, tmp_path, capsys):
    path, outcome, _ = search
    assert main(["review", str(path), "--export", str(tmp_path / "best.yaml")]) == 0
    assert f"exported trial {outcome.best.trial_id}" in capsys.readouterr().out
    # The export records the trial's best point in comments; the config itself is unchanged.
    point = BestPoint.from_config_text((tmp_path / "best.yaml").read_text())
    top = outcome.best
    assert (point.trial, point.score, point.images, point.last_score, point.images_seen, point.checkpoint) == \
           (top.trial_id, top.score, top.best_images, top.last_score, top.images_seen, top.checkpoint)
    assert point.experiment == str(path) and point.metric == "score" and point.mode == "min"
    cfg = load_config(tmp_path / "best.yaml")
    best = load_config(path / "best_config.yaml")  # written by the search itself
    assert {k: v for k, v in to_dict(cfg).items() if k != "name"} == \
           {k: v for k, v in to_dict(best).items() if k != "name"}
    assert cfg.name == f"tiny-{outcome.best.trial_id}" and cfg.train.images == 512
    assert main(["retrain", str(tmp_path / "best.yaml"), "--out", str(tmp_path / "again"), "--steps", "2",
                 "--no-eval", "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["status"] == "completed" and line["images_seen"] == 2 * cfg.train.batch_size
    # retrain's report: the best score the trial reached in the search and at how many images.
    assert line["search"] == {"experiment": str(path), "trial": top.trial_id, "metric": "score",
                              "best_score": top.score, "best_images": top.best_images,
                              "last_score": top.last_score, "last_images": top.images_seen}

    other = next(r for r in outcome.rows if r.trial_id != outcome.best.trial_id and r.status != "diverged")
    assert main(["review", str(path), "--export", str(tmp_path / "t.yaml"), "--trial", f"trial_{other.trial_id}"]) == 0
    capsys.readouterr()
    data = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert data["optim"]["d"]["lr"] == other.params["optim.d.lr"]
    assert data["train"]["seed"] == other.metrics["trial_seed"]


def test_each_trial_keeps_its_best_point(search):
    """Ranking, the record and the kept checkpoints follow each trial's best evaluation."""
    from gan_core.checkpoint import load_run

    path, outcome, _ = search
    exp = review.load_experiment(path)
    assert {t.trial_id: (t.score, t.best_images, t.last_score) for t in exp.trials} == \
           {r.trial_id: (r.score, r.best_images, r.last_score) for r in outcome.rows}
    for t in exp.ranked():
        scores = [(r["score"], r["images_seen"]) for r in results(t.path)]
        assert t.score == min(s for s, _ in scores) and t.last_score == scores[-1][0]
        assert t.best_images == next(i for s, i in scores if s == t.score)
        # The best point's checkpoint is on disk (kept by score), and so is the latest.
        assert load_run(t.checkpoint).images_seen == t.best_images
        assert load_run(t.last_checkpoint).images_seen == t.images_seen
    assert [t.score for t in exp.ranked()] == sorted(t.score for t in exp.ranked())
    summary = json.loads((path / "summary.json").read_text())
    assert summary["best"]["checkpoint"] == outcome.best.checkpoint
    assert summary["best"]["best_images"] == outcome.best.best_images


def test_stopped_early_trials_carry_their_budget_in_the_study(search):
    import optuna

    path, outcome, _ = search
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path / 'optuna.db'}")
    by_id = {t.user_attrs["tune_trial_id"]: t for t in study.trials}
    assert set(by_id) == {r.trial_id for r in outcome.rows}
    states = optuna.trial.TrialState
    for r in outcome.rows:
        t = by_id[r.trial_id]
        assert t.user_attrs["budget_images"] == 512
        if r.status == "diverged":
            assert t.state == states.FAIL
            continue
        assert t.user_attrs["images_seen"] == r.images_seen and t.user_attrs["best_images"] == r.best_images
        assert t.user_attrs["last_score"] == pytest.approx(r.last_score)
        if r.status == "completed":  # told its best score
            assert t.state == states.COMPLETE and t.value == pytest.approx(r.score)
        else:  # stopped early: pruned at the images it reached, its value the last report's
            assert r.status == "stopped" and r.images_seen < 512
            assert t.state == states.PRUNED and t.value == pytest.approx(r.last_score)


def test_plots(search, tmp_path, capsys):
    path, outcome, _ = search
    assert main(["review", str(path), "--plots", str(tmp_path / "p"), "--top", "3"]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names == sorted(["scores.png", "best_vs_time.png", "learning_curves.png", "top_samples.png",
                            "lucic.png", "slice_optim.d.lr.png", "slice_optim.g.lr.png", "slice_model.arch.png",
                            "slice_model.g_depth.png", "slice_loss.name.png"])
    for name in names:
        with Image.open(tmp_path / "p" / name) as im:
            assert im.format == "PNG" and im.width >= 400 and im.height >= 150, name
    with Image.open(tmp_path / "p" / "top_samples.png") as im:  # three labelled 4x4 grids side by side
        assert im.width >= 3 * 4 * 56


def test_lucic_study(search, capsys):
    path, outcome, _ = search
    exp = review.load_experiment(path)
    groups = review.lucic_groups(exp)
    assert [(g.arch, g.loss) for g in groups] == [("mlp", "bce"), ("mlp", "lsgan"),
                                                  ("dcgan-upsample", "bce"), ("dcgan-upsample", "lsgan")]
    assert sum(len(g.scores) for g in groups) == exp.count("completed")
    assert sum(len(g.scores) + g.left_out for g in groups) == len(exp.trials)
    wide = review.lucic_groups(exp, include_stopped=True)
    assert sum(len(g.scores) for g in wide) == exp.count("completed") + exp.count("stopped")
    text = review.format_lucic(exp, groups)
    assert "arch" in text and "n=1" in text and "dcgan-upsample" in text
    # The groups come from the trials' values over the base config, no config file read; each
    # trial's config (read now, on first use) agrees.
    assert not any("config" in vars(t) for t in exp.trials)
    for g in groups:
        members = [t for t in exp.trials if (t.config.model.arch, t.config.loss.name) == (g.arch, g.loss)]
        assert len(members) == len(g.scores) + g.left_out, (g.arch, g.loss)


def test_review_imports_neither_torch_nor_scikit_learn(search):
    """A review reads files: the leaderboard, importance and Lucic table of an experiment load no
    torch (3 s) and no scikit-learn (Optuna's fANOVA imports it; PED-ANOVA does not need it)."""
    path, _, _ = search
    code = ("import sys\nfrom search.cli import main\n"
            f"assert main(['review', {str(path)!r}]) == 0\n"
            "print('LOADED', sorted(m for m in ('torch', 'sklearn', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "hyperparameter importance: " in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "LOADED []"


def test_best_of_n_matches_bootstrap():
    from search.objective import Direction, Objective

    lower, higher = Objective(), Objective("score", Direction.MAX)
    scores = [5.0, 1.0, 3.0, 8.0, 2.0]
    mean, lo, hi = review.best_of_n(scores, 1, lower)
    assert mean == pytest.approx(sum(scores) / 5) and lo == 1.0 and hi == 8.0
    assert review.best_of_n(scores, 50, lower)[0] == pytest.approx(1.0, abs=1e-3)
    rng = random.Random(0)
    for n in (2, 3):
        boot = sum(min(rng.choice(scores) for _ in range(n)) for _ in range(40000)) / 40000
        assert review.best_of_n(scores, n, lower)[0] == pytest.approx(boot, abs=0.05)
    assert review.best_of_n([0.2, 0.9], 2, higher)[0] == pytest.approx(0.9 * 0.75 + 0.2 * 0.25)


def test_review_while_running(search):
    _, _, live = search
    assert live.text is not None and "rank" in live.text  # reviewed mid-search without an error


def results(trial_path) -> list[dict]:
    return [json.loads(line) for line in Path(trial_path, "result.json").read_text().splitlines() if line.strip()]


def test_status_enum_across_a_real_search(search, tmp_path):
    """Every status, read from the folders of a real search: running (mid-search), completed,
    stopped early and diverged trials, and a trial that crashed for good."""
    path, outcome, live = search
    assert TrialStatus.UNFINISHED in live.statuses.values()  # reviewed while trials were running
    exp = review.load_experiment(path)
    assert all(isinstance(t.status, TrialStatus) for t in exp.trials)
    seen = {t.status for t in exp.trials}
    assert {TrialStatus.COMPLETED, TrialStatus.DIVERGED} <= seen and TrialStatus.UNFINISHED not in seen
    for t in exp.trials:
        last = results(t.path)[-1] if results(t.path) else {}
        if t.status is TrialStatus.STOPPED:  # ASHA's stop is the last report's `done`
            assert last["done"] is True and t.images_seen < 512 and t.reason == f"at {t.images_seen} of 512 images"
        if t.status is TrialStatus.COMPLETED:
            assert t.images_seen == 512
        if t.status is TrialStatus.DIVERGED:
            assert t.why.startswith("non-finite") and t.score is None
    # A trial whose worker crashed for good (the search ran with --max-failures 0): its folder as
    # Ray leaves it, error.txt with one entry per crash, and a report short of the budget.
    copy = tmp_path / "crashed"
    shutil.copytree(path, copy)
    victim = next(t for t in exp.trials if t.status is TrialStatus.COMPLETED)
    folder = copy / f"trial_{victim.trial_id}"
    (folder / "result.json").write_text((folder / "result.json").read_text().splitlines()[0] + "\n")
    (folder / "error.txt").write_text("Failure # 1 (occurred at 2026-11-25_16-45-58)\n"
                                      "ray.exceptions.RayActorError: The actor died unexpectedly\n")
    crashed = review.load_experiment(copy).trial(victim.trial_id)
    assert crashed.status is TrialStatus.FAILED and crashed.reason == "RayActorError: The actor died unexpectedly"
    assert crashed not in review.load_experiment(copy).ranked()


def test_interrupted_or_copied_experiment(search, tmp_path, capsys):
    path, outcome, _ = search
    copy = tmp_path / "from-the-cluster"
    shutil.copytree(path, copy)
    # As if the driver died: no summary, no Ray state, no study, and a result line cut in half.
    (copy / "summary.json").unlink()
    (copy / "optuna.db").unlink()
    for f in copy.glob("experiment_state-*.json"):
        f.unlink()
    best = outcome.best.trial_id
    result = copy / f"trial_{best}" / "result.json"
    text = result.read_text()
    result.write_text(text + text.splitlines()[0][:40])
    # And one trial cut off after its first report.
    cut = next((r for r in outcome.rows if r.trial_id != best and len(results(r.path)) >= 2), None)
    if cut is not None:
        cut_result = copy / f"trial_{cut.trial_id}" / "result.json"
        cut_result.write_text(cut_result.read_text().splitlines()[0] + "\n")
    exp = review.load_experiment(copy)
    statuses = {t.trial_id: t.status for t in exp.trials}
    for r in outcome.rows:
        # The files alone tell every fate (ASHA's stop is the report's `done`), except the cut trial's.
        want = "unfinished" if cut is not None and r.trial_id == cut.trial_id else r.status
        assert statuses[r.trial_id] == want, (r.trial_id, r.status, statuses[r.trial_id])
    assert exp.best().trial_id == best
    rows, note = review.importance(exp)
    assert "no Optuna study" in note
    finished = [r for r in outcome.rows if r.status in ("completed", "stopped")]
    (path_copy := tmp_path / "no-study").mkdir()
    shutil.copytree(path, path_copy, dirs_exist_ok=True)
    (path_copy / "optuna.db").unlink()
    rows, note = review.importance(review.load_experiment(path_copy))
    if len(finished) >= 3:  # the fallback: rank correlations over the finished trials
        assert "Spearman" in note and rows and all(0 <= v <= 1 for _, v in rows)
    assert main(["review", str(copy), "--export", str(tmp_path / "b.yaml")]) == 0
    assert "running or interrupted" in capsys.readouterr().out or cut is None


def test_review_of_a_uri_reads_the_same(search, capsys):
    """A URI goes through pyarrow's filesystem, as s3:// and gs:// do (file:// needs no network)."""
    path, _, _ = search
    assert main(["review", str(path)]) == 0
    local = capsys.readouterr().out
    assert main(["review", f"file://{path}"]) == 0
    remote = capsys.readouterr().out
    assert remote.splitlines()[0] == local.splitlines()[0].replace(str(path), f"file://{path}")
    assert remote.splitlines()[1:] == local.splitlines()[1:]


def test_explore_a_trial_folder(search, tmp_path):
    from search.explore import explore

    path, outcome, _ = search
    out = explore(path / f"trial_{outcome.best.trial_id}", "morph", tmp_path / "m.png")[0]
    with Image.open(out) as im:
        assert im.width >= 10 * 112


@pytest.mark.parametrize("what, message", [
    ("missing", "no such experiment folder"),
    ("empty", "not a gansearch experiment (no gansearch.json)"),
    ("trial", "this is one trial's folder; review its experiment"),
    ("uri", "no such experiment folder"),
])
def test_not_an_experiment_is_one_line(search, tmp_path, capsys, what, message):
    path, outcome, _ = search
    (tmp_path / "empty").mkdir()
    arg = {"missing": str(tmp_path / "nope"), "empty": str(tmp_path / "empty"),
           "trial": str(path / f"trial_{outcome.best.trial_id}"), "uri": f"file://{tmp_path}/nope"}[what]
    assert main(["review", arg]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_trial_id(search, tmp_path, capsys):
    path, _, _ = search
    assert main(["review", str(path), "--export", str(tmp_path / "x.yaml"), "--trial", "nope"]) == 2
    assert "--trial: 'nope' is not a trial of" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


# ----------------------------------------------------------------------------- --csv / --json, plot data, Optuna plots


def test_leaderboard_csv_and_json(search, tmp_path, capsys):
    import csv

    path, outcome, _ = search
    assert main(["review", str(path), "--csv", str(tmp_path / "b.csv"), "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert f"written to {tmp_path / 'b.csv'}" in out and f"written to {tmp_path / 'b.json'}" in out
    with open(tmp_path / "b.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["experiment"] == str(path) and doc["metric"] == "score" and doc["mode"] == "min"
    assert doc["budget_images"] == 512
    records = doc["trials"]
    assert len(rows) == len(records) == len(outcome.rows) == 6
    cols = doc["columns"]
    assert list(rows[0]) == cols
    for col in ("rank", "trial", "status", "reason", "score", "best_images", "last_score", "images_seen",
                "confirmed", "confirmed_mean", "confirmed_sd", "g_params", "images_per_s", "optim.d.lr", "optim.g.lr", "model.arch", "model.g_depth", "loss.name",
                "best.cfd_64", "best.precision_64", "best.recall_64", "last.cfd_64"):
        assert col in cols, col
    by_id = {r.trial_id: r for r in outcome.rows}
    ranked = [r for r in records if r["rank"] is not None]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert [r["score"] for r in ranked] == sorted(r["score"] for r in ranked)
    assert ranked[0]["trial"] == outcome.best.trial_id
    for rec, row in zip(records, rows, strict=True):
        want = by_id[rec["trial"]]
        assert rec["trial"] == row["trial"] and rec["status"] == row["status"] == want.status
        assert rec["images_seen"] == want.images_seen and int(row["images_seen"]) == want.images_seen
        assert rec["optim.d.lr"] == want.params["optim.d.lr"] and float(row["optim.d.lr"]) == want.params["optim.d.lr"]
        if want.status == "diverged":  # no score: null in JSON, an empty cell in CSV, unranked
            assert rec["score"] is None and row["score"] == "" and rec["rank"] is None
            assert rec["reason"].startswith("non-finite")
            continue
        assert rec["score"] == pytest.approx(want.score) and float(row["score"]) == pytest.approx(want.score)
        assert rec["best_images"] == want.best_images and rec["last_score"] == pytest.approx(want.last_score)
        # The score is the cfd at the best point; last.* are the last report's numbers.
        assert rec["best.cfd_64"] == pytest.approx(want.score)
        last = results(want.path)[-1]
        assert rec["last.cfd_64"] == pytest.approx(last["cfd_64"])
        assert rec["g_params"] == last["g_params"] and int(row["g_params"]) == last["g_params"] > 0
        assert rec["images_per_s"] > 0 and rec["confirmed"] is None and row["confirmed"] == ""  # no --confirm run
        assert rec["last.recall_64"] == pytest.approx(last["recall_64"])


def test_plot_data_is_collected_without_matplotlib(search):
    """Each plot's data comes from a pure function (no drawing library loaded), numbers from the files."""
    import subprocess
    import sys

    path, outcome, _ = search
    code = (
        "import json, sys\n"
        "from search.review import load_experiment, lucic_groups\n"
        "from search.review.plots import collect_scores, collect_slice, collect_learning_curves, collect_lucic\n"
        f"exp = load_experiment({str(path)!r})\n"
        "s = collect_scores(exp)\n"
        "lr = next(p for p in exp.searched if p.key == 'optim.d.lr')\n"
        "sl = collect_slice(exp, lr)\n"
        "lc = collect_learning_curves(exp, 3)\n"
        "curves, ticks = collect_lucic(exp, lucic_groups(exp))\n"
        "print(json.dumps({'scores': [[p.label, p.xs, p.ys] for p in s.series],\n"
        "  'best': s.highlight.xs + s.highlight.ys, 'slice': [[p.label, p.xs, p.ys] for p in sl.series],\n"
        "  'curves': [[p.label, p.xs, p.ys] for p in lc.series], 'lucic': [[c.ns, c.mean] for c in curves],\n"
        "  'ticks': ticks, 'mpl': any(m.startswith('matplotlib') for m in sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["mpl"] is False
    exp = review.load_experiment(path)
    xs = sorted(x for _, x_s, _ in data["scores"] for x in x_s)
    assert xs == list(range(1, 7))  # every trial once, in the order they started
    completed = next(ys for label, _, ys in data["scores"] if label == "completed")
    assert sorted(completed) == sorted(t.score for t in exp.trials if t.status is TrialStatus.COMPLETED)
    best = exp.best()
    assert data["best"] == [exp.trials.index(best) + 1, best.score]
    pts = sorted((x, y) for _, x_s, ys in data["slice"] for x, y in zip(x_s, ys, strict=True))
    assert pts == sorted((t.params["optim.d.lr"], t.score) for t in exp.trials if t.status.finished)
    for (label, x_s, ys), t in zip(data["curves"], exp.ranked()[:3], strict=True):
        assert t.trial_id in label
        assert list(zip(x_s, ys, strict=True)) == [(r["images_seen"], r["score"]) for r in results(t.path)]
    for ns, mean in data["lucic"]:
        assert ns == list(range(1, len(ns) + 1)) and mean == sorted(mean, reverse=True)  # more trials, lower
    assert data["ticks"][0] == 1


def test_optuna_plots(search, tmp_path, capsys):
    import warnings

    import optuna

    from search.review.optuna_plots import plan_optuna_plots

    path, _, _ = search
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)  # silenced where drawn
        assert main(["review", str(path), "--plots", str(tmp_path / "p"), "--optuna-plots"]) == 0
    out = capsys.readouterr().out
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{path / 'optuna.db'}")
    plans, note = plan_optuna_plots(study.trials, "score")
    names = [p.name for p in plans]
    assert names[:3] == ["optimization_history", "slice", "parallel_coordinate"]
    assert "contour" in names  # optim.d.lr and optim.g.lr are numeric
    assert "intermediate_values" in names or "intermediate values" in note
    for p in plans:
        with Image.open(tmp_path / "p" / p.file_name) as im:
            assert im.format == "PNG" and im.width >= 400 and im.height >= 150, p.name
        assert p.file_name in out
    assert not any(f.name.startswith("optuna_") and f.name not in {p.file_name for p in plans}
                   for f in (tmp_path / "p").iterdir())
    assert main(["review", str(path), "--optuna-plots"]) == 2
    assert "--optuna-plots: only used with --plots DIR" in capsys.readouterr().err


def test_leaderboard_export_paths_are_checked_first(search, tmp_path, capsys):
    path, _, _ = search
    (tmp_path / "d.csv").mkdir()
    for args, message in ((["--csv", str(tmp_path / "b.txt")], "--csv: "),
                          (["--json", str(tmp_path / "b.csv")], "--json: "),
                          (["--csv", str(tmp_path / "d.csv")], "is a directory")):
        assert main(["review", str(path), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]  # nothing written


def test_optunas_warnings_on_importance_become_part_of_the_note():
    """Issue 23: review printed PED-ANOVA's UserWarning with Optuna's file path. Its warnings go
    into the importance note instead; the experimental notice and the reminder that the target is
    taken lower-is-better (it is given so) are left out."""
    import warnings

    import optuna

    from search.review.importance import _caveats

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("Target and region quantiles select the same set of trials. Parameter importances will "
                      "be equal.", UserWarning, stacklevel=1)
        warnings.warn("PedAnovaImportanceEvaluator is experimental", optuna.exceptions.ExperimentalWarning,
                      stacklevel=1)
        warnings.warn("PedAnovaImportanceEvaluator computes the importances of params to achieve low `target` "
                      "values.", UserWarning, stacklevel=1)
    assert _caveats(caught) == ("; Optuna: target and region quantiles select the same set of trials. "
                                "Parameter importances will be equal")


class _TwoTrials:
    """What against_the_base reads of an experiment: its objective and its base point's trial."""

    def __init__(self, base: TrialRecord) -> None:
        from search.objective import Objective

        self.objective, self.metric, self._base = Objective("score"), "score", base

    def base_trial(self) -> TrialRecord:
        return self._base


def _trial(tid: str, status: TrialStatus, curve: list[tuple[int, float]]) -> TrialRecord:
    results = [{"images_seen": n, "score": v} for n, v in curve]
    best = min(range(len(curve)), key=lambda i: curve[i][1])
    return TrialRecord(tid, status, "", curve[best][1], curve[-1][0], {}, tid, None, results=results,
                       best_index=best, best_images=curve[best][0], last_score=curve[-1][1])


@pytest.mark.parametrize("winner_at_64k, words", [(12.19, "51% better"), (30.0, "20% worse")])
def test_a_base_point_stopped_early_is_compared_after_the_same_images(winner_at_64k, words):
    """ASHA stopped the base point at 64k; the winner's best is after 192k. A GAN improves with
    images, so the line compares the two after 64k (and says where the winner went on to)."""
    from search.review.tables import against_the_base

    base = _trial("base", TrialStatus.STOPPED, [(64000, 25.03)])
    best = _trial("win", TrialStatus.COMPLETED, [(64000, winner_at_64k), (128000, 6.0), (192000, 2.23)])
    line = against_the_base(_TwoTrials(base), best, [best, base], [])
    assert line == ("against the base point: after 64000 images, where the scheduler stopped it (trial base), "
                    f"its score 25.03 vs the winner's {winner_at_64k:g} ({words}); the winner went on to 2.23 "
                    "after 192000 images; one seed each (review --confirm K re-trains the top K and the base "
                    "point on more seeds)")
    # Both after the full budget: the plain comparison.
    done = _trial("base", TrialStatus.COMPLETED, [(64000, 25.03), (192000, 7.0)])
    line = against_the_base(_TwoTrials(done), best, [best, done], [])
    assert "the winner's score 2.23 vs 7 for the base point (trial base): 68% better" in line
