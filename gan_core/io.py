"""Atomic file writes (a temp file in the same folder, ``os.replace``d, the folder fsynced),
append-only JSONL logs, and the run-directory lock that keeps two trainers out of one folder."""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from gan_core.errors import GansearchError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write names no file: name it
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable: without it a power cut can bring back the old file."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a platform or file system that cannot open folders: the data itself is synced
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def remove_stale_tmp(folder: Path) -> list[Path]:
    """Delete the temp files a killed atomic write left in ``folder`` (``.NAME.XXXX.tmp``).
    Call it only while holding the folder's lock, so no live writer's file is taken."""
    folder = Path(folder)
    stale = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# The old private name, still imported by search/ until its modules move (issue 20).
_atomic_write_bytes = atomic_write_bytes


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch  # here, not at the top: the other helpers of this module are needed without torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (append-only logs survive a crash mid-run)."""
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL log. A line that does not parse is skipped, wherever it is: a
    crash mid-append tears the last line, and the lines around a torn one are still good."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


LOCK = ".lock"


class RunLock:
    """An exclusive ``flock`` on ``folder/.lock``, held while a run writes into ``folder``.

    The kernel drops it when the process dies (even by kill -9), so a stale lock never blocks
    a resume. The holder's pid is written into the file, for the refusal message.

    Example::

        with RunLock(run_dir):
            ...  # the only writer of run_dir
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        f = open(self.folder / LOCK, "a+")  # noqa: SIM115 - held open for the run's lifetime
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "unknown"
            f.close()
            raise GansearchError(f"{self.folder}: in use by another trainer (pid {pid}); wait for it "
                                 "to end or choose another --out") from None
        except BaseException:
            f.close()
            raise
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file drops the flock
            self._file = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
