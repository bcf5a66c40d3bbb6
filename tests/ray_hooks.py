"""A test hook for Ray's worker processes (Ray's ``worker_process_setup_hook``; nothing in
gansearch knows about it): a barrier that holds trials inside training until N of them are, so a
test of "N trials at once" does not depend on how fast the machine starts and trains them.

The local Ray of tests/test_tune.py installs :func:`setup` in every worker with
``$GANSEARCH_TEST_BARRIER`` naming a folder; a test arms it with :func:`arm` (N) and disarms it
when done. Unarmed, a worker's first forward of a Generator only removes the hook.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

BARRIER_ENV = "GANSEARCH_TEST_BARRIER"
PARTIES = "parties"
HANG = 600.0  # seconds: only reached when fewer trials than armed ever run at once (the test then fails)


def setup() -> None:
    """In a worker process: the first forward of a Generator (the trial's first sample grid,
    inside gan_core.loop.train) waits at the barrier if it is armed."""
    folder = os.environ.get(BARRIER_ENV)
    if not folder:
        return
    import torch

    def hook(module: torch.nn.Module, args: object) -> None:
        if type(module).__name__ != "Generator":
            return
        handle.remove()
        try:
            parties = int((Path(folder) / PARTIES).read_text())
        except FileNotFoundError:
            return
        (Path(folder) / f"arrived-{os.getpid()}").touch()
        deadline = time.monotonic() + HANG
        while len(list(Path(folder).glob("arrived-*"))) < parties and time.monotonic() < deadline:
            time.sleep(0.05)

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)


def arm(folder: Path, parties: int) -> None:
    for old in folder.glob("arrived-*"):
        old.unlink()
    (folder / PARTIES).write_text(str(parties))


def disarm(folder: Path) -> None:
    (folder / PARTIES).unlink(missing_ok=True)
