"""Searches on a real Ray (no mocks): a local Ray with logical GPUs, and a two-node cluster
started on this machine. Trials run the real gan_core loop and evaluator at tiny width."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ray.tune import Callback

REPO = Path(__file__).resolve().parents[1]
RAY_BIN = Path(sys.executable).with_name("ray")

# A tiny dense GAN: a trial takes seconds. eval.n must exceed the metrics' k-NN size.
TINY = """
base: mnist-mlp
budget: {{images: {images}, eval_every: {every}, grace_images: {every}}}
params:
  optim.d.lr: {{float: [1.0e-4, 1.0e-2], log: true}}
  optim.g.lr: {{choice: {g_lrs}}}
  model.g_depth: {{int: [1, 2]}}
  model.width: 0.0625
  model.latent_dim: 16
  train.batch_size: 32
  train.log_every: 512
  train.sample_every: 1024
  train.checkpoint_every: 0
  eval.n: 64
{extra}
"""


def tiny_space(tmp_path: Path, *, images: int = 2048, every: int = 512, extra: str = "", name: str = "tiny",
               g_lrs: str = "[0.0002, 0.002]"):
    from search.space import load_space

    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.format(images=images, every=every, extra=extra, g_lrs=g_lrs))
    return load_space(path)


def results(trial_path: str) -> list[dict]:
    lines = Path(trial_path, "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env() -> dict[str, str]:
    return {k: os.environ[k] for k in ("GANSEARCH_DATA", "GANSEARCH_CACHE", "RAY_DEDUP_LOGS") if k in os.environ} | {
        "PYTHONPATH": str(REPO)}


# ----------------------------------------------------------------------------- pure helpers


def test_pbt_population_starts_with_the_base_point(tmp_path):
    from search.raytune.tuner import pbt_population
    from search.space import trial_seed

    space = tiny_space(tmp_path)
    pop = pbt_population(space, 5, seed=2)
    assert len(pop) == 5
    assert pop[0]["optim.d.lr"] == space.base_config.optim.d.lr
    assert [m["train.seed"] for m in pop] == [trial_seed(2, n) for n in range(5)]
    assert pop == pbt_population(space, 5, seed=2)  # repeatable
    for member in pop:
        space.config_for(member)


def test_pbt_restore_rewrites_only_resumable_hyperparameters(tmp_path):
    """PBT clones a checkpoint into a trial with perturbed values: the loop must resume with the
    new learning rate, while any other scheduler keeps the loop's refusal of a changed config."""
    from ray.tune import Checkpoint

    from gan_core.checkpoint import load_checkpoint
    from gan_core.errors import GansearchError
    from gan_core.loop import train
    from search.experiment import trial_params
    from search.raytune.trainable import TrialContext, restore_checkpoint

    space = tiny_space(tmp_path, images=512, every=256)
    params = {**space.base_point(), "train.seed": 1}

    def config(**values):
        cfg = space.config_for({**params, **values})
        cfg.eval.enabled = False  # the loop, not the metric, is under test here
        return cfg

    donor = tmp_path / "donor"
    train(config(), donor, device="cpu", progress=False)  # a finished tiny run: 512 images
    perturbed = config(**{"optim.d.lr": 3e-3})
    assert trial_params({"point": params}) == params and trial_params(params) == params

    pbt_dir = tmp_path / "pbt"
    pbt_dir.mkdir()
    restore_checkpoint(Checkpoint.from_directory(donor), pbt_dir, TrialContext(space, "pbt"), perturbed)
    assert load_checkpoint(pbt_dir)["config"]["optim"]["d"]["lr"] == 3e-3
    longer = config(**{"optim.d.lr": 3e-3})
    longer.train.images = 768
    assert train(longer, pbt_dir, device="cpu", progress=False).images_seen == 768
    state = load_checkpoint(pbt_dir)  # the perturbed rate was used, not the donor's
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(3e-3)
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(space.base_config.optim.g.lr)

    asha_dir = tmp_path / "asha"
    asha_dir.mkdir()
    restore_checkpoint(Checkpoint.from_directory(donor), asha_dir, TrialContext(space, "asha"), perturbed)
    with pytest.raises(GansearchError, match="optim.d.lr"):
        train(perturbed, asha_dir, device="cpu", progress=False)


