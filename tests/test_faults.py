"""Faults, for real: a search driver killed with its Ray, a trial's worker killed, three processes
building one classifier cache at once. Real processes and a real private Ray per search, no
mocks. Every process a test starts runs in its own session and is ended by its process group or
id (never `ray stop` or a name match: other Rays run on this machine).

Slow (a private Ray per search): marked ``faults``, run by ``make faults`` (which CI runs).
The searches run from a scratch folder with relative $GANSEARCH_DATA and data.data_dir, the way
a user in a project folder would: Ray runs trials elsewhere, so this also checks the driver made
them absolute (and a resume from another folder still finds them).

No kill races the machine's speed: the trial a fault hits is held inside its training after its
R-th report (tests/ray_hooks.py, installed in the search's Ray workers through Ray's runtime-env
hook) until the fault comes, and the cache builders meet before the one that trains finishes.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gan_core.io import read_jsonl
from tests import ray_hooks
from tests.test_events import read_events

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[1]

# A tiny dense GAN; 8 reports per trial so that a kill lands inside a trial.
SPACE = """
base: mnist-mlp
budget: {images: 8192, eval_every: 1024, grace_images: 1024}
search: {scheduler: fifo}
params:
  optim.d.lr: {float: [1.0e-4, 1.0e-2], log: true}
  model.width: 0.0625
  model.latent_dim: 16
  model.g_depth: 1
  model.d_depth: 1
  train.batch_size: 32
  train.log_every: 1024
  train.sample_every: 8192
  train.checkpoint_every: 0
  eval.n: 64
  data.data_dir: mnist-here
"""
BUDGET, EVERY = 8192, 1024


def _env(hold: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GANSEARCH_DATA": "data-here", "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0", **(ray_hooks.driver_env(hold) if hold else {})}
    env.pop("RAY_ADDRESS", None)  # a private Ray, never someone else's
    return env


def _data_root() -> Path:
    """$GANSEARCH_DATA when set, else the MNIST shipped in the package (all these tests need)."""
    from gan_core.data import EMBEDDED_DATA_DIR

    return Path(os.environ.get("GANSEARCH_DATA") or EMBEDDED_DATA_DIR).resolve()


def _project(tmp_path: Path, space: str = SPACE) -> Path:
    """A user's folder: the space file and two links to the data, all named relatively."""
    root = _data_root()
    (tmp_path / "data-here").symlink_to(root)
    (tmp_path / "mnist-here").symlink_to(root)
    (tmp_path / "space.yaml").write_text(space)
    return tmp_path


