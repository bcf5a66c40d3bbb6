"""Which Ray a search runs on: a private local one, or a cluster joined within a bounded wait.

``ray.init()`` without an address joins whatever cluster ``ray start`` last registered on the
machine (Ray keeps its address in a session file that outlives the cluster), and joining an
address where nothing answers waits for many minutes while Ray prints warnings. So gansearch
decides itself, and tune.py calls ``ray.init`` with the answer:

- no ``--address``: a private local Ray (``ray.init(address="local")``), unless the command runs
  inside a Ray job, where Ray sets ``RAY_ADDRESS`` and joining that cluster is right;
- ``--address auto``: Ray's meaning, the cluster registered on this machine (``RAY_ADDRESS``,
  else Ray's session file);
- ``--address HOST:PORT`` (or ``ray://HOST:PORT``): that cluster.

Joining waits at most ``timeout`` seconds for the address to accept a connection, and as long
again for Ray to answer on it; past either, one line names the address, where it came from and
what to do (exit code 2). This module does not import Ray.

Example::

    target = resolve(args.address)          # Target(init_address='local', address='local', source='')
    join(target, 30.0, lambda: ray.init(address=target.init_address))
"""

from __future__ import annotations

import math
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gan_core.errors import GansearchError

ENV = "RAY_ADDRESS"
LOCAL = "local"
AUTO = "auto"
DEFAULT_CONNECT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    """The Ray to use: ``init_address`` goes to ``ray.init`` as it is ("local", "auto", an
    address, or None to let Ray read RAY_ADDRESS as it does in a job); ``address`` is where that
    leads and ``source`` where it came from, for messages."""

    init_address: str | None
    address: str
    source: str

    @property
    def local(self) -> bool:
        return self.init_address == LOCAL


def session_file() -> Path:
    """Where ``ray start`` registers its cluster for ``ray.init()`` and ``--address auto``
    ($RAY_TMPDIR, else $TMPDIR on Linux, else /tmp; then ray/ray_current_cluster)."""
    if "RAY_TMPDIR" in os.environ:
        root = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        root = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        root = "/tmp"
    else:
        root = tempfile.gettempdir()
    return Path(root) / "ray" / "ray_current_cluster"


def _registered(how: str) -> Target:
    """The cluster Ray's session file names (``--address auto``)."""
    path = session_file()
    try:
        address = path.read_text().strip()
    except OSError:
        address = ""
    if not address:
        raise GansearchError(f"{how}: no Ray cluster is registered on this machine ({ENV} is unset and "
                             f"{path} does not exist); start one with `ray start --head`, give "
                             "--address HOST:PORT, or drop --address to start a private Ray")
    return Target(AUTO, address, f"Ray's session file {path}")


def resolve(flag: str | None) -> Target:
    """The Ray a command given ``--address flag`` (None when absent) should use."""
    env = os.environ.get(ENV, "").strip()
    if flag is None:
        if not env or env == LOCAL:
            return Target(LOCAL, LOCAL, "")
        return _registered(f"{ENV}=auto") if env == AUTO else Target(None, env, ENV)
    flag = flag.strip()
    if flag == LOCAL:
        return Target(LOCAL, LOCAL, "")
    if flag == AUTO:
        return Target(AUTO, env, ENV) if env and env not in (LOCAL, AUTO) else _registered("--address auto")
    host_port(flag, "--address")
    return Target(flag, flag, "--address")


def host_port(address: str, source: str = "--address") -> tuple[str, int]:
    """(host, port) of ``HOST:PORT``, ``[IPv6]:PORT`` or ``scheme://HOST:PORT``."""
    rest = address.split("://", 1)[-1].split("/", 1)[0]
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GansearchError(f"{source}: {address!r} is not auto, local or HOST:PORT (the head's GCS port, "
                             "6379 by default)")
    return host, int(port)


def _hint(target: Target) -> str:
    if target.source == "--address":
        return ("check HOST:PORT (the head's GCS port, 6379 by default) and that the cluster is up, or drop "
                "--address to start a private Ray on this machine")
    if target.source == ENV:
        return f"point {ENV} at a live cluster, or unset it to start a private Ray on this machine"
    return ("that cluster has ended (a crash, or no `ray stop`); start one with `ray start --head`, or drop "
            "--address auto to start a private Ray on this machine")