def test_explore_takes_a_trial_folders_best_checkpoint_not_its_newest(tiny_cfg, tmp_path):
    """A trial folder as Ray writes it: two reported checkpoints, the first one scoring best."""
    from gan_core.checkpoint import load_run
    from gan_core.loop import train
    from search.explore import resolve_run

    exp = tmp_path / "exp"
    trial = exp / "trial_abc"
    cfg = tiny_cfg("mlp", steps=2)
    for n, (steps, score) in enumerate(((2, 10.0), (4, 30.0))):
        cfg.train.images = 16 * steps
        train(cfg, tmp_path / "run", progress=False)
        (trial / f"checkpoint_00000{n}").mkdir(parents=True)
        shutil.copy(tmp_path / "run" / "checkpoint.pt", trial / f"checkpoint_00000{n}" / "checkpoint.pt")
        with open(trial / "result.json", "a") as f:
            f.write(json.dumps({"score": score, "images_seen": 16 * steps, "trial_id": "abc",
                                "checkpoint_dir_name": f"checkpoint_00000{n}"}) + "\n")
    (trial / "params.json").write_text("{}")
    assert load_run(resolve_run(trial)).step == 2  # no gansearch.json: the default objective, min score
    (exp / "gansearch.json").write_text(json.dumps({"metric": "score", "mode": "max"}))
    assert load_run(resolve_run(trial)).step == 4  # a search maximising: the later point is its best
    shutil.rmtree(trial / "checkpoint_000001")
    (exp / "gansearch.json").write_text(json.dumps({"metric": "score", "mode": "min"}))
    assert resolve_run(trial) == trial / "checkpoint_000000" / "checkpoint.pt"


# ----------------------------------------------------------------------------- a local Ray


@pytest.fixture(scope="class")
def barrier(tmp_path_factory):
    """The folder of the trials' barrier (tests/ray_hooks.py), unarmed."""
    return tmp_path_factory.mktemp("barrier")


@pytest.fixture(scope="class")
def local_ray(barrier):
    """Two CPUs (the machine's) and two logical GPUs that torch cannot see; every worker has the
    barrier hook of tests/ray_hooks.py."""
    import ray

    from tests import ray_hooks

    ray.shutdown()
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": worker_env() | {ray_hooks.BARRIER_ENV: str(barrier)},
                          "worker_process_setup_hook": ray_hooks.setup})
    yield ray
    ray.shutdown()


