"""Test hooks for Ray's worker processes (Ray's ``worker_process_setup_hook``; nothing in gansearch
knows about them), so that tests of "N trials at once" or "a fault in the middle of a trial" do
not depend on how fast the machine starts and trains trials. Both act at a forward of a
Generator (PyTorch's global module hook), that is inside a trial's training:

- the barrier ($GANSEARCH_TEST_BARRIER names a folder; :func:`arm` with N): a trial's first
  forward waits until N trials have reached theirs, so N trials are inside training at once;
- the hold ($GANSEARCH_TEST_HOLD names a folder; :func:`hold_after` with R): the first trial whose
  result.json holds R reports stops there, its process and trial folder written to ``held``, and
  stays until ended (a fault test kills it, or its driver) or until :func:`release` lets it go.
  Only one trial is ever held.

tests/test_tune.py installs :func:`setup` through ``ray.init(runtime_env=...)``; a search run
as a command gets it through Ray's runtime-env hook: ``RAY_RUNTIME_ENV_HOOK=tests.ray_hooks.
with_setup_hook`` in the driver's environment (:func:`driver_env`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

BARRIER_ENV = "GANSEARCH_TEST_BARRIER"
HOLD_ENV = "GANSEARCH_TEST_HOLD"
PARTIES = "parties"
HANG = 600.0  # seconds: only reached when a test's trials never meet or its hold is never released (it then fails)


def with_setup_hook(runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    """Ray's runtime-env hook (RAY_RUNTIME_ENV_HOOK): the driver's runtime env plus :func:`setup`
    in every worker, and the hooks' folders."""
    env = dict(runtime_env or {})
    env["worker_process_setup_hook"] = "tests.ray_hooks.setup"
    env["env_vars"] = {**env.get("env_vars", {}),
                       **{k: os.environ[k] for k in (BARRIER_ENV, HOLD_ENV) if os.environ.get(k)}}
    return env


def driver_env(hold: Path) -> dict[str, str]:
    """The environment a `gansearch search` or `resume` command gets the hold through."""
    return {"RAY_RUNTIME_ENV_HOOK": "tests.ray_hooks.with_setup_hook", HOLD_ENV: str(hold)}


def setup() -> None:
    """In a worker process: register the barrier and the hold, whichever a folder is named for."""
    barrier, hold = os.environ.get(BARRIER_ENV), os.environ.get(HOLD_ENV)
    if not barrier and not hold:
        return
    import torch

    waited = False

    def hook(module: torch.nn.Module, args: object) -> None:
        nonlocal waited
        if type(module).__name__ != "Generator":
            return
        if barrier and not waited:
            waited = True
            _barrier(Path(barrier))
        if hold:
            _hold(Path(hold))

    torch.nn.modules.module.register_module_forward_pre_hook(hook)


def _barrier(folder: Path) -> None:
    try:
        parties = int((folder / PARTIES).read_text())
    except FileNotFoundError:
        return
    (folder / f"arrived-{os.getpid()}").touch()
    deadline = time.monotonic() + HANG
    while len(list(folder.glob("arrived-*"))) < parties and time.monotonic() < deadline:
        time.sleep(0.05)


_seen: dict[str, tuple[int, int]] = {}  # result.json -> (size, reports) last read
_hold_state: dict[str, int | None] = {}  # "after": reports to hold at; None: no hold in this process


def _hold(folder: Path) -> None:
    if "after" not in _hold_state:
        try:
            _hold_state["after"] = int((folder / "after").read_text())
        except FileNotFoundError:
            _hold_state["after"] = None
    after = _hold_state["after"]
    if after is None:
        return
    if (folder / "claimed").exists():
        _hold_state["after"] = None  # held elsewhere (or here before a restart): never again
        return
    from ray import tune

    results = Path(tune.get_context().get_trial_dir()) / "result.json"
    try:
        size = results.stat().st_size
    except FileNotFoundError:
        return
    known = _seen.get(str(results))
    if known is None or known[0] != size:
        known = (size, sum(1 for line in results.read_text().splitlines() if line.strip()))
        _seen[str(results)] = known
    if known[1] < after:
        return
    try:
        os.close(os.open(folder / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return  # another trial is held
    (folder / "held.tmp").write_text(json.dumps({"pid": os.getpid(), "trial": results.parent.name,
                                                 "reports": known[1]}))
    os.replace(folder / "held.tmp", folder / "held")
    # Until this process is killed, or the test releases it (or HANG: a test waiting on a release
    # that never comes then fails instead of hanging the suite).
    deadline = time.monotonic() + HANG
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def hold_after(folder: Path, reports: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "after").write_text(str(reports))


def release(folder: Path) -> None:
    """Let the held trial go on training."""
    (folder / "release").touch()


def held(folder: Path) -> dict[str, Any] | None:
    """The held trial's process id, folder name and report count, once it is held."""
    try:
        return json.loads((folder / "held").read_text())
    except FileNotFoundError:
        return None


def arm(folder: Path, parties: int) -> None:
    for old in folder.glob("arrived-*"):
        old.unlink()
    (folder / PARTIES).write_text(str(parties))


def disarm(folder: Path) -> None:
    (folder / PARTIES).unlink(missing_ok=True)
