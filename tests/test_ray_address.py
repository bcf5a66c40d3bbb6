"""Which Ray a search runs on (issue 14), with real processes: a stale session file does not stop
a laptop search, a dead address fails in one line within the bound, and a search inside a Ray
job (RAY_ADDRESS set) joins that cluster. Every process a test starts is ended by its own id."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gan_core.errors import GansearchError
from search.raytune import address as ra
from tests.tiny_space import tiny_space

REPO = Path(__file__).resolve().parents[1]
RAY_BIN = Path(sys.executable).with_name("ray")
SPACE = tiny_space()
RAY_WARNINGS = ("Failed to connect to GCS", "Failed to get cluster ID", "Traceback")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def short_tmp():
    """A private Ray temp dir (RAY_TMPDIR) short enough for Ray's socket paths: the session file
    the tests plant there never touches the machine's /tmp/ray, which other users' Ray reads."""
    path = Path(tempfile.mkdtemp(prefix="gsa", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def env_for(short: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update({"RAY_TMPDIR": str(short), "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0",
                "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


def search(tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    cmd = [sys.executable, "-m", "search.cli", "search", "--space", str(space), "--name", "t",
           "--storage", str(tmp_path / "runs"), "--trials", "1", "--cpus-per-trial", "1", "--quiet", *args]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def plant_session_file(short: Path, address: str) -> Path:
    path = short / "ray" / "ray_current_cluster"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(address)
    return path


# ----------------------------------------------------------------------------- deciding


def test_resolve_follows_the_three_cases(short_tmp, monkeypatch):
    from ray._common.utils import get_ray_address_file

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(short_tmp))
    assert ra.session_file() == Path(get_ray_address_file(None))  # where Ray itself looks
    stale = plant_session_file(short_tmp, "127.0.0.1:1")
    assert ra.resolve(None) == ra.Target("local", "local", "")  # the session file is not read
    assert ra.resolve("local").local
    auto = ra.resolve("auto")
    assert (auto.init_address, auto.address) == ("auto", "127.0.0.1:1") and str(stale) in auto.source
    assert ra.resolve("10.0.0.5:6379") == ra.Target("10.0.0.5:6379", "10.0.0.5:6379", "--address")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")  # inside a Ray job
    assert ra.resolve(None) == ra.Target(None, "10.0.0.7:6379", "RAY_ADDRESS")
    assert ra.resolve("auto") == ra.Target("auto", "10.0.0.7:6379", "RAY_ADDRESS")
    assert ra.resolve("10.0.0.5:6379").address == "10.0.0.5:6379"  # the flag wins
    monkeypatch.delenv("RAY_ADDRESS")
    stale.unlink()
    with pytest.raises(GansearchError, match="--address auto: no Ray cluster is registered on this machine"):
        ra.resolve("auto")
    for bad in ("foo", "host:", ":6379", "host:99999"):
        with pytest.raises(GansearchError, match="is not auto, local or HOST:PORT"):
            ra.resolve(bad)
    assert ra.host_port("ray://[::1]:10001") == ("::1", 10001)


# ----------------------------------------------------------------------------- real processes


@pytest.mark.e2e  # make test-e2e: a whole workflow; CI runs it
def test_a_stale_session_file_does_not_stop_a_laptop_search(tmp_path, short_tmp, monkeypatch):
    """A cluster ended without `ray stop` left its address behind: Ray's own ray.init() would
    join it; `gansearch search` without --address starts a private Ray and completes."""
    from ray._private.services import get_ray_address_from_environment

    dead = f"127.0.0.1:{free_port()}"
    plant_session_file(short_tmp, dead)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(short_tmp))
    assert get_ray_address_from_environment(None, None) == dead  # what ray.init() would join
    out = search(tmp_path, env_for(short_tmp))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    # Completed, so it ran on a Ray of its own (the dead address would have refused it); --quiet
    # keeps Ray's "Started a local Ray instance" line out of the output.
    assert dead not in out.stdout + out.stderr
    summary = json.loads((tmp_path / "runs" / "t" / "summary.json").read_text())
    assert summary["counts"]["completed"] == 1


# The CLI's one line for each source; test_resolve_follows_the_three_cases checks every source
# in-process, so make test runs the --address one and make test-e2e the other two.
@pytest.mark.parametrize("how", ["--address", pytest.param("RAY_ADDRESS", marks=pytest.mark.e2e),
                                 pytest.param("auto", marks=pytest.mark.e2e)])
def test_a_dead_address_fails_in_one_line_within_the_bound(tmp_path, short_tmp, how):
    dead = f"127.0.0.1:{free_port()}"
    args, extra = ["--connect-timeout", "2"], {}
    if how == "--address":
        args += ["--address", dead]
    elif how == "RAY_ADDRESS":
        extra["RAY_ADDRESS"] = dead
    else:
        args += ["--address", "auto"]
        plant_session_file(short_tmp, dead)
    out = search(tmp_path, env_for(short_tmp, **extra), *args, timeout=300)  # a hang fails here, a slow import not
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith(f"gansearch: error: cannot join the Ray cluster at {dead} (from ")
    expected = {"--address": "(from --address)", "RAY_ADDRESS": "(from RAY_ADDRESS)",
                "auto": f"(from Ray's session file {short_tmp / 'ray' / 'ray_current_cluster'})"}[how]
    assert expected in lines[-1] and "within 2 s" in lines[-1]
    assert not any(w in out.stderr for w in RAY_WARNINGS), out.stderr
    assert not (tmp_path / "runs").exists()  # nothing written: the same --name works later


NODES = """
import json, ray
ray.init(include_dashboard=False, log_to_driver=False)
print(json.dumps(sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])))
"""


@pytest.mark.e2e  # make test-e2e: a whole workflow; CI runs it
def test_inside_a_ray_job_the_search_joins_the_jobs_cluster(tmp_path, short_tmp):
    """RAY_ADDRESS names a live cluster (as Ray sets it for a job's driver): the search runs its
    trial there instead of starting a Ray of its own."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = env_for(short_tmp, RAY_AUTH_MODE="token")
    log = open(tmp_path / "head.log", "w")
    head = subprocess.Popen([str(RAY_BIN), "start", "--head", f"--port={port}", f"--temp-dir={short_tmp / 'head'}",
                             "--include-dashboard=false", f"--dashboard-agent-listen-port={free_port()}",
                             "--num-cpus=1", "--num-gpus=0", "--block", "--disable-usage-stats",
                             "--node-ip-address=127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        job_env = {**env, "RAY_ADDRESS": address}
        deadline = time.time() + 120
        while True:
            assert head.poll() is None, (tmp_path / "head.log").read_text()
            nodes = subprocess.run([sys.executable, "-c", NODES], env=job_env, cwd=REPO, capture_output=True,
                                   text=True, timeout=120)
            if nodes.returncode == 0:
                break
            assert time.time() < deadline, nodes.stderr[-2000:]
            time.sleep(1)
        (node,) = json.loads(nodes.stdout.strip().splitlines()[-1])
        out = search(tmp_path, job_env)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
        assert "Started a local Ray instance" not in out.stderr
        summary = json.loads((tmp_path / "runs" / "t" / "summary.json").read_text())
        assert [t["node_id"] for t in summary["trials"]] == [node]
    finally:
        head.terminate()  # --block: `ray start` stops its node's processes when terminated
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)  # the group holds only this node's processes
            head.wait()
        log.close()
