"""Ctrl-C and SIGTERM as a stop request that the training loop honours between steps.

A signal that raised ``KeyboardInterrupt`` inside a step would leave it half done (D one
update ahead of G, an optimiser stepped, an RNG advanced) and a checkpoint saved from there
would not resume exactly. So while ``train()`` runs in the main thread the first SIGINT or
SIGTERM only sets a flag; the loop finishes the step, saves and ends with status ``stopped``.
A second signal aborts at once (``KeyboardInterrupt``, nothing saved: the last checkpoint
stays). Outside the main thread (a Ray worker) nothing is installed: Tune's own stop applies.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by the first SIGINT/SIGTERM; read by the loop at each step boundary."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # the second one: the user wants out now
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\ngansearch: {signal.Signals(signum).name} received; stopping after this step "
              "(send it again to abort without saving)", file=sys.stderr, flush=True)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Turn SIGINT/SIGTERM into a ``StopRequest`` for the duration of the block, then put the
    previous handlers back. Off the main thread, the request is never set."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, request._handle)
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