def _gansearch(args: list[str], cwd: Path, log: Path, hold: Path | None = None) -> subprocess.Popen:
    """`gansearch ARGS` in its own session: its pgid is its pid, and its Ray is in that group;
    its trials have the hold of tests/ray_hooks.py in ``hold``."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "search.cli", *args], cwd=cwd, env=_env(hold), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    return kids


def _tree(pid: int) -> set[int]:
    """``pid`` and every process below it."""
    kids, out, todo = _children(), set(), [pid]
    while todo:
        p = todo.pop()
        out.add(p)
        todo += kids.get(p, [])
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _kill_tree(proc: subprocess.Popen) -> set[int]:
    """SIGKILL the process group of ``proc`` (its session) and whatever below it left the group;
    returns the processes still alive afterwards (should be none)."""
    pids = _tree(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for p in pids:  # anything that left the group is still ours: end it by its id
        if _alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait(timeout=60)
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return {p for p in pids if _alive(p)}


def _reports(trial: Path) -> list[dict]:
    try:
        lines = (trial / "result.json").read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            break  # a line being written
    return out


def _trials(exp: Path) -> dict[str, list[dict]]:
    return {d.name: _reports(d) for d in sorted(exp.glob("trial_*")) if d.is_dir()}


def _saved_checkpoints(exp: Path) -> dict[str, str]:
    """trial folder name -> the checkpoint Ray's saved experiment state resumes it from, read
    through Ray's public API (Tuner.restore(...).get_results()) in a process of its own."""
    code = ("import json, sys\nfrom ray import tune\nfrom search.raytune.trainable import gan_trial\n"
            "grid = tune.Tuner.restore(sys.argv[1], gan_trial).get_results()\n"
            "print(json.dumps({r.path.rsplit('/', 1)[-1]: r.checkpoint and r.checkpoint.path for r in grid}))")
    out = subprocess.run([sys.executable, "-c", code, str(exp)], env=_env(), capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_for(what: str, cond, proc: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert proc.poll() is None, f"exited {proc.returncode} before {what}:\n{log.read_text()[-3000:]}"
        assert time.time() < deadline, f"no {what} after {timeout:g} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


@pytest.fixture
def started():
    """Processes a test started; any left running are ended by process group at the end."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            _kill_tree(p)


def _check_complete(exp: Path, trials: int) -> dict[str, list[dict]]:
    """Every trial trained its whole budget, its reports in order with no step repeated or
    skipped (a resumed trial continued from its checkpoint), all scored by one classifier."""
    state = json.loads((exp / "gansearch.json").read_text())
    digest = state["classifier"]["digest"]
    summary = json.loads((exp / "summary.json").read_text())
    errors = {d.name: (d / "error.txt").read_text()[-2000:] for d in exp.glob("trial_*") if (d / "error.txt").exists()}
    assert summary["counts"]["completed"] == trials and not summary["interrupted"], (summary["counts"], errors)
    assert {t["classifier"] for t in summary["trials"]} == {digest}
    found = _trials(exp)
    assert len(found) == trials
    for name, reports in found.items():
        assert [r["images_seen"] for r in reports] == list(range(EVERY, BUDGET + 1, EVERY)), name
        assert {r["classifier_digest"] for r in reports} == {digest}, name
    return found


@pytest.mark.parametrize("damage", ["checkpoint", "state"])
def test_kill_9_driver_and_its_ray_then_resume_runs_every_trial_once(tmp_path, started, damage):
    """Two races a kill can lose, each made certain: Ray had deleted (num_to_keep) the checkpoint
    its last saved state names (CI once lost that one), or Ray was copying its state into the
    experiment when the kill came (seen here: a 0-byte experiment_state, and Ray, finding no
    trial, started over). The resume must put either right (search/tune_recovery.py)."""
    import optuna

    project = _project(tmp_path)
    exp, log, hold = project / "runs" / "faults", tmp_path / "driver.log", tmp_path / "hold"
    # 3 reports: Ray's saved state then surely names one of its checkpoints (deleted below). The
    # first trial to make them is held there until the kill, however fast the others finish.
    ray_hooks.hold_after(hold, 3)
    t0 = time.time()
    driver = _gansearch(["search", "--space", "space.yaml", "--name", "faults", "--storage", "runs",
                         "--trials", "3", "--max-concurrent", "2", "--quiet"], project, log, hold)
    started.append(driver)

    def one_done_one_cut() -> bool:
        if ray_hooks.held(hold) is None:
            return False
        reps = _trials(exp).values()
        done = [r for r in reps if r and r[-1]["images_seen"] >= BUDGET]
        cut = [r for r in reps if r and 3 * EVERY <= r[-1]["images_seen"] < BUDGET]
        return len(done) >= 1 and len(cut) >= 1

    _wait_for("a finished trial next to a running one", one_done_one_cut, driver, log)
    before = _trials(exp)
    left = _kill_tree(driver)
    assert not left, f"processes of the killed driver still alive: {left}"
    killed_at = time.time() - t0
    finished = {n for n, r in before.items() if r and r[-1]["images_seen"] >= BUDGET}
    assert finished and len(finished) < 3
    cut = [n for n, r in before.items() if r and r[-1]["images_seen"] < BUDGET]
    deleted = []
    if damage == "checkpoint":  # for the cut trial
        named = _saved_checkpoints(exp)
        deleted = [named[n] for n in cut if named.get(n)]
        assert deleted, (named, cut)
        for path in deleted:
            shutil.rmtree(path, ignore_errors=True)  # unless Ray has (CI saw that race for real)
    else:
        state = sorted(exp.glob("experiment_state-*.json"))[-1]
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])

    # Resume from another folder, with an absolute $GANSEARCH_DATA: the experiment holds
    # absolute paths and the folder relative sampled paths meant.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**_env(), "GANSEARCH_DATA": str(project / "data-here")}
    out = subprocess.run([sys.executable, "-m", "search.cli", "resume", str(exp)], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=900, start_new_session=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    if damage == "checkpoint":
        assert out.stderr.count("was deleted after Ray's last saved state") == len(deleted), out.stderr[-3000:]
    else:
        assert f"{state.name} cut short when the driver was killed; restored from Ray's staging copy" in out.stderr
    after = _check_complete(exp, 3)
    for name in cut:  # progress.csv too holds each report once, in order
        with open(exp / name / "progress.csv", newline="") as f:
            images = [int(float(row["images_seen"])) for row in csv.DictReader(f)]
        assert images == list(range(EVERY, BUDGET + 1, EVERY)), (name, images)
    for name in finished:  # finished trials were not run again
        assert after[name] == before[name], name

    # The Optuna study holds each trial once, complete, under its Tune trial id.
    study = optuna.load_study(study_name="faults", storage=f"sqlite:///{exp / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 3, states
    ids = sorted(str(t.user_attrs["tune_trial_id"]) for t in study.trials)
    assert ["trial_" + i for i in ids] == sorted(after), (ids, sorted(after))
    print(f"\ndriver killed at {killed_at:.0f} s ({len(finished)} trial(s) finished); "
          f"total with resume {time.time() - t0:.0f} s")


def test_killed_trial_worker_restarts_from_its_checkpoint(tmp_path, started):
    project = _project(tmp_path)
    exp, log, hold = project / "runs" / "worker", tmp_path / "driver.log", tmp_path / "hold"
    ray_hooks.hold_after(hold, 1)  # the first trial to report is held inside its training: the victim
    t0 = time.time()
    driver = _gansearch(["search", "--space", "space.yaml", "--name", "worker", "--storage", "runs",
                         "--trials", "2", "--max-concurrent", "2", "--max-failures", "1", "--quiet"], project, log,
                        hold)
    started.append(driver)
    victim: dict[str, Any] = {}

    def held_after_one_report() -> bool:
        victim.update(ray_hooks.held(hold) or {})
        return bool(victim)

    _wait_for("a trial held after its first report", held_after_one_report, driver, log)
    # Ray writes reports into its local trial folder first and syncs them here every few seconds.
    _wait_for("the held trial's report in the experiment", lambda: _trials(exp).get(victim["trial"]), driver, log)
    pid = int(victim["pid"])
    reps = _trials(exp)[victim["trial"]]
    victim.update(name=victim["trial"], images=reps[-1]["images_seen"])
    assert reps[-1]["pid"] == pid and victim["reports"] == len(reps) == 1 and victim["images"] < BUDGET
    assert pid in _tree(driver.pid)  # the trial's worker belongs to this search's Ray
    os.kill(pid, signal.SIGKILL)
    assert driver.wait(timeout=900) == 0, log.read_text()[-3000:]
    reports = _check_complete(exp, 2)[str(victim["name"])]
    pids = [r["pid"] for r in reports]
    killed = pids.count(pid)
    # Reports up to the kill came from the killed process, the rest from a new one, which
    # continued after the last checkpoint (images_seen kept rising by one eval interval).
    assert killed >= 1 and pids[:killed] == [pid] * killed and pid not in pids[killed:] and len(pids) > killed
    assert "Failure # 1" in (exp / str(victim["name"]) / "error.txt").read_text()
    print(f"\nworker {pid} killed after {victim['images']} images; search done in {time.time() - t0:.0f} s")


# Each builder says it is ready (imports done) and waits for go; then says it asks, and asks. The
# one that trains waits at its first forward until all three have asked: they ask while it
# trains whatever the machine's speed (it cannot finish before the last has asked).
BUILD = """
import json, os, sys, time
from pathlib import Path
import torch
from gan_core.config import DataConfig
from gan_core.metrics.classifier import ClassifierConfig, get_classifier
folder = Path(sys.argv[1])
(folder / f"ready-{os.getpid()}").touch()
while not (folder / "go").exists():
    time.sleep(0.01)

def wait_for_all(module, args):
    handle.remove()
    while len(list(folder.glob("asked-*"))) < 3:
        time.sleep(0.01)

handle = torch.nn.modules.module.register_module_forward_pre_hook(wait_for_all)
t = time.time()
(folder / f"asked-{os.getpid()}").touch()
clf = get_classifier(DataConfig(name="mnist"), config=ClassifierConfig(width=4, features=16, epochs=0.0,
                     min_steps=200, batch_size=64), progress=False)
print(json.dumps({"digest": clf.digest, "trained": clf.trained, "start": t, "end": time.time()}))
"""


def test_three_processes_building_one_classifier_cache(tmp_path, started):
    """Three processes ask at the same moment for a classifier no cache holds: one trains it
    (the others wait on the file lock), all three get the same weights, one cache entry."""
    cache_dir, meet = tmp_path / "cache", tmp_path / "meet"
    meet.mkdir()
    env = {**_env(), "GANSEARCH_CACHE": str(cache_dir), "GANSEARCH_DATA": str(_data_root())}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(meet)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True) for _ in range(3)]
    started.extend(procs)
    deadline = time.time() + 600  # a fail-safe only
    while len(list(meet.glob("ready-*"))) < 3:
        ended = [p.communicate() for p in procs if p.poll() is not None]
        assert not ended and time.time() < deadline, ended
        time.sleep(0.05)
    (meet / "go").touch()  # all three have imported torch: they ask at once
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    rows = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert len({r["digest"] for r in rows}) == 1
    assert sum(r["trained"] for r in rows) == 1
    assert sum("training the mnist reference classifier" in err for _, err in outs) == 1
    entries = sorted(p.name for p in (cache_dir / "classifiers").iterdir())
    assert len([e for e in entries if e.endswith(".pt")]) == 1, entries
    assert not [e for e in entries if ".tmp" in e], entries
    trainer = next(r for r in rows if r["trained"])
    # The others asked while it was training (they waited on the lock, then loaded its entry).
    assert all(r["start"] < trainer["end"] for r in rows)


# ----------------------------------------------------------------------------- signals at any moment

# Three trials of four reports, two at a time: small enough for six interrupted searches and two
# uninterrupted ones. ASHA (reduction factor 2) has rungs at 1024 and 2048 images; PBT perturbs
# the population at 2048.
SIGNAL_SPACE = """
base: mnist-mlp
budget: {images: 4096, eval_every: 1024, grace_images: 1024}
search: {scheduler: fifo, reduction_factor: 2}
params:
  optim.d.lr: {float: [1.0e-4, 1.0e-2], log: true}
  model.width: 0.0625
  model.latent_dim: 16
  model.g_depth: 1
  model.d_depth: 1
  train.batch_size: 32
  train.log_every: 1024
  train.sample_every: 1024
  train.checkpoint_every: 0
  eval.n: 64
  data.data_dir: mnist-here
"""
SIG_BUDGET, SIG_EVERY, SIG_BATCH, SIG_TRIALS = 4096, 1024, 32, 3
# Which moments each scheduler gets: every signal once, the first second (gansearch.json has just
# appeared: Ray has saved nothing yet) for one of them, the k-th report (drawn) for the other.
MATRIX = [("fifo", "SIGINT", "report"), ("fifo", "SIGTERM", "first"), ("asha", "SIGINT", "first"),
          ("asha", "SIGTERM", "report"), ("pbt", "SIGINT", "report"), ("pbt", "SIGTERM", "first")]
FAULT_SEED = int(os.environ.get("GANSEARCH_FAULT_SEED") or random.randrange(2**31))


def _search_args(name: str, scheduler: str) -> list[str]:
    return ["search", "--space", "space.yaml", "--name", name, "--storage", "runs", "--scheduler", scheduler,
            "--trials", str(SIG_TRIALS), "--max-concurrent", "2", "--seed", "5", "--quiet"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The same searches never interrupted, run once per scheduler when a test asks for one."""
    done: dict[str, Path] = {}

    def get(scheduler: str) -> Path:
        if scheduler not in done:
            project = _project(tmp_path_factory.mktemp(f"straight-{scheduler}"), SIGNAL_SPACE)
            log = project / "driver.log"
            proc = _gansearch(_search_args("straight", scheduler), project, log)
            try:
                assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
            finally:
                if proc.poll() is None:
                    _kill_tree(proc)
            done[scheduler] = project / "runs" / "straight"
        return done[scheduler]

    return get


def _member(exp: Path, trial: Path, scheduler: str) -> str:
    """What makes a trial the same one in another run of the search: its PBT member's place, or
    its sampled values and seed (Optuna's trial ids are random)."""
    if scheduler == "pbt":
        return trial.name.rsplit("_", 1)[-1]
    params = json.loads((trial / "params.json").read_text())
    return json.dumps(params, sort_keys=True)


def _history(trial: Path) -> list[tuple[int, float]]:
    return [(r["images_seen"], r["score"]) for r in _reports(trial)]


@pytest.mark.parametrize("scheduler,sig,moment", MATRIX, ids=["-".join(c) for c in MATRIX])
def test_a_signal_at_any_moment_then_resume_loses_nothing(tmp_path, started, uninterrupted, scheduler, sig, moment):
    """Ctrl-C (SIGINT to the driver's process group) or SIGTERM (to the driver, as `kill` sends it)
    at a moment the test observes, drawn from a seed printed with every failure
    (GANSEARCH_FAULT_SEED repeats it), then `gansearch resume`. Whatever moment it lands on:
    every trial's history is complete and appears once in result.json and progress.csv, as the
    trainable reported it, with every sample grid and TensorBoard point; no Optuna trial is left
    RUNNING; ASHA stops only at its rungs and its rungs hold every trial's score; FIFO and PBT
    end as the uninterrupted search of the same seed does, score for score."""
    import optuna

    rng = random.Random(f"{FAULT_SEED}-{scheduler}-{sig}")
    reports = rng.randint(1, 4) if scheduler == "asha" else rng.randint(1, SIG_TRIALS * 4 - 2)
    what = "gansearch.json appears" if moment == "first" else f"the {reports}th report"
    repeat = f"(GANSEARCH_FAULT_SEED={FAULT_SEED}: {sig} to a {scheduler} search when {what})"
    project = _project(tmp_path, SIGNAL_SPACE)
    exp, log = project / "runs" / "sig", tmp_path / "driver.log"
    t0 = time.time()
    driver = _gansearch(_search_args("sig", scheduler), project, log)
    started.append(driver)

    def arrived() -> bool:
        if moment == "first":
            return (exp / "gansearch.json").exists()
        return sum(len(r) for r in _trials(exp).values()) >= reports

    deadline = time.time() + 900
    while not arrived() and driver.poll() is None:
        assert time.time() < deadline, f"{repeat}: never arrived\n{log.read_text()[-3000:]}"
        time.sleep(0.05)
    if driver.poll() is None:
        if sig == "SIGINT":
            os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        else:
            os.kill(driver.pid, signal.SIGTERM)
    first = driver.wait(timeout=600)
    text = log.read_text()
    assert first in (0, 130), f"{repeat}: the stopped search exited {first}\n{text[-3000:]}"
    assert "Traceback" not in text and "SIGTERM received at time" not in text, f"{repeat}\n{text[-3000:]}"
    if first == 130:
        assert f"interrupted: continue with `gansearch resume {exp}`" in text, f"{repeat}\n{text[-2000:]}"
    out = subprocess.run([sys.executable, "-m", "search.cli", "resume", str(exp)], cwd=project, env=_env(),
                         capture_output=True, text=True, timeout=900, start_new_session=True)
    resumed = out.stdout + out.stderr
    assert out.returncode == 0, f"{repeat}\n{resumed[-3000:]}"
    assert "Traceback" not in resumed and "Failed to restore" not in resumed, f"{repeat}\n{resumed[-3000:]}"
    assert f"{SIG_TRIALS}/{SIG_TRIALS} done" in resumed, f"{repeat}\n{resumed[-2000:]}"

    summary = json.loads((exp / "summary.json").read_text())
    counts = summary["counts"]
    assert not summary["interrupted"], (repeat, counts)
    if scheduler == "asha":
        assert counts["completed"] + counts["stopped"] == SIG_TRIALS, (repeat, counts)
    else:
        assert counts["completed"] == SIG_TRIALS, (repeat, counts)
    trials = sorted(d for d in exp.glob("trial_*") if d.is_dir())
    assert len(trials) == SIG_TRIALS, (repeat, [d.name for d in trials])
    for trial in trials:
        history = _history(trial)
        images = [n for n, _ in history]
        # Complete, in order, each report once: 1024, 2048, ... up to where the trial ended.
        assert images == list(range(SIG_EVERY, images[-1] + 1, SIG_EVERY)), (repeat, trial.name, images)
        with open(trial / "progress.csv", newline="") as f:
            assert [(int(float(r["images_seen"])), float(r["score"])) for r in csv.DictReader(f)] == history, \
                (repeat, trial.name)
        if scheduler != "pbt":  # a PBT member's run log is its donor's before it took the checkpoint
            evals = [(r["images_seen"], r["score"]) for r in read_jsonl(trial / "run" / "metrics.jsonl")
                     if r.get("kind") == "eval"]
            assert evals == history, (repeat, trial.name)  # what the trainable computed and reported
        steps = {int(p.stem.split("-")[1]) for p in (trial / "run" / "samples").glob("step-*.png")}
        assert steps >= set(range(0, images[-1] // SIG_BATCH + 1, SIG_EVERY // SIG_BATCH)), (repeat, trial.name, steps)
        scalars, _ = read_events(trial / "run")
        assert [s for s, _ in scalars["eval/score"]] == images, (repeat, trial.name)
        if scheduler == "asha" and images[-1] < SIG_BUDGET:
            assert images[-1] in (1024, 2048), (repeat, trial.name, images)  # stopped at a rung, nowhere else
    if scheduler == "asha":
        (states,) = [pickle.loads(p.read_bytes()) for p in sorted(exp.glob("callback-states-*.pkl"))[-1:]]
        (rungs,) = [s["scheduler"]["rungs"][0] for s in states.values() if s and "scheduler" in s]
        for milestone, recorded in rungs:
            if milestone >= SIG_BUDGET:
                continue  # recorded as trials complete, by ASHA's own rule
            reached = {d.name.removeprefix("trial_"): dict(_history(d)) for d in trials}
            want = {tid: -h[milestone] for tid, h in reached.items() if milestone in h}  # ASHA maximises
            assert recorded == want, (repeat, milestone, recorded, want)  # the rungs survived the stop
    if scheduler != "pbt":
        study = optuna.load_study(study_name="sig", storage=f"sqlite:///{exp / 'optuna.db'}")
        states = [t.state.name for t in study.trials]
        assert len(states) == SIG_TRIALS and "RUNNING" not in states, (repeat, states)
        assert states.count("COMPLETE") == counts["completed"] and states.count("PRUNED") == counts["stopped"]
    if scheduler in ("fifo", "pbt"):
        straight = uninterrupted(scheduler)
        want = {_member(straight, d, scheduler): _history(d) for d in straight.glob("trial_*") if d.is_dir()}
        got = {_member(exp, d, scheduler): _history(d) for d in trials}
        assert got == want, repeat  # every trial, score for score, as if never stopped
        best = json.loads((straight / "summary.json").read_text())["best"]
        assert (summary["best"]["trial_id"].rsplit("_", 1)[-1] if scheduler == "pbt" else summary["best"]["params"]) \
            == (best["trial_id"].rsplit("_", 1)[-1] if scheduler == "pbt" else best["params"]), repeat
        assert summary["best"]["score"] == best["score"], repeat
    print(f"\n{repeat}: stopped search exited {first}; done with the resume in {time.time() - t0:.0f} s")
