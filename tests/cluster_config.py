"""cluster.yaml run on one machine by Ray's own autoscaler (the ``fake_multinode`` node provider).

``fake_config`` derives an autoscaling config from cluster.yaml itself: its node types with their
resources, min/max workers and the cluster's limits; the provider swapped for ``fake_multinode``
(each "node" a raylet started on this machine by the autoscaler); setup commands, docker and
file mounts dropped. ``FakeCluster`` starts it the way ``ray.cluster_utils.AutoscalingCluster``
does (``RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=...``) but on unique ports, in
its own temp dir and process group, with its own auth token, and ends every process it started
by id: other Ray instances on this machine are never touched (no ``ray stop``).
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER_YAML = REPO / "cluster.yaml"

# What Ray's AWS provider detects on these instance types (it reads them from EC2 when a node
# type's resources are left empty, as cluster.yaml's GPU types are).
INSTANCE_RESOURCES: dict[str, dict[str, float]] = {
    "m5.xlarge": {"CPU": 4},
    "g5.xlarge": {"CPU": 4, "GPU": 1},
}
# The fake provider names its head node so; the head type is renamed to match.
FAKE_HEAD_TYPE = "ray.head.default"
FAKE_HEAD_NODE_ID = "f" * 51 + "00000"  # ray.autoscaler._private.fake_multi_node.node_provider
OBJECT_STORE_BYTES = 100 * 1024 * 1024  # per node; Ray's default (30% of RAM) per fake node is too much


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_server_port_args() -> list[str]:
    """``--ray-client-server-port`` on a free port when Ray Client is installed (grpc: ray[client],
    ray[default] or tensorboard bring it); without it ``ray start`` refuses the flag and starts no
    client server anyway, so nothing can collide with another Ray's default port 10001."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        return []
    return [f"--ray-client-server-port={free_port()}"]


def node_resources(node_type: dict[str, Any]) -> dict[str, float]:
    """A node type's resources as Ray would advertise them: the instance's, then cluster.yaml's."""
    detected = INSTANCE_RESOURCES[node_type["node_config"]["InstanceType"]]
    return {**detected, **(node_type.get("resources") or {})}


def fake_config(raw: dict[str, Any], *, gcs_address: str, idle_timeout_minutes: float | None = None) -> dict[str, Any]:
    """cluster.yaml's node types and limits under the fake_multinode provider."""
    types: dict[str, Any] = {}
    for name, t in raw["available_node_types"].items():
        head = name == raw["head_node_type"]
        types[FAKE_HEAD_TYPE if head else name] = {
            "resources": {**node_resources(t), "object_store_memory": OBJECT_STORE_BYTES},
            "node_config": {},
            "min_workers": 0 if head else t.get("min_workers", 0),
            "max_workers": 0 if head else t.get("max_workers", raw["max_workers"]),
        }
    timeout = raw["idle_timeout_minutes"] if idle_timeout_minutes is None else idle_timeout_minutes
    return {
        "cluster_name": raw["cluster_name"],
        "max_workers": raw["max_workers"],
        "upscaling_speed": raw.get("upscaling_speed", 1.0),
        "idle_timeout_minutes": timeout,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": gcs_address},
        "auth": {},
        "available_node_types": types,
        "head_node_type": FAKE_HEAD_TYPE,
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def ray_cli(*args: str) -> list[str]:
    """The ``ray`` command of this interpreter (its venv may not have a ``ray`` script of its own)."""
    return [sys.executable, "-m", "ray.scripts.scripts", *args]


def has_dashboard() -> bool:
    """``ray job submit`` needs the head's dashboard, which needs ray[default] (aiohttp ...)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class FakeCluster:
    """A fake-multinode cluster of cluster.yaml with its own ports, temp dir and token."""

    root: Path  # short: Ray's socket paths live under it
    idle_timeout_minutes: float = 0.1
    raw: dict[str, Any] = field(default_factory=lambda: yaml.safe_load(CLUSTER_YAML.read_text()))
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    pids: set[int] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every process of this cluster and of its clients."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
        path = os.pathsep.join([str(Path(sys.executable).parent), str(REPO / ".venv" / "bin"), env.get("PATH", "")])
        env.update({"RAY_TMPDIR": str(self.root), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                    "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
                    "PATH": path})
        env.update(extra)
        return env

    def start(self) -> None:
        config = fake_config(self.raw, gcs_address=self.address, idle_timeout_minutes=self.idle_timeout_minutes)
        config_path = self.root / "autoscaling.yaml"
        config_path.write_text(json.dumps(config))
        head = config["available_node_types"][FAKE_HEAD_TYPE]["resources"]
        cmd = ray_cli("start", "--head", "--block", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                      f"--autoscaling-config={config_path}", f"--temp-dir={self.root / 'ray'}",
                      f"--num-cpus={int(head.get('CPU', 0))}", f"--num-gpus={int(head.get('GPU', 0))}",
                      f"--object-store-memory={OBJECT_STORE_BYTES}", "--dashboard-host=127.0.0.1",
                      f"--dashboard-port={self.dashboard_port}", *client_server_port_args(),
                      f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
                      "--disable-usage-stats")
        env = self.env(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")
        self.log = open(self.root / "head.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pids.add(self.proc.pid)

    def descendants(self) -> set[int]:
        """Every live process started under the head's ``ray start`` (by parent id)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found: set[int] = set()
        todo = [p for p in self.pids]
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def remember_processes(self) -> None:
        """Note the processes started so far (the autoscaler's fake nodes are grandchildren that
        outlive their parent's exit), so that ``stop`` ends them by id."""
        self.pids |= self.descendants()

    def stop(self) -> None:
        """End every process this cluster started, by id: TERM, then KILL what is left."""
        if self.proc is None:
            return
        self.remember_processes()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in sorted(self.pids):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + (5 if sig == signal.SIGTERM else 30)
            while time.time() < deadline and any(_alive(p) for p in self.pids):
                self.proc.poll()
                time.sleep(0.2)
        self.proc.wait()
        self.log.close()
        self.proc = None

    def session_logs(self) -> Path:
        return self.root / "ray" / "session_latest" / "logs"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def log_events(path: Path, patterns: dict[str, str]) -> list[tuple[float, str, str]]:
    """(unix time, event, line) for every line of a Ray log matching one of ``patterns``."""
    events = []
    for line in path.read_text(errors="replace").splitlines():
        m = _STAMP.match(line)
        if not m:
            continue
        for event, pattern in patterns.items():
            if re.search(pattern, line):
                t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                events.append((t, event, line))
    return events


def copy_raw() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(CLUSTER_YAML.read_text()))
