"""MNIST and Fashion-MNIST from their original IDX files, in torchvision's folder layout
``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` (``FashionMNIST`` for
fashion). ``<root>`` is ``data.data_dir``, else ``$GANSEARCH_DATA``, else the MNIST copy shipped in
``gan_core/_data``. Missing files are downloaded with torchvision into the user cache
(``$GANSEARCH_CACHE`` or ``~/.cache/gansearch``, then ``data/``), never into the data directory."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gan_core.data.dataset import DIGITS, one_line
from gan_core.errors import DataError

EMBEDDED_DATA_DIR = Path(__file__).resolve().parent.parent / "_data"

# torchvision's folder names and file names, so a torchvision root works as a data directory.
_FOLDERS = {"mnist": "MNIST", "fashion": "FashionMNIST"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 0x803, 0x801  # IDX: unsigned byte, 3 dims / 1 dim
CLASS_NAMES = {
    "mnist": DIGITS,
    "fashion": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot"),
}


def idx_folder(kind: str) -> str:
    """torchvision's folder name of ``kind`` (mnist, fashion) under a data root."""
    return _FOLDERS[kind]


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """The data root: the argument, else ``$GANSEARCH_DATA``, else the embedded ``gan_core/_data``."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("GANSEARCH_DATA")
    if env:
        return Path(env).expanduser()
    return EMBEDDED_DATA_DIR


def cache_dir() -> Path:
    """Where downloads go: ``$GANSEARCH_CACHE`` or ``~/.cache/gansearch``, then ``data/``."""
    root = os.environ.get("GANSEARCH_CACHE") or Path.home() / ".cache" / "gansearch"
    return Path(root).expanduser() / "data"


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX file (gzip or plain) as a uint8 array, after checking its magic number and size."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({one_line(e)})") from None
    if len(data) < 4 or int.from_bytes(data[:4], "big") != magic:
        found = f"{int.from_bytes(data[:4], 'big'):#x}" if len(data) >= 4 else f"{len(data)} bytes"
        raise DataError(f"{path}: not an IDX file with magic {magic:#x} (found {found})")
    ndim = data[3]
    offset = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if len(data) != offset + int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} bytes of data, file holds {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims).copy()


def _raw_files(raw_dir: Path, split: str) -> tuple[Path, Path] | None:
    """The split's image and label files in ``raw_dir`` (``.gz``, or torchvision's extracted copy)."""
    found = []
    for name in _IDX_FILES[split]:
        for candidate in (raw_dir / name, raw_dir / name.removesuffix(".gz")):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            return None
    return found[0], found[1]


def _download(kind: str, root: Path) -> None:
    """Fetch the four raw files with torchvision into ``<root>/<Folder>/raw`` (needs the internet)."""
    from torchvision import datasets

    cls = datasets.MNIST if kind == "mnist" else datasets.FashionMNIST
    cls(str(root), train=True, download=True)


def _locate_idx(kind: str, root: Path, split: str) -> tuple[Path, Path]:
    """Find the split's files in the data dir, else in the cache, else download into the cache."""
    folder = _FOLDERS[kind]
    cache = cache_dir()
    for base in (root, cache):
        files = _raw_files(base / folder / "raw", split)
        if files:
            return files
    try:
        _download(kind, cache)
    except Exception as e:  # offline, proxy, disk full, torchvision change: all end the same way
        reason = one_line(e) or type(e).__name__
    else:
        files = _raw_files(cache / folder / "raw", split)
        if files:
            return files
        reason = "torchvision finished but the files are not there"
    names = ", ".join(_IDX_FILES["train"] + _IDX_FILES["test"])
    raise DataError(
        f"{kind}: files not found; put {names} into {root / folder / 'raw'} "
        f"(or set data.data_dir / --data-dir / GANSEARCH_DATA to a folder holding {folder}/raw/); "
        f"download into {cache / folder / 'raw'} failed: {reason}"
    )


_IDX_CACHE: dict[tuple[str, str], tuple[Tensor, Tensor]] = {}


def load_idx(kind: str, root: Path, split: str) -> tuple[Tensor, Tensor]:
    """Images uint8 (N, 1, 28, 28) and labels int64 (N,) of mnist or fashion; read once per process."""
    images_path, labels_path = _locate_idx(kind, root, split)
    key = (str(images_path.resolve()), str(labels_path.resolve()))
    if key not in _IDX_CACHE:
        images = read_idx(images_path, _IMAGES_MAGIC)
        labels = read_idx(labels_path, _LABELS_MAGIC)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{images_path}: expected 28x28 images, found dimensions {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{labels_path}: {labels.shape} labels for {len(images)} images in {images_path}")
        if labels.max(initial=0) > 9:
            raise DataError(f"{labels_path}: label {int(labels.max())} outside 0..9")
        _IDX_CACHE[key] = (torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long())
    return _IDX_CACHE[key]


