"""A study database a team shares, for real: searches against a real PostgreSQL server.

`.ci/with-postgres` starts one of its own (loopback, a temporary data directory) and sets
GANSEARCH_TEST_POSTGRES to its URL; `make postgres-test` runs these under it, and CI does. Without
the variable every test here is skipped with one line saying so. Real searches (`gansearch
search` and `resume` as processes, each with a private Ray, tiny GANs), no mocks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[1]
URL_VAR = "GANSEARCH_TEST_POSTGRES"

# A tiny dense GAN with every trial's grid drawn at its evaluations; fifo: every trial completes.
SPACE = """
base: mnist-mlp
budget: {images: 1024, eval_every: 512, grace_images: 512}
search: {scheduler: fifo, cpus_per_trial: 1}
params:
  optim.d.lr: {float: [1.0e-4, 1.0e-2], log: true}
  optim.g.lr: {float: [1.0e-4, 1.0e-2], log: true}
  model.width: 0.0625
  model.latent_dim: 16
  model.g_depth: 1
  model.d_depth: 1
  train.batch_size: 32
  train.log_every: 512
  train.sample_every: 512
  train.checkpoint_every: 0
  eval.n: 64
"""


@pytest.fixture(scope="module")
def url() -> str:
    value = os.environ.get(URL_VAR, "").strip()
    if not value:
        pytest.skip(f"{URL_VAR} is not set: give it a PostgreSQL URL (.ci/with-postgres starts a server and sets it)")
    return value


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)  # a private Ray, never someone else's
    env.pop("GANSEARCH_OPTUNA_STORAGE", None)
    return env


def _gansearch(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """`gansearch ARGS` in its own session (its Ray in its process group)."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "search.cli", *args], cwd=cwd, env=_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 900) -> None:
    assert proc.wait(timeout=timeout) == 0, log.read_text()[-4000:]


def _study(url: str, name: str) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=url)


def _wait_for(what: str, check: Any, proc: subprocess.Popen, log: Path, timeout: float = 600) -> Any:
    """Poll ``check`` (the study's state: what the code under test has done) until it answers."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        assert proc.poll() is None, f"the search ended before {what}:\n{log.read_text()[-4000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout} s:\n{log.read_text()[-4000:]}")


def _names(url: str) -> list[str]:
    import optuna

    return optuna.study.get_all_study_names(storage=url)


def _trial_ids(exp: Path) -> set[str]:
    return {p.name.removeprefix("trial_") for p in exp.iterdir() if p.is_dir() and p.name.startswith("trial_")
            and (p / "params.json").exists()}


@pytest.fixture(scope="module")
def shared(url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two searches writing one study at once: A starts it, B joins it (--join-study) while A runs."""
    root = tmp_path_factory.mktemp("shared")
    (root / "space.yaml").write_text(SPACE)
    name = f"team-{uuid.uuid4().hex[:8]}"
    common = ["search", "--space", "space.yaml", "--name", name, "--optuna-storage", url, "--trials", "4",
              "--max-concurrent", "1", "--quiet"]
    a = _gansearch([*common, "--storage", "alice", "--seed", "1"], root, root / "a.log")
    _wait_for("the study", lambda: name in _names(url), a, root / "a.log")
    b = _gansearch([*common, "--storage", "bob", "--seed", "2", "--join-study"], root, root / "b.log")
    _finish(a, root / "a.log")
    _finish(b, root / "b.log")
    return {"url": url, "name": name, "exps": [root / "alice" / name, root / "bob" / name], "root": root}


def test_two_searches_write_one_study_and_no_trial_is_lost_or_numbered_twice(shared):
    from optuna.trial import TrialState

    study = _study(shared["url"], shared["name"])
    trials = study.get_trials(deepcopy=False)
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(8))  # 4 + 4, each number once
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    a, b = (_trial_ids(e) for e in shared["exps"])
    assert len(a) == len(b) == 4 and not a & b
    # Every trial of each experiment is in the study once, tagged with the experiment that ran it.
    by_tune_id = {t.user_attrs["tune_trial_id"]: t for t in trials}
    assert set(by_tune_id) == a | b and len(by_tune_id) == 8
    for exp, ids in zip(shared["exps"], (a, b), strict=True):
        assert {tid for tid, t in by_tune_id.items() if t.user_attrs["experiment"] == str(exp)} == ids
    # B drew its own points: none of its trials repeats one of A's.
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 8


