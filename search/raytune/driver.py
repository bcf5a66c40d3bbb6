"""What a search driver settles before its trials start, so that trials see the driver's world.

Ray runs each trial in its own working folder, maybe on another machine: a relative path the
driver's checks accepted would fail in every trial, and a node scoring with its own reference
classifier would give scores not comparable with other nodes'. The driver makes paths absolute
and loads (or trains) the classifier once; the trainable gets it with every trial.

Two drivers of one experiment (a second ``resume`` while the first runs) would both tell one
Optuna study about the same trials and write Ray's state over each other's:
:func:`experiment_lock` lets one in. SIGTERM (``kill``, a batch scheduler, a container runtime)
would end the driver inside Ray's own handler, with nothing saved and no summary:
:func:`sigterm_as_ctrl_c` makes it what Ctrl-C is.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

if TYPE_CHECKING:
    from gan_core.io import RunLock
    from search.space import Space

# The toolkit's environment: made absolute here before Ray (and its trials) inherit it, and
# forwarded to the trial workers of a cluster the driver joins.
DRIVER_ENV = ("GANSEARCH_DATA", "GANSEARCH_CACHE")


def _absolute(path: str, cwd: str) -> str:
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(path)))


def absolute_paths(cfg: Any, cwd: str) -> None:
    """Make ``cfg``'s (a Config) file paths absolute against ``cwd``: the data's (csv:, folder:,
    npz:, data_dir, background) and a feature network's file (eval.features)."""
    data = cfg.data
    for prefix in ("csv:", "folder:", "npz:"):
        if data.name.startswith(prefix):
            data.name = prefix + _absolute(data.name[len(prefix):], cwd)
    if data.data_dir:
        data.data_dir = _absolute(data.data_dir, cwd)
    if data.background:
        data.background = _absolute(data.background, cwd)
    spec = cfg.eval.features
    if spec:
        from gan_core.metrics.extractors import INCEPTION_PREFIX, file_of

        path = file_of(spec)
        if path is not None:
            prefix = INCEPTION_PREFIX if spec.startswith(INCEPTION_PREFIX) else ""
            cfg.eval.features = prefix + _absolute(str(path), cwd)


def absolute_env() -> None:
    """Make $GANSEARCH_DATA and $GANSEARCH_CACHE absolute before Ray (and its trials) inherit them."""
    for key in DRIVER_ENV:
        if os.environ.get(key):
            os.environ[key] = _absolute(os.environ[key], os.getcwd())


def driver_classifier(space: Space) -> Any:
    """The base data's reference classifier, loaded (or trained) once here on the driver and
    shipped to every trial, so that all trials, on every node, are scored by the same weights.
    None when every trial scores with its own network (``eval.features``): unlabelled images
    have no classifier to train."""
    from gan_core.metrics import get_classifier

    if all(space.values_of("eval.features")):
        return None

    return get_classifier(space.base_config.data, device="cpu")


def experiment_lock(exp: str) -> RunLock:
    """The lock a search driver (``search``, ``resume``) holds on its experiment while it runs: a
    second one is refused in one line naming the first's pid and host. An experiment on s3:// or
    gs:// has no file to lock (object stores have no locks): its lock is a folder in this
    machine's cache, which keeps a second driver out on this machine only."""
    from gan_core.io import RunLock
    from gan_core.metrics.cache import cache_root
    from search.storage import is_uri

    folder = cache_root() / "locks" / hashlib.sha256(exp.encode()).hexdigest()[:16] if is_uri(exp) else Path(exp)
    return RunLock(folder, holder="search driver", show_host=True, label=exp,
                   hint=f"one driver at a time; wait for it to end (`gansearch resume {exp}` continues a search "
                        "that was stopped)")


# A stop asked for (SIGINT or SIGTERM) before Ray Tune's loop took SIGINT over. Python raises it
# as KeyboardInterrupt wherever the driver is; inside a finalizer (a weakref callback, e.g. the
# import system's) Python can only print it and go on, and the search would run to its end.
# StopWhenAsked hands it to Tune's handler at its loop's first step.
_STOP_ASKED = threading.Event()


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """For the block, SIGTERM does what Ctrl-C does to the search: Ray Tune's handler stops the
    trials, saves the experiment state and the search ends with its summary and a resume line
    (a second one, like a second Ctrl-C, aborts). Installed after ``ray.init``, whose own
    handler (and Ray's C++ one, which printed a stack dump) would end the process at once.
    Either signal before Tune's loop runs raises KeyboardInterrupt and is remembered, so that one
    Python could not raise (in a finalizer) still stops the search (:class:`StopWhenAsked`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        _STOP_ASKED.set()
        raise KeyboardInterrupt

    def forward(signum: int, frame: FrameType | None) -> None:
        print("gansearch: SIGTERM received; stopping the search as Ctrl-C does", file=sys.stderr, flush=True)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)  # Tune's while it runs, else interrupt()
        else:
            interrupt(signum, frame)

    def unraisable(report: Any) -> None:
        if not (isinstance(report.exc_value, KeyboardInterrupt) and _STOP_ASKED.is_set()):
            hook(report)

    _STOP_ASKED.clear()
    previous = signal.signal(signal.SIGTERM, forward)
    previous_int = signal.signal(signal.SIGINT, interrupt)
    hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)  # None: set in C
        signal.signal(signal.SIGINT, previous_int if previous_int is not None else signal.default_int_handler)
        sys.unraisablehook = hook
        _STOP_ASKED.clear()


class StopWhenAsked(Callback):
    """At each step of Tune's loop: a stop asked for before the loop took SIGINT over and not
    raised (see :func:`sigterm_as_ctrl_c`) goes to Tune's handler now, as a Ctrl-C would."""

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if _STOP_ASKED.is_set():
            _STOP_ASKED.clear()
            handler = signal.getsignal(signal.SIGINT)
            if callable(handler):
                handler(signal.SIGINT, None)
