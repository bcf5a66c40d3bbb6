"""Small IDX files in torchvision's layout, for tests that need a data set the package does not
ship (Fashion-MNIST): the same format and folder names as the real files, a few hundred images."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array as an IDX file: magic 0x08 (unsigned byte) and its dimension count, the
    dimensions as big-endian int32, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_set(root: Path, folder: str, sizes: dict[str, int], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random 28x28 images and balanced labels 0..9 for each split into ``root/folder/raw``;
    returns split -> (images (N, 28, 28), labels (N,))."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in sizes.items():
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        for name, array in zip(FILES[split], (images, labels), strict=True):
            with gzip.open(raw / name, "wb") as f:
                f.write(idx_bytes(array))
        written[split] = (images, labels)
    return written
