"""The README's cluster workflow run for real on one machine (issue 13): cluster.yaml's node types
under Ray's own autoscaler (fake_multinode provider), a search submitted with ``ray job submit``
exactly as the README writes it, GPU workers added for the trials and released after the idle
timeout. Slow (a head, a dashboard and two worker nodes on two cores): ``make cluster-test``.
Every process a test starts is ended by its own id (tests/cluster_config.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests import ray_hooks
from tests.cluster_config import (
    FAKE_HEAD_NODE_ID,
    FakeCluster,
    client_server_port_args,
    copy_raw,
    fake_config,
    free_port,
    has_dashboard,
    node_resources,
    ray_cli,
)
from tests.tiny_space import tiny_space

REPO = Path(__file__).resolve().parents[1]
TRIALS = 4
SPACE = tiny_space()
# A driver that watches the cluster through Ray's public API: the alive nodes every second.
OBSERVER = """
import json, time, ray
ray.init(log_to_driver=False)
while True:
    nodes = sorted([n["NodeID"], n["Resources"].get("GPU", 0.0)] for n in ray.nodes() if n["Alive"])
    print(json.dumps({"t": time.time(), "nodes": nodes}), flush=True)
    time.sleep(1)
"""


def test_fake_config_keeps_cluster_yaml_node_types():
    raw = copy_raw()
    cfg = fake_config(raw, gcs_address="127.0.0.1:1", idle_timeout_minutes=0.1)
    types = cfg["available_node_types"]
    assert types["ray.head.default"]["resources"]["CPU"] == 0 and types["ray.head.default"]["max_workers"] == 0
    assert "GPU" not in types["ray.head.default"]["resources"]
    for name in ("gpu_spot", "gpu_on_demand"):
        src = raw["available_node_types"][name]
        assert (types[name]["min_workers"], types[name]["max_workers"]) == (src["min_workers"], src["max_workers"])
        assert {k: v for k, v in types[name]["resources"].items() if k != "object_store_memory"} == \
            node_resources(src) == {"CPU": 4, "GPU": 1}
    assert cfg["max_workers"] == raw["max_workers"] and cfg["idle_timeout_minutes"] == 0.1
    assert cfg["provider"]["type"] == "fake_multinode" and cfg["provider"]["gcs_address"] == "127.0.0.1:1"
    assert cfg["setup_commands"] == [] and cfg["docker"] == {} and cfg["file_mounts"] == {}


@pytest.fixture
def cluster():
    if not has_dashboard():
        pytest.skip("`ray job submit` needs ray[default] (the dashboard): run `make cluster-test`")
    root = Path(tempfile.mkdtemp(prefix="gsf", dir="/tmp"))  # short: Ray's socket paths live here
    c = FakeCluster(root)
    c.start()
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_for_dashboard(c: FakeCluster, timeout: float = 180) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(c.dashboard + "/api/version", headers={"Authorization": f"Bearer {c.token}"})
    deadline = time.time() + timeout
    while True:
        assert c.proc is not None and c.proc.poll() is None, (c.root / "head.log").read_text()[-3000:]
        try:
            opener.open(request, timeout=5).read()
            return
        except OSError:
            assert time.time() < deadline, "the head's dashboard did not come up"
            time.sleep(1)


def read_observations(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.mark.cluster
def test_autoscaler_adds_gpu_workers_for_the_search_and_releases_them(cluster, tmp_path):
    t0 = time.time()
    space = cluster.root / "space.yaml"
    space.write_text(SPACE)
    storage = cluster.root / "results"
    wait_for_dashboard(cluster)
    t_up = time.time()
    obs_path = tmp_path / "nodes.jsonl"
    with open(obs_path, "w") as obs_out:
        observer = subprocess.Popen([sys.executable, "-c", OBSERVER], env=cluster.env(RAY_ADDRESS=cluster.address),
                                    stdout=obs_out, stderr=subprocess.DEVNULL, start_new_session=True)
        cluster.pids.add(observer.pid)
        try:
            # The README's command, with a tiny space and budget; the logical GPUs have no CUDA
            # behind them (--allow-cpu-fallback). The trials wait inside their training until all
            # four are there (tests/ray_hooks.py, installed in the job's workers): two GPU workers
            # are then needed whatever the speed of the machine against the autoscaler's clock.
            barrier = tmp_path / "barrier"
            barrier.mkdir()
            ray_hooks.arm(barrier, TRIALS)
            hook = {"worker_process_setup_hook": "tests.ray_hooks.setup",
                    "env_vars": {ray_hooks.BARRIER_ENV: str(barrier)}}
            job = subprocess.run(
                ray_cli("job", "submit", "--address", cluster.dashboard, "--runtime-env-json", json.dumps(hook),
                        "--", "gansearch", "search",
                        "--space", str(space), "--name", "scaled", "--address", "auto", "--storage", str(storage),
                        "--gpus-per-trial", "0.5", "--cpus-per-trial", "1", "--max-concurrent", str(TRIALS),
                        "--trials", str(TRIALS), "--quiet", "--allow-cpu-fallback"),
                env=cluster.env(), cwd=REPO, capture_output=True, text=True, timeout=900)
            t_done = time.time()
            assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-3000:]
            assert len(list(barrier.glob("arrived-*"))) == TRIALS
            cluster.remember_processes()
            # The workers go once idle for idle_timeout_minutes (6 s here).
            deadline = time.time() + 180
            while True:
                seen = read_observations(obs_path)
                if seen and time.time() > t_done and [n[0] for n in seen[-1]["nodes"]] == [FAKE_HEAD_NODE_ID]:
                    break
                assert time.time() < deadline, f"workers not released: {seen[-1] if seen else None}"
                time.sleep(1)
        finally:
            observer.send_signal(signal.SIGTERM)
            observer.wait(timeout=30)

    summary = json.loads((storage / "scaled" / "summary.json").read_text())
    assert summary["counts"]["completed"] == TRIALS == len(summary["trials"]), summary["counts"]
    assert not summary["interrupted"]
    seen = read_observations(obs_path)
    workers = {n[0]: n[1] for s in seen for n in s["nodes"] if n[0] != FAKE_HEAD_NODE_ID}
    assert len(workers) >= 2 and all(gpus == 1.0 for gpus in workers.values()), workers  # gpu_spot nodes
    assert max(sum(n[0] != FAKE_HEAD_NODE_ID for n in s["nodes"]) for s in seen) <= copy_raw()["max_workers"]
    reports = [json.loads(p.read_text().splitlines()[-1]) for p in (storage / "scaled").glob("*/result.json")]
    assert len(reports) == TRIALS
    assert sorted(r["node_id"] for r in reports) == sorted(t["node_id"] for t in summary["trials"])
    for r in reports:
        assert r["node_id"] in workers and r["node_id"] != FAKE_HEAD_NODE_ID, r
        assert r["device"] == "cpu" and r["gpu_ids"], r  # a fake GPU: Ray assigns it, no CUDA behind it
    assert len({r["node_id"] for r in reports}) >= 2

    # The timeline, for the record (printed with -s or on failure).
    first_seen = {}
    last_seen = {}
    for s in seen:
        for node, _ in s["nodes"]:
            first_seen.setdefault(node, s["t"])
            last_seen[node] = s["t"]
    lines = [f"dashboard up {t_up - t0:.0f} s after `ray start`; job submitted at {t_up - t0:.0f} s, "
             f"done at {t_done - t0:.0f} s; test wall time {time.time() - t0:.0f} s"]
    for node in sorted(workers, key=first_seen.get):
        trials = [r for r in reports if r["node_id"] == node]
        starts = ", ".join(f"{t['started_at'] - t0:.0f}" for t in trials)
        lines.append(f"worker ..{node[-5:]}: up {first_seen[node] - t0:.0f} s, trials started at {starts} s, "
                     f"gone after {last_seen[node] - t0:.0f} s")
    print("\nautoscaler timeline (seconds from `ray start`):\n  " + "\n  ".join(lines))
    assert os.path.exists(storage / "scaled" / "best_config.yaml")


# ----------------------------------------------------------------------------- the cluster boundary


def test_boundary_messages_name_cause_and_fix():
    from search.raytune import address as ra

    target = ra.Target("10.0.0.5:6379", "10.0.0.5:6379", "--address")
    assert "RAY_AUTH_MODE is not token here; export RAY_AUTH_MODE=token and copy the cluster's token" in \
        ra.token_failure(target, token_mode=False, has_token=True)
    assert "no token was found" in ra.token_failure(target, token_mode=True, has_token=False)
    assert "refused this process's token" in ra.token_failure(target, token_mode=True, has_token=True)
    gpu = {"CPU": 1.0, "GPU": 0.5}
    assert ra.fits(gpu, {"CPU": 4.0, "GPU": 1.0}) and not ra.fits(gpu, {"CPU": 4.0})
    assert not ra.fits({"CPU": 1.0, "GPU": 0.0}, {"CPU": 0.0}) and ra.fits({"CPU": 1.0, "GPU": 0.0}, {"CPU": 1.0})
    busy = ra.unplaceable(gpu, [{"CPU": 0.0}, {"CPU": 4.0, "GPU": 1.0}], "the Ray cluster at x", 60.0)
    assert busy.startswith("no trial could start within 60 s: each trial asks for 1 CPU, 0.5 GPU and the nodes "
                           "that could hold one stayed busy (the Ray cluster at x: nodes with 0 CPU, 0 GPU; "
                           "4 CPU, 1 GPU)"), busy
# A plain `ray start --head` (token auth, 1 CPU, no GPU, no autoscaler config): what a user's
# first cluster looks like. Each failure ends in one line naming cause and fix, exit code 2.

CONNECT = """
import sys
from gan_core.errors import GansearchError
from search.raytune import address as ray_address, cluster as tune_cluster
target = ray_address.resolve(sys.argv[1])
try:
    ray_address.join(target, 20.0, lambda: tune_cluster.connect(target, log_to_driver=False))