@pytest.mark.usefixtures("local_ray")
class TestLocal:
    def test_search_end_to_end_with_a_diverging_trial(self, tmp_path):
        import optuna

        from gan_core.checkpoint import load_run
        from gan_core.config import load_config, to_dict
        from gan_core.errors import GansearchError
        from search.experiment import BEST_CONFIG_FILE, SUMMARY_FILE, SearchOptions
        from search.raytune.tune import run_search
        from search.space import trial_seed

        # The base preset runs first, then the point with a 1e30 generator lr (NaN at once).
        space = tiny_space(tmp_path, extra="points:\n  - {optim.g.lr: 1.0e+30}\n", g_lrs="[0.0002, 0.002, 1.0e+30]")
        killer = KillFirstWorker()  # and the first trial's worker process dies after one report
        out = run_search(space, SearchOptions(name="e2e", storage=str(tmp_path / "runs"), trials=4, seed=3,
                                              max_failures=1, verbose=0), callbacks=[killer])
        rows = {r.trial_id: r for r in out.rows}
        assert len(rows) == 4 and not out.interrupted
        diverged = [r for r in out.rows if r.status == "diverged"]
        assert len(diverged) == 1
        assert "TrialDiverged: non-finite" in diverged[0].reason and diverged[0].score is None
        assert diverged[0].params["optim.g.lr"] == 1e30
        finished = [r for r in out.rows if r.status in ("completed", "stopped")]
        assert len(finished) == 3 and any(r.status == "completed" for r in finished)
        assert out.best is not None and out.best.status in ("completed", "stopped")
        assert out.best.score == min(r.score for r in finished)

        # The crashed worker did not end the search: its trial went on in a new process from its
        # last checkpoint Ray had registered (or from the start: killed inside its first report),
        # and result.json holds each report once, the repeated ones replaced (tune_recovery.py).
        killed = next(r for r in out.rows if r.trial_id == killer.trial_id)
        assert killed.status in ("completed", "stopped")
        reports = results(killed.path)
        pids, images = [res["pid"] for res in reports], [res["images_seen"] for res in reports]
        assert pids[-1] != killer.pid and killer.pid not in pids[pids.count(killer.pid):]
        assert images == sorted(set(images)), images

        # best_config.yaml round-trips into the typed config, equal to the trial's own config.
        exp = Path(out.experiment_path)
        assert out.best_config_path == str(exp / BEST_CONFIG_FILE)
        best_cfg = load_config(exp / BEST_CONFIG_FILE)
        expected = space.config_for(out.best.params)
        assert {k: v for k, v in to_dict(best_cfg).items() if k != "name"} == \
               {k: v for k, v in to_dict(expected).items() if k != "name"}
        assert best_cfg.train.images == 2048 and best_cfg.eval.every == 512 and best_cfg.model.width == 0.0625
        summary = json.loads((exp / SUMMARY_FILE).read_text())
        assert summary["best"]["trial_id"] == out.best.trial_id
        assert summary["counts"]["diverged"] == 1

        # Each trial's checkpoint is a real run the toolkit can load; its run folder was synced.
        # The best trial's checkpoint is its best point's (kept by score), not its last.
        run = load_run(out.best.checkpoint)
        assert run.images_seen == out.best.best_images
        assert load_run(out.best.last_checkpoint).images_seen == out.best.images_seen
        assert (Path(out.best.path) / "run" / "samples").is_dir()
        for r in finished:
            last = results(r.path)[-1]
            assert last["torch_threads"] == 1 and last["device"] == "cpu"
            assert last["images_seen"] == r.images_seen
        # Each trial keeps its latest checkpoint and its best two by score (raytune/checkpoints.py).
        for r in finished:
            if r.trial_id == killer.trial_id:  # its retried run starts the count again
                continue
            reports = [res for res in results(r.path) if res.get("checkpoint_dir_name")]
            want = {res["checkpoint_dir_name"] for res in [*sorted(reports, key=lambda res: res["score"])[:2],
                                                           reports[-1]]}
            assert {c.name for c in Path(r.path).glob("checkpoint_*")} == want

        # The Optuna study lives in the experiment folder: base point first, the NaN trial failed.
        study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{exp / 'optuna.db'}")
        trials = sorted(study.trials, key=lambda t: t.number)
        assert len(trials) == 4
        assert trials[0].params["optim.d.lr"] == space.base_config.optim.d.lr
        assert trials[0].params["optim.g.lr"] == space.base_config.optim.g.lr
        assert trials[1].params["optim.g.lr"] == 1e30 and trials[1].state == optuna.trial.TrialState.FAIL
        # Trials that trained the whole budget are COMPLETE; those ASHA stopped early are PRUNED.
        states = optuna.trial.TrialState
        assert sum(t.state == states.COMPLETE for t in trials) == out.count("completed")
        assert sum(t.state == states.PRUNED for t in trials) == out.count("stopped")
        # Seeds come from --seed and the Optuna trial number.
        seeds = {results(r.path)[-1]["trial_seed"] for r in finished}
        assert seeds <= {trial_seed(3, n) for n in range(4)} and len(seeds) == 3

        # The same --name again is refused (resume it instead), before any trial starts.
        with pytest.raises(GansearchError, match="gansearch resume"):
            run_search(space, SearchOptions(name="e2e", storage=str(tmp_path / "runs"), trials=1, verbose=0))

    @pytest.mark.e2e  # make test-e2e: a whole workflow; CI runs it
    def test_fractional_logical_gpus_run_four_trials_at_once(self, tmp_path, barrier):
        from search.experiment import SearchOptions
        from search.raytune.tune import run_search
        from tests import ray_hooks

        space = tiny_space(tmp_path, images=2048, every=1024, name="gpu")
        # Each trial waits inside its training for the other three (tests/ray_hooks.py): four
        # trials at once is then a fact of Ray's placement, not of this machine's speed (nor of
        # a budget long enough for the last to start before the first ends).
        ray_hooks.arm(barrier, 4)
        try:
            # A file:// URI takes the code paths of s3:// and gs:// storage (pyarrow, study copied).
            out = run_search(space, SearchOptions(name="gpus", storage=f"file://{tmp_path / 'runs'}", trials=4,
                                                  cpus_per_trial=0.5, gpus_per_trial=0.5, scheduler="fifo",
                                                  verbose=0, allow_cpu_fallback=True))
        finally:
            ray_hooks.disarm(barrier)
        assert [r.status for r in out.rows] == ["completed"] * 4, [(r.status, r.reason) for r in out.rows]
        assert len(list(barrier.glob("arrived-*"))) == 4
        spans = []
        for r in out.rows:
            last = results(r.path)[-1]
            assert last["gpu_ids"] in ("0", "1") and last["device"] == "cpu"
            spans.append((last["started_at"], last["reported_at"]))
            # Exactly one fallback warning per trial, in the trial's own stderr, naming the node.
            stderr = (Path(r.path) / "stderr").read_text()
            assert stderr.count("but its torch cannot use CUDA: torch ") == 1, stderr[-2000:]
            assert stderr.count("; training on the CPU (--allow-cpu-fallback)") == 1, stderr[-2000:]
        # Four trials at once: some moment lies inside every trial's span.
        assert max(s for s, _ in spans) < min(e for _, e in spans), spans
        gpus = sorted(results(r.path)[-1]["gpu_ids"] for r in out.rows)
        assert gpus == ["0", "0", "1", "1"]
        exp = tmp_path / "runs" / "gpus"
        assert out.experiment_path == f"file://{exp}"
        assert (exp / "best_config.yaml").exists() and (exp / "summary.json").exists()
        assert (exp / "optuna.db").exists()  # the study, copied next to the results
        assert json.loads((exp / "gansearch.json").read_text())["options"]["allow_cpu_fallback"] is True

    def test_a_gpu_trial_whose_torch_cannot_use_cuda_fails_in_one_line_and_resume_may_allow_the_cpu(self, tmp_path):
        """No silent CPU on a paid GPU: the logical GPU has no CUDA behind it, so without
        --allow-cpu-fallback the trial fails at once, saying where and why; a resume with the
        flag trains it on the CPU (a search started with the flag keeps it: the test above)."""
        import torch

        from search.experiment import SearchOptions
        from search.raytune.tune import resume_search, run_search

        space = tiny_space(tmp_path, images=1024, every=512, name="nocuda", extra="search: {scheduler: fifo}\n")
        out = run_search(space, SearchOptions(name="nocuda", storage=str(tmp_path / "runs"), trials=1,
                                              gpus_per_trial=1, max_failures=0, verbose=0))
        (row,) = out.rows
        assert row.status == "failed" and row.images_seen == 0
        assert "\n" not in row.reason and row.reason.startswith("NoUsableGpu: on ")
        assert f"Ray gave the trial GPU 0 but its torch cannot use CUDA: torch {torch.__version__} (" in row.reason
        assert "cuda.is_available()=False, device_count=0" in row.reason
        assert row.reason.endswith("or pass --allow-cpu-fallback")
        assert "allow_cpu_fallback" not in json.loads(  # off: not written (as the other later options)
            (Path(out.experiment_path) / "gansearch.json").read_text())["options"]

        again = resume_search(out.experiment_path, retry_failed=True, allow_cpu_fallback=True)
        (row,) = again.rows
        assert row.status == "completed", row.reason
        assert results(row.path)[-1]["device"] == "cpu"

    @pytest.mark.e2e  # make test-e2e: a whole workflow; CI runs it
    def test_interrupted_search_resumes_without_repeating_or_losing_trials(self, tmp_path):
        import optuna

        from search.experiment import SearchOptions
        from search.raytune.tune import resume_search, run_search

        marker = tmp_path / "interrupted-once"
        space = tiny_space(tmp_path, images=4096, every=1024, extra="search: {scheduler: fifo}\n", name="resume")
        shared = f"sqlite:///{tmp_path / 'shared-study.db'}"  # --optuna-storage
        first = run_search(space, SearchOptions(name="resume", storage=str(tmp_path / "runs"), trials=3,
                                                max_concurrent=1, optuna_storage=shared, verbose=0),
                           callbacks=[InterruptAfterFirstTrial(str(marker))])
        assert marker.exists() and first.interrupted
        done_before = {r.trial_id: r.images_seen for r in first.rows if r.status != "unfinished"}
        assert marker.read_text() in done_before and len(first.rows) < 3 + 1

        second = resume_search(first.experiment_path)
        assert not second.interrupted
        ids = [r.trial_id for r in second.rows]
        assert len(ids) == len(set(ids)) == 3  # none lost, none repeated
        for tid, images in done_before.items():  # finished trials were not run again
            assert next(r for r in second.rows if r.trial_id == tid).images_seen == images
            assert len(results(next(r.path for r in second.rows if r.trial_id == tid))) == \
                   len(results(next(r.path for r in first.rows if r.trial_id == tid)))
        study = optuna.load_study(study_name="resume", storage=shared)
        assert not (Path(second.experiment_path) / "optuna.db").exists()
        assert len(study.trials) == 3
        assert all(t.state.is_finished() for t in study.trials)
        assert second.best is not None


    def test_best_and_latest_checkpoints_are_kept_and_resume_continues_from_the_latest(self, tmp_path):
        """Checkpoints are kept by score, and the latest one too. With images_seen as the
        (minimised) objective a trial gets worse at every report, so its best point is its first
        report and differs from its last, whatever the GAN does."""
        import optuna

        from gan_core.checkpoint import load_run
        from search.experiment import SUMMARY_FILE, SearchOptions
        from search.raytune.tune import resume_search, run_search

        marker = tmp_path / "interrupted-once"
        space = tiny_space(tmp_path, images=4096, every=512, name="worse",
                           extra="objective: {metric: images_seen, mode: min}\nsearch: {scheduler: fifo}\n")
        first = run_search(space, SearchOptions(name="worse", storage=str(tmp_path / "runs"), trials=1, verbose=0),
                           callbacks=[InterruptAtReport(str(marker), 3)])
        assert marker.exists() and first.interrupted
        (cut,) = first.rows
        k = len(results(cut.path))
        assert cut.status == "unfinished" and 3 <= k < 8 and cut.images_seen == 512 * k
        # The best two by score (512 and 1024 images) and the latest; anything between is gone.
        assert kept_images(cut.path) == [512, 1024, 512 * k]
        assert cut.score == 512 and cut.best_images == 512 and cut.last_score == 512 * k
        assert load_run(cut.checkpoint).images_seen == 512 and load_run(cut.last_checkpoint).images_seen == 512 * k

        second = resume_search(first.experiment_path)
        (done,) = second.rows
        assert done.status == "completed" and not second.interrupted
        reports = results(done.path)
        # Resumed in a new process from the latest checkpoint Ray had registered when the driver
        # stopped (the last report's, or the one before when its registration was still under way:
        # the repeated report then replaces the first run's), never from the best one at 512 images.
        assert [r["images_seen"] for r in reports] == list(range(512, 4097, 512))
        pids = [r["pid"] for r in reports]
        first_run = pids.count(pids[0])
        assert pids[:first_run] == [pids[0]] * first_run and pids[0] not in pids[first_run:]
        assert first_run in (k - 1, k), (first_run, k)
        assert kept_images(done.path) == [512, 1024, 4096]
        assert (done.score, done.best_images, done.last_score, done.images_seen) == (512, 512, 4096, 4096)
        assert load_run(done.checkpoint).images_seen == 512 and load_run(done.last_checkpoint).images_seen == 4096
        summary = json.loads((Path(second.experiment_path) / SUMMARY_FILE).read_text())
        assert summary["best"]["checkpoint"] == done.checkpoint and summary["best"]["last_score"] == 4096
        study = optuna.load_study(study_name="worse", storage=f"sqlite:///{Path(second.experiment_path) / 'optuna.db'}")
        (trial,) = study.trials
        assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 512  # the best point
        assert trial.user_attrs["images_seen"] == 4096 and trial.user_attrs["best_images"] == 512
        assert trial.user_attrs["last_score"] == 4096 and trial.user_attrs["tune_trial_id"] == done.trial_id

    @pytest.mark.e2e  # make test-e2e: a whole workflow; CI runs it
    def test_pbt_keeps_every_report_of_every_trial_in_result_json_and_progress_csv(self, tmp_path, capsys):
        """Three members on two slots: PBT pauses and restarts each at every perturbation (and
        clones the better ones' checkpoints into the worse), and every restart made Tune copy the
        experiment folder's older result.json back over the driver's."""
        import csv

        from search.experiment import SearchOptions, open_experiment
        from search.raytune.tune import run_search

        space = tiny_space(tmp_path, images=2048, every=512, name="pbt")
        heard = HeardReports()
        out = run_search(space, SearchOptions(name="pbt", storage=str(tmp_path / "runs"), trials=3, max_concurrent=2,
                                              scheduler="pbt", verbose=0), callbacks=[heard])
        assert [r.status for r in out.rows] == ["completed"] * 3, [(r.status, r.reason) for r in out.rows]
        assert sum(heard.starts.values()) > 3  # the perturbations restarted trials
        said = capsys.readouterr().out  # the quiet log counts each member once (it said "started (15/3)")
        assert [said.count(f"started ({i}/3)") for i in (1, 2, 3, 4)] == [1, 1, 1, 0], said[-3000:]
        for r in out.rows:
            told = [(x["images_seen"], x["score"]) for x in heard.reports[r.trial_id]]
            assert [n for n, _ in told] == [512, 1024, 1536, 2048], told  # what the trainable reported
            assert [(x["images_seen"], x["score"]) for x in results(r.path)] == told
            with open(Path(r.path) / "progress.csv", newline="") as f:
                rows = [(int(row["images_seen"]), float(row["score"])) for row in csv.DictReader(f)]
            assert rows == told
        every = [(score, tid) for tid, reps in heard.reports.items() for score in (x["score"] for x in reps)]
        best_score, best_trial = min(every)
        assert (out.best.trial_id, out.best.score) == (best_trial, best_score)
        exp = open_experiment(out.experiment_path)
        assert exp.best().trial_id == best_trial  # what review names
        # A member's values change when it takes another's checkpoint: the leaderboard shows and
        # export writes the values it had at its best point, params.json holds its last ones.
        from search.review.export import export_config

        changed = 0
        for t in exp.trials:
            at_best = results(t.path)[t.best_index]["config"]["point"]
            assert t.params == at_best
            changed += at_best != json.loads((Path(t.path) / "params.json").read_text())["point"]
            _, cfg = export_config(exp, tmp_path / f"{t.trial_id}.yaml", t.trial_id)
            assert cfg.optim.d.lr == t.params["optim.d.lr"]
        print(f"{changed} of 3 members ended with other values than at their best point")