def failure(target: Target, what: str, fix: str | None = None) -> str:
    """The one line for a cluster that could not be joined."""
    return f"cannot join the Ray cluster at {target.address} (from {target.source}): {what}; {fix or _hint(target)}"


TOKEN_FIX = ("copy the cluster's token (`ray get-auth-token` on the head prints it) to ~/.ray/auth_token here "
             "or into RAY_AUTH_TOKEN")


def token_failure(target: Target, *, token_mode: bool, has_token: bool) -> str:
    """The one line for a cluster that refused this process's token (Ray 2.60's ``ray start
    --head`` turns token authentication on; every driver and node needs the same token)."""
    if not token_mode:
        return failure(target, "the cluster requires a token and RAY_AUTH_MODE is not token here",
                       f"export RAY_AUTH_MODE=token and {TOKEN_FIX}")
    if not has_token:
        return failure(target, "RAY_AUTH_MODE=token but no token was found (RAY_AUTH_TOKEN, "
                       "RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)", TOKEN_FIX)
    return failure(target, "the cluster refused this process's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                   "~/.ray/auth_token holds another cluster's)", TOKEN_FIX)


def _amounts(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources.get(k, 0.0):g} {k}" for k in ("CPU", "GPU"))


def fits(request: dict[str, float], node: dict[str, float]) -> bool:
    """Whether one node's resources can hold a trial's request (CPU, GPU; fractions allowed)."""
    return all(node.get(k, 0.0) + 1e-9 >= v for k, v in request.items() if v > 0)


def unplaceable(request: dict[str, float], nodes: list[dict[str, float]], where: str, waited: float | None) -> str:
    """The one line for trials no node takes: what each asks for, what the nodes have, the fix.
    ``waited`` is the pending time so far on a cluster an autoscaler may grow (None: it cannot)."""
    have = "; ".join(sorted({_amounts(n) for n in nodes})) or "none"
    busy = any(fits(request, n) for n in nodes)
    why = ("the nodes that could hold one stayed busy" if busy
           else "no node has that" + ("" if waited is None else " and no node that has it was added"))
    head = (f"no trial could start within {waited:g} s" if waited is not None
            else "no trial can start")
    fix = "lower --gpus-per-trial / --cpus-per-trial, or add nodes with those resources"
    if waited is not None:
        fix += (" (a node type in the cluster config), or raise --pending-timeout while nodes start; why the "
                "autoscaler added none (a GPU quota of 0, no spot role, a launch error): `ray monitor cluster.yaml`")
    elif where == "this machine's private Ray":
        fix = "lower --gpus-per-trial / --cpus-per-trial, or join a cluster that has them with --address"
    return f"{head}: each trial asks for {_amounts(request)} and {why} ({where}: nodes with {have}); {fix}"


def wait_reachable(target: Target, timeout: float, *, poll: float = 0.5) -> None:
    """Return once ``target.address`` accepts a TCP connection; a GansearchError after ``timeout``
    seconds (a cluster still starting gets the whole wait, a dead address no Ray warnings)."""
    host, port = host_port(target.address, target.source)
    deadline = time.monotonic() + timeout
    reason = "no answer"
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(left, 5.0))):
                return
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
        left = deadline - time.monotonic()
        if left <= 0:
            raise GansearchError(failure(target, f"{reason} within {timeout:g} s"))
        time.sleep(min(poll, left))


def join(target: Target, timeout: float, connect: Callable[[], object]) -> None:
    """Run ``connect`` (``ray.init``) for ``target``: at once for a private Ray; for a cluster once
    its address answers, with a watchdog, because Ray itself may wait for many minutes on a port
    that accepts connections but never answers as Ray: past ``timeout`` more seconds the process
    ends with the one-line error and exit code 2, as the CLI ends on any bad input."""
    if not 0 < timeout < math.inf:
        raise GansearchError(f"--connect-timeout: must be a number of seconds > 0, got {timeout:g}")
    if target.local:
        connect()
        return
    wait_reachable(target, timeout)

    def give_up() -> None:
        print(f"gansearch: error: {failure(target, f'no answer from Ray within {timeout:g} s')}",
              file=sys.stderr, flush=True)
        os._exit(2)

    watchdog = threading.Timer(timeout, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        connect()
    except Exception as exc:  # Ray's errors (auth, version, protocol) as one line
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise GansearchError(failure(target, f"{type(exc).__name__}: {lines[0] if lines else 'failed'}")) from None
    finally:
        watchdog.cancel()