except GansearchError as exc:
    print(f"gansearch: error: {exc}", file=sys.stderr)
    sys.exit(2)
print("joined")
"""


@pytest.fixture(scope="module")
def plain_head():
    """A head as `ray start --head` makes it, with its own token, ports and temp dir."""
    root = Path(tempfile.mkdtemp(prefix="gsh", dir="/tmp"))
    c = FakeCluster(root)  # only for its token, ports, environment and teardown by id
    cmd = ray_cli("start", "--head", "--block", f"--port={c.port}", "--node-ip-address=127.0.0.1",
                  f"--temp-dir={root / 'ray'}", "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false",
                  f"--dashboard-agent-listen-port={free_port()}", *client_server_port_args(),
                  f"--metrics-export-port={free_port()}", "--object-store-memory=100000000", "--disable-usage-stats")
    c.log = open(root / "head.log", "w")
    c.proc = subprocess.Popen(cmd, env=c.env(), cwd=REPO, stdout=c.log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    c.pids.add(c.proc.pid)
    try:
        deadline = time.time() + 120
        while True:  # up once the right token joins
            assert c.proc.poll() is None, (root / "head.log").read_text()[-3000:]
            out = subprocess.run([sys.executable, "-c", CONNECT, c.address], env=c.env(), cwd=REPO,
                                 capture_output=True, text=True, timeout=120)
            if out.returncode == 0:
                break
            assert time.time() < deadline, out.stderr[-3000:]
            time.sleep(1)
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("gansearch: error: "), out.stderr[-3000:]
    return last


def client_env(c: FakeCluster, home: Path, **auth: str) -> dict[str, str]:
    """A client machine: its own (empty) home, so ~/.ray/auth_token is not this machine's."""
    env = {k: v for k, v in c.env().items() if not k.startswith("RAY_AUTH")}
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home), **auth}