class HeardReports(Callback):
    """Every report the driver heard from each trial, and how often each trial started."""

    def __init__(self) -> None:
        self.reports: dict[str, list[dict]] = {}
        self.starts: dict[str, int] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.starts[trial.trial_id] = self.starts.get(trial.trial_id, 0) + 1

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.reports.setdefault(trial.trial_id, []).append(
            {"images_seen": result["images_seen"], "score": result["score"]})


def kept_images(trial_path: str) -> list[int]:
    """Images seen at each checkpoint still in a trial folder."""
    from gan_core.checkpoint import load_run

    return sorted(load_run(p).images_seen for p in Path(trial_path).glob("checkpoint_*"))


class KillFirstWorker(Callback):
    """SIGKILLs the worker process of the first trial that reports (a crashed worker)."""

    def __init__(self) -> None:
        self.trial_id: str | None = None
        self.pid: int | None = None

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.pid is None:
            self.trial_id, self.pid = trial.trial_id, result["pid"]
            os.kill(self.pid, signal.SIGKILL)


class InterruptAfterFirstTrial(Callback):
    """Sends this process SIGUSR1 (Tune's graceful stop, what Ctrl+C does) once, after the first
    trial finishes. The marker file keeps it from firing again in the resumed search, which
    restores this callback from the pickled run config."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def on_trial_complete(self, iteration, trials, trial, **info):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(trial.trial_id)
            os.kill(os.getpid(), signal.SIGUSR1)


class InterruptAtReport(Callback):
    """Sends this process SIGUSR1 (Tune's graceful stop) once, at the n-th report of a trial."""

    def __init__(self, marker: str, n: int) -> None:
        self.marker = marker
        self.n = n

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["training_iteration"] == self.n and not os.path.exists(self.marker):
            Path(self.marker).write_text(trial.trial_id)
            os.kill(os.getpid(), signal.SIGUSR1)


# ----------------------------------------------------------------------------- two nodes


NODES_SNIPPET = """
import json, sys, ray
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False)
print(json.dumps(sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])))
"""


@pytest.fixture
def two_nodes(tmp_path):
    """A head (1 CPU, custom resource node_a) and a second node (1 CPU, node_b) started with
    `ray start` on this machine, in their own temp dirs and ports, with token authentication
    (~/.ray/auth_token) on. `--block` keeps each `ray start` in the foreground and makes it stop
    its node's processes when terminated; the finalizer does that by process id (a bare
    `ray stop` would kill every Ray on the machine, other users' too).
    Yields (address, env for drivers, node ids)."""
    import ray

    ray.shutdown()
    port = free_port()
    env = {**os.environ, **worker_env(), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    common = ["--num-cpus=1", "--num-gpus=0", "--block", "--disable-usage-stats",
              "--node-ip-address=127.0.0.1"]
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str) -> None:
        log = open(tmp_path / f"{name}.log", "w")
        procs.append(subprocess.Popen([str(RAY_BIN), "start", *args, *common], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))

    def alive_nodes(address: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", NODES_SNIPPET, address], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []

    short = Path(tempfile.mkdtemp(prefix="gsr", dir="/tmp"))  # Ray's socket paths must stay < 108 bytes
    try:
        head_dir = short / "head"
        start(["--head", f"--port={port}", f"--temp-dir={head_dir}", "--include-dashboard=false",
               f"--dashboard-agent-listen-port={free_port()}", '--resources={"node_a": 1}'], "head")
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 180
        while not list(head_dir.glob("session_*/logs/raylet.out")):
            assert procs[0].poll() is None, (tmp_path / "head.log").read_text()
            assert time.time() < deadline, "head did not start"
            time.sleep(0.5)
        def start_node2(attempt: int) -> None:
            start([f"--address={address}", f"--temp-dir={short / f'node2-{attempt}'}",
                   f"--dashboard-agent-listen-port={free_port()}", '--resources={"node_b": 1}'], f"node2-{attempt}")

        attempt = 1
        start_node2(attempt)
        nodes = alive_nodes(address)
        while len(nodes) < 2:
            assert procs[0].poll() is None, (tmp_path / "head.log").read_text()
            if procs[-1].poll() is not None:
                # On a loaded machine the head's GCS can miss the joining node's deadline ("The
                # current node timed out during startup"); Ray's advice is to start it again.
                log = (tmp_path / f"node2-{attempt}.log").read_text()
                assert attempt < 3 and "timed out during startup" in log, log
                attempt += 1
                procs.pop()
                start_node2(attempt)
            assert time.time() < deadline, "second node did not join"
            time.sleep(1)
            nodes = alive_nodes(address)
        yield address, env, nodes
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # the group holds only this node's processes
                p.wait()
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.e2e
def test_two_node_cluster_runs_trials_on_both_nodes(two_nodes, tmp_path):
    """`gansearch search --address` against a real two-node cluster: trials land on both (each
    node holds one 1-CPU trial, so the two trials that run at once must be on different nodes)."""
    address, env, nodes = two_nodes
    assert len(nodes) == 2
    space = tmp_path / "cluster.yaml"
    space.write_text(TINY.format(images=4096, every=1024, extra="search: {scheduler: fifo}\n",
                                 g_lrs="[0.0002, 0.002]"))
    cmd = [sys.executable, "-m", "search.cli", "search", "--space", str(space), "--name", "cluster",
           "--storage", str(tmp_path / "runs"), "--trials", "2", "--address", address,
           "--cpus-per-trial", "1", "--quiet"]
    out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "best config:" in out.stdout
    summary = json.loads((tmp_path / "runs" / "cluster" / "summary.json").read_text())
    assert summary["counts"]["completed"] == 2
    used = {t["node_id"] for t in summary["trials"]}
    assert used == set(nodes), (used, nodes)