def test_a_search_joining_a_study_of_another_space_is_refused_in_one_line(shared):
    (shared["root"] / "other.yaml").write_text(SPACE.replace("1.0e-2], log: true}\n  optim.g.lr", "1.0e-3], log: true}\n  optim.g.lr"))
    out = subprocess.run([sys.executable, "-m", "search.cli", "search", "--space", "other.yaml", "--name",
                          shared["name"], "--optuna-storage", shared["url"], "--storage", "carol", "--join-study"],
                         cwd=shared["root"], env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "searches another space" in out.stderr
    assert not (shared["root"] / "carol").exists()


def test_optuna_dashboard_lists_every_trial_with_its_sample_grid(shared):
    """optuna-dashboard's own WSGI app, served on loopback, read through its HTTP API."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import optuna
    from optuna_dashboard import wsgi

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    study = _study(shared["url"], shared["name"])
    for exp in shared["exps"]:  # each search's grids are in its own folder: one dashboard each
        store = optuna.artifacts.FileSystemArtifactStore(str(exp / "optuna-artifacts"))
        server = make_server("127.0.0.1", 0, wsgi(shared["url"], artifact_store=store), handler_class=Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            studies = json.loads(urllib.request.urlopen(f"{base}/api/studies", timeout=60).read())["study_summaries"]
            (sid,) = [s["study_id"] for s in studies if s["study_name"] == shared["name"]]
            detail = json.loads(urllib.request.urlopen(f"{base}/api/studies/{sid}", timeout=60).read())
            assert sorted(t["number"] for t in detail["trials"]) == list(range(8))  # every trial listed
            mine = _trial_ids(exp)
            for t in detail["trials"]:
                attrs = {a["key"]: a["value"] for a in t["user_attrs"]}  # as the dashboard shows them: text
                if attrs["tune_trial_id"] not in mine:
                    continue
                (grid,) = t["artifacts"]
                assert grid["mimetype"] == "image/png"
                png = urllib.request.urlopen(f"{base}/artifacts/{sid}/{t['trial_id']}/{grid['artifact_id']}",
                                             timeout=60).read()
                newest = sorted((exp / f"trial_{attrs['tune_trial_id']}" / "run" / "samples").glob("step-*.png"))[-1]
                assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == newest.read_bytes()
        finally:
            server.shutdown()
            server.server_close()
    assert len(study.trials) == 8


def _tree(pid: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                kids.setdefault(int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        out.add(p)
        todo += kids.get(p, [])
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the search's process group (the driver and its private Ray) and what left it."""
    pids = _tree(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)


def test_a_driver_killed_with_kill_9_leaves_no_trial_running(url, tmp_path):
    """The driver is killed the moment the study shows a RUNNING trial (asked for, not yet in any
    state Ray saved); `gansearch resume` then finishes the search, and no trial of the study
    stays RUNNING: the ones Ray knew ran to the end, the one it never saved is marked FAIL."""
    from optuna.trial import TrialState

    (tmp_path / "space.yaml").write_text(SPACE)
    name = f"killed-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "search.log"
    proc = _gansearch(["search", "--space", "space.yaml", "--name", name, "--storage", "runs",
                       "--optuna-storage", url, "--trials", "3", "--max-concurrent", "1", "--quiet"], tmp_path, log)
    running = _wait_for("a RUNNING trial", lambda: name in _names(url) and [
        t for t in _study(url, name).get_trials(deepcopy=False) if t.state == TrialState.RUNNING], proc, log)
    _kill_tree(proc)
    assert [t.state for t in _study(url, name).get_trials(deepcopy=False)
            if t.number == running[0].number] == [TrialState.RUNNING]  # what the kill left
    resumed = _gansearch(["resume", str(tmp_path / "runs" / name)], tmp_path, tmp_path / "resume.log")
    _finish(resumed, tmp_path / "resume.log")
    trials = _study(url, name).get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == 3  # the search's three trials ran (a trial Ray had saved, resumed)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert all(t.user_attrs["experiment"] == str(tmp_path / "runs" / name) for t in failed)
    if failed:
        assert "marked FAIL" in (tmp_path / "resume.log").read_text()
