"""What a run shows while it trains: TensorBoard events and plain progress lines.

TensorBoard events go into the run folder next to ``metrics.jsonl``: every numeric field of every
log record as a scalar (``train/loss_d``, ``eval/cfd_2k``, ``balance/error`` ...) and each sample
grid as an image, all on the images-seen axis (trials with different batch sizes line up), so
``tensorboard --logdir EXPERIMENT`` shows every trial side by side. They are written with
tensorboardX, which needs only protobuf and numpy (``ray[tune]`` installs it anyway); the
``tensorboard`` viewer itself is the ``[viz]`` extra. Without tensorboardX training runs the same
and writes no events (``metrics.jsonl`` stays the record).

A progress bar redraws itself with carriage returns, which a log file keeps as thousands of
frames: when stderr is not a terminal :class:`PlainProgress` prints one line every few percent.

Example::

    events = EventWriter.open(run_dir)  # None without tensorboardX
    events.record({"kind": "eval", "images_seen": 4096, "cfd_2k": 3.1})
    events.image("samples", grid, 4096)  # a PIL image
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from PIL import Image

# Fields of a log record that are its position, not a value to plot.
_AXES = ("kind", "step", "images_seen")


class EventWriter:
    """TensorBoard events of one run, written with tensorboardX into ``run_dir``.

    Written in this thread, not through tensorboardX's SummaryWriter: that one queues events for
    a thread of its own, and its ``flush()`` flushes only what the thread has taken from the
    queue, so a point flushed before a search's report could still be missing from the file Ray
    copied when the trial stopped (a resumed trial's events then lacked it). Here ``flush()``
    puts every point recorded so far on disk; between evaluations the file is flushed every
    ``flush_s`` seconds, so TensorBoard follows a run as it trains."""

    def __init__(self, writer: Any, flush_s: float = 30.0) -> None:
        self.writer = writer  # tensorboardX's EventsWriter: one file, written at once
        self.flush_s = flush_s
        self.flushed = time.monotonic()

    @classmethod
    def open(cls, run_dir: Path, *, purge_from: int = 0) -> EventWriter | None:
        """The writer for ``run_dir``, or None when tensorboardX is not installed.

        TensorBoard drops the points earlier files hold at ``purge_from`` images or later: a
        resumed run passes one past its checkpoint's images, since it writes what follows again."""
        try:
            import tensorboardX  # noqa: F401 - the package itself (its modules may be imported already)
            from tensorboardX.event_file_writer import EventsWriter
            from tensorboardX.proto.event_pb2 import Event, SessionLog
        except ImportError:
            return None
        # tensorboardX names a file by the second it opened it: a run resumed within the same
        # second would overwrite the earlier file, so the name ends in the nanosecond too.
        writer = EventsWriter(str(Path(run_dir) / "events"), f".{time.time_ns()}")
        writer.write_event(Event(step=purge_from, wall_time=time.time(),
                                 session_log=SessionLog(status=SessionLog.START)))
        writer.flush()
        return cls(writer)

    def _add(self, summary: Any, images_seen: int) -> None:
        from tensorboardX.proto.event_pb2 import Event

        self.writer.write_event(Event(summary=summary, step=int(images_seen), wall_time=time.time()))
        if time.monotonic() - self.flushed >= self.flush_s:
            self.flush()

    def record(self, record: dict[str, Any]) -> None:
        """Every finite number (and flag) of one ``metrics.jsonl`` record as ``KIND/FIELD``."""
        from tensorboardX.summary import scalar

        kind, at = record.get("kind", "train"), int(record.get("images_seen", 0))
        for key, value in record.items():
            if key in _AXES or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self._add(scalar(f"{kind}/{key}", float(value)), at)

    def image(self, tag: str, img: Image.Image, images_seen: int) -> None:
        from tensorboardX.summary import image

        self._add(image(tag, np.asarray(img.convert("RGB")), dataformats="HWC"), images_seen)

    def flush(self) -> None:
        self.writer.flush()
        self.flushed = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class PlainProgress:
    """tqdm's ``update``/``set_postfix``/``close`` as one plain line every ``every`` of the run."""

    def __init__(self, total: int, initial: int, desc: str, *, every: float = 0.05,
                 file: TextIO | None = None) -> None:
        self.total, self.n, self.desc = max(total, 1), initial, desc
        self.file = file or sys.stderr
        self.step_size = max(1, math.ceil(self.total * every))
        self.next = (initial // self.step_size + 1) * self.step_size
        self.postfix = ""
        self.started, self.start_n = time.perf_counter(), initial

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self.next or self.n >= self.total:
            self.next = (self.n // self.step_size + 1) * self.step_size
            self._line()

    def _line(self) -> None:
        took = time.perf_counter() - self.started
        rate = (self.n - self.start_n) / took if took > 0 else 0.0
        left = (self.total - self.n) / rate if rate > 0 else math.nan
        eta = f"{left:.0f}s" if math.isfinite(left) else "?"
        print(f"{self.desc}: {100 * self.n / self.total:3.0f}% {self.n}/{self.total} steps, "
              f"{rate:.1f} step/s, {took:.0f}s elapsed, {eta} left {self.postfix}".rstrip(),
              file=self.file, flush=True)

    def close(self) -> None:
        pass


def progress_bar(total: int, initial: int, desc: str) -> Any:
    """A tqdm bar on a terminal, plain lines (no carriage returns) when stderr is redirected."""
    if not sys.stderr.isatty():
        return PlainProgress(total, initial, desc)
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, desc=desc, smoothing=0.1)