TOKEN_CASES = [  # (client's auth environment, cause, fix)
    ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 32},
     "the cluster refused this process's token", "`ray get-auth-token` on the head prints it"),
    ({"RAY_AUTH_MODE": "token"}, "RAY_AUTH_MODE=token but no token was found", "to ~/.ray/auth_token here"),
    ({}, "the cluster requires a token and RAY_AUTH_MODE is not token here", "export RAY_AUTH_MODE=token and"),
]


def test_a_missing_or_wrong_token_fails_in_one_line(plain_head, tmp_path):
    """Ray alone retries for a minute and ends in a traceback (or aborts, with no token at all)."""
    procs = [subprocess.Popen([sys.executable, "-c", CONNECT, plain_head.address],
                              env=client_env(plain_head, tmp_path / f"home{i}", **auth), cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, (auth, _, _) in enumerate(TOKEN_CASES)]  # at once: each is mostly Ray's import
    for proc, (_, cause, fix) in zip(procs, TOKEN_CASES, strict=True):
        stdout, stderr = proc.communicate(timeout=120)
        line = one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
        assert f"cannot join the Ray cluster at {plain_head.address} (from --address): {cause}" in line, line
        assert fix in line, line


def search_cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    cmd = [sys.executable, "-m", "search.cli", "search", "--space", str(space), "--name", "t",
           "--storage", str(tmp_path / "runs"), "--trials", "1", "--quiet", *args]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.cluster  # the whole command: a search process each (~40 s here)
def test_the_search_command_names_the_token_fix(plain_head, tmp_path):
    out = search_cli(tmp_path, client_env(plain_head, tmp_path / "home", RAY_AUTH_MODE="token",
                                          RAY_AUTH_TOKEN="1" * 32), "--address", plain_head.address)
    assert "the cluster refused this process's token" in one_line_error(out)
    assert not (tmp_path / "runs").exists()  # nothing written: the same --name works later


@pytest.mark.cluster  # the whole command: a search process each (~40 s here)
def test_trials_no_node_can_hold_end_in_one_line_on_a_cluster(plain_head, tmp_path):
    """--gpus-per-trial 1 on a cluster of CPU nodes that no autoscaler grows: no endless wait."""
    out = search_cli(tmp_path, plain_head.env(), "--address", plain_head.address, "--gpus-per-trial", "1",
                     "--pending-timeout", "5")
    line = one_line_error(out)
    assert "no trial could start within 5 s: each trial asks for 1 CPU, 1 GPU and no node has that" in line
    assert "(the Ray cluster at " in line and "nodes with 1 CPU, 0 GPU" in line, line
    assert "lower --gpus-per-trial" in line and "--pending-timeout" in line
    assert line.endswith("why the autoscaler added none (a GPU quota of 0, no spot role, a launch error): "
                         "`ray monitor cluster.yaml`"), line
    assert "waiting up to 5 s for the autoscaler" in out.stdout


@pytest.mark.cluster  # the whole command: a search process each (~40 s here)
def test_trials_no_node_can_hold_end_at_once_on_a_private_ray(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {
        "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    root = Path(tempfile.mkdtemp(prefix="gsp", dir="/tmp"))
    try:
        out = search_cli(tmp_path, env | {"RAY_TMPDIR": str(root)}, "--gpus-per-trial", "1", "--cpus-per-trial", "1")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    line = one_line_error(out)
    assert "no trial can start: each trial asks for 1 CPU, 1 GPU and no node has that (this machine's private " \
           "Ray: nodes with" in line and "join a cluster that has them with --address" in line, line
    assert not (tmp_path / "runs").exists()
