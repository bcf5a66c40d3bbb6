"""The on-disk cache for reference classifiers and reference statistics.

Caching is a wrapper around pure computations (as in torch-fidelity and StyleGAN's metric
code): every entry is keyed by a hash of everything that defines it, written atomically, and
carries a checksum of its own content, so a truncated, garbled or tampered file is detected on
load and rebuilt with a warning instead of silently skewing every score.

Layout: ``$GANSEARCH_CACHE`` (default ``~/.cache/gansearch``)::

    classifiers/<dataset>-<key16>.pt   weights, config, test accuracy
    refstats/<dataset>-<key16>.pt      test-split feature statistics of one classifier
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from gan_core.io import atomic_torch_save

try:  # POSIX: serialise concurrent builders (e.g. many Ray trials starting at once)
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, atomic writes still keep files whole
    fcntl = None  # type: ignore[assignment]

FORMAT = "gansearch-cache"


def cache_root() -> Path:
    """``$GANSEARCH_CACHE`` or ``~/.cache/gansearch``."""
    root = os.environ.get("GANSEARCH_CACHE") or Path.home() / ".cache" / "gansearch"
    return Path(root).expanduser()


def slug(name: str) -> str:
    """A file-name-safe form of a dataset name (``csv:/a/b/train.csv`` -> ``csv-train``)."""
    if name.startswith("csv:"):
        name = "csv-" + Path(name[4:]).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "dataset"


# ----------------------------------------------------------------------------- hashing


def _update(h: Any, value: Any) -> None:
    """Feed a nested structure of tensors and JSON-able values into a hash, unambiguously."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(b"{")
        for k in sorted(value):
            h.update(json.dumps(str(k)).encode())
            _update(h, value[k])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _update(h, v)
        h.update(b"]")
    else:
        h.update(json.dumps(value, sort_keys=True).encode())


def digest(*parts: Any) -> str:
    """sha256 hex digest of tensors and JSON-able values (nested dicts/lists allowed)."""
    h = hashlib.sha256()
    for part in parts:
        _update(h, part)
    return h.hexdigest()


_FINGERPRINTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def dataset_fingerprint(ds: Any) -> str:
    """A hash of a dataset's content (images, labels, composition inputs), memoised per object.

    Stored tensors are hashed in full; for composed sets (color-mnist) the composition inputs
    (digits, backgrounds, size, colour shift) plus a composed prefix, so a change to the
    composition code also changes the key.
    """
    try:
        return _FINGERPRINTS[ds]
    except (KeyError, TypeError):
        pass
    parts: dict[str, Any] = {
        "class": type(ds).__name__,
        "shape": list(ds.shape),
        "num_classes": ds.num_classes,
        "len": len(ds),
    }
    for attr in ("images", "labels", "backgrounds"):
        value = getattr(ds, attr, None)
        if isinstance(value, torch.Tensor):
            parts[attr] = value
    for attr in ("image_size", "change_colors"):
        if hasattr(ds, attr):
            parts[attr] = getattr(ds, attr)
    if "images" not in parts or parts["class"] != "Dataset":
        x, y = ds.take(min(256, len(ds)))
        parts["prefix"] = [x, y if y is not None else "unlabeled"]
    fp = digest(parts)
    with contextlib.suppress(TypeError):
        _FINGERPRINTS[ds] = fp
    return fp


# ----------------------------------------------------------------------------- entries


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (one builder at a time; others then load)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def entry_body(kind: str, key: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the format, kind, key and a checksum of it all: what a cache file holds."""
    body = {"format": FORMAT, "kind": kind, "key": key, **payload}
    body["checksum"] = digest(body)
    return body


def save_entry(path: Path, kind: str, key: str, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically with its key and a checksum of its content."""
    atomic_torch_save(entry_body(kind, key, payload), path)


def entry_bytes(kind: str, key: str, payload: dict[str, Any]) -> bytes:
    """The bytes of a cache file holding ``payload`` (to ship an entry to another process or node)."""
    import io

    buf = io.BytesIO()
    torch.save(entry_body(kind, key, payload), buf)
    return buf.getvalue()


def verify(body: Any, kind: str, key: str | None) -> str | None:
    """What is wrong with a loaded entry (checksum removed from ``body`` when valid), or None.
    ``key`` None accepts any key (a shipped entry names its own)."""
    if not isinstance(body, dict) or body.get("format") != FORMAT or body.get("kind") != kind:
        return f"not a gansearch {kind} cache file"
    if key is not None and body.get("key") != key:
        return "key mismatch (file renamed or copied from another entry)"
    stored = body.pop("checksum", None)
    if stored != digest(body):
        return "checksum mismatch (content altered or corrupted)"
    return None


def entry_from_bytes(blob: bytes, kind: str) -> dict[str, Any]:
    """The verified payload of ``entry_bytes``; ValueError naming the problem otherwise."""
    import io

    try:
        body = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"unreadable {kind} entry ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") \
            from None
    problem = verify(body, kind, None)
    if problem:
        raise ValueError(f"bad {kind} entry: {problem}")
    return body


def load_entry(path: Path, kind: str, key: str) -> dict[str, Any] | None:
    """The verified payload at ``path``, or None when missing; a bad file warns and returns None."""
    if not path.exists():
        return None
    problem = None
    try:
        body = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, foreign pickle: all mean "rebuild"
        problem = f"unreadable ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    else:
        problem = verify(body, kind, key)
    if problem:
        warnings.warn(f"{path}: corrupt {kind} cache entry, {problem}; rebuilding it", stacklevel=3)
        return None
    return body


def cached(path: Path, kind: str, key: str, build: Callable[[], dict[str, Any]],
           *, force: bool = False) -> dict[str, Any]:
    """Load the entry at ``path`` or build, save and return it (under a file lock)."""
    with file_lock(path):
        body = None if force else load_entry(path, kind, key)
        if body is None:
            save_entry(path, kind, key, build())
            body = load_entry(path, kind, key)
            if body is None:  # pragma: no cover - we just wrote it
                raise RuntimeError(f"{path}: cache entry unreadable right after writing it")
        return body
