"""Datasets by name: the whole set lives in memory as one uint8 tensor, batches are sampled on device.

Names (``data.name``):

- ``mnist``, ``fashion``: the original IDX ``.gz`` files in torchvision's layout
  ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` (``FashionMNIST`` for
  fashion). ``<root>`` is ``data.data_dir``, else ``$GANSEARCH_DATA``, else the MNIST copy shipped
  in ``gan_core/_data``. Missing files are downloaded with torchvision into the user cache
  (``$GANSEARCH_CACHE`` or ``~/.cache/gansearch``, then ``data/``), never into the data directory.
- ``color-mnist``: seed 000's RGB digits. Each MNIST digit is upsampled (bilinear, like
  ``scipy.ndimage.zoom(order=1)``), binarised, and the colours of a random crop of a background are
  inverted where the digit is. Default backgrounds are generated smooth colour fields (no image
  licence to worry about); ``data.background`` takes any image file instead.
- ``csv:PATH``: Kaggle digit-recognizer files (``label,pixel0..pixel783``; without ``label`` the
  set is unlabeled). ``split="test"`` is a fixed holdout: the last ``N // 6`` rows; ``"train"`` is
  the rows before it.

Sampling draws only from the ``torch.Generator`` passed in, so a run that saves and restores that
generator's state resumes with exactly the same batches.

Example::

    ds = load_dataset(DataConfig(name="mnist"))
    x, y = ds.batch(64, torch.Generator().manual_seed(0), "cpu")   # uint8 (64,1,28,28), int64 (64,)
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gan_core.config import DataConfig
from gan_core.errors import DataError

EMBEDDED_DATA_DIR = Path(__file__).resolve().parent / "_data"
SPLITS = ("train", "test")
VALID_NAMES = "mnist, fashion, color-mnist, csv:PATH"

# torchvision's folder names and file names, so a torchvision root works as a data directory.
_FOLDERS = {"mnist": "MNIST", "fashion": "FashionMNIST"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 0x803, 0x801  # IDX: unsigned byte, 3 dims / 1 dim

_CSV_PIXELS = 784  # 28 x 28
_CSV_TEST_FRACTION = 6  # split="test" is the last N // 6 rows

_BACKGROUND_COUNT = 8  # generated colour fields to crop from
_BACKGROUND_SEED = 20171013  # seed 000's publication date: fixed, so every machine sees the same fields
_TAKE_BLOCK = 1024  # take() draws crops per block of images, so take(100) is a prefix of take(2000)


# ----------------------------------------------------------------------------------------------
# The Dataset objects


class Dataset:
    """A labeled or unlabeled image set held in memory as one uint8 tensor (N, C, H, W) on the CPU.

    ``batch`` samples with replacement (as the seeds do) using only the caller's generator; on a
    GPU the whole set is copied to the device once so a step does no host-to-device image copy.
    """

    def __init__(self, name: str, images: Tensor, labels: Tensor | None, split: str = "train") -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels is not None and (labels.dtype != torch.int64 or labels.shape != images.shape[:1]):
            raise ValueError(f"labels must be int64 ({len(images)},), got {labels.dtype} {tuple(labels.shape)}")
        self.name = name
        self.split = split
        self.images = images
        self.labels = labels
        self.shape: tuple[int, int, int] = tuple(images.shape[1:])  # type: ignore[assignment]
        self.num_classes = 0 if labels is None else 10
        self._device_copies: dict[str, tuple[Tensor, Tensor | None]] = {}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"shape={self.shape}, num_classes={self.num_classes})")

    def batch(self, n: int, generator: torch.Generator,
              device: torch.device | str = "cpu") -> tuple[Tensor, Tensor | None]:
        """``n`` random images (uint8 (n, C, H, W)) and labels (int64 (n,) or None) on ``device``."""
        if n < 1:
            raise ValueError(f"batch size must be >= 1, got {n}")
        idx = torch.randint(len(self), (n,), generator=generator)
        return self._gather(idx, generator, torch.device(device))

    def take(self, n: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor | None]:
        """A fixed set for evaluation: the first ``n`` images (all when None), on the CPU.

        The tensors are views of the in-memory dataset: do not modify them in place.
        """
        n = len(self) if n is None else n
        if not 1 <= n <= len(self):
            raise DataError(f"{self.name}: asked for {n} images, the {self.split} split has {len(self)}")
        labels = None if self.labels is None else self.labels[:n]
        return self.images[:n], labels

    def _on(self, device: torch.device) -> tuple[Tensor, Tensor | None]:
        """The dataset's tensors on ``device`` (copied there once, then reused)."""
        if device.type == "cpu":
            return self.images, self.labels
        if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0": one copy
            device = torch.device("cuda", torch.cuda.current_device())
        key = str(device)
        if key not in self._device_copies:
            labels = None if self.labels is None else self.labels.to(device)
            self._device_copies[key] = (self.images.to(device), labels)
        return self._device_copies[key]

    def _gather(self, idx: Tensor, generator: torch.Generator,
                device: torch.device) -> tuple[Tensor, Tensor | None]:
        images, labels = self._on(device)
        idx = idx.to(device)
        return images[idx], None if labels is None else labels[idx]


class ColorMnist(Dataset):
    """Seed 000's colour digits, composed on the fly from MNIST digits and background images.

    Only the 28x28 digits and the backgrounds are stored; each batch draws, from the caller's
    generator and in this order, the digit indices, a background per image, a crop position per
    image and (with ``change_colors``) a colour shift per image and channel.
    """

    def __init__(self, digits: Tensor, labels: Tensor, backgrounds: Tensor, image_size: int,
                 change_colors: bool, split: str = "train") -> None:
        super().__init__("color-mnist", digits, labels, split)
        if backgrounds.dtype != torch.uint8 or backgrounds.dim() != 4 or backgrounds.shape[1] != 3:
            raise ValueError(f"backgrounds must be uint8 (K, 3, H, W), got {tuple(backgrounds.shape)}")
        if min(backgrounds.shape[2:]) < image_size:
            raise ValueError(f"backgrounds {tuple(backgrounds.shape[2:])} are smaller than {image_size}")
        self.backgrounds = backgrounds
        self.image_size = image_size
        self.change_colors = change_colors
        self.shape = (3, image_size, image_size)

    def take(self, n: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor | None]:
        """A fixed composed set: digits 0..n-1 (cycling when n > len) on crops drawn from ``seed``.

        Crops are drawn per block of images, so ``take(m, s)`` is a prefix of ``take(n, s)`` for m < n.
        """
        n = len(self) if n is None else n
        if n < 1:
            raise DataError(f"color-mnist: asked for {n} images")
        generator = torch.Generator().manual_seed(seed)
        cpu = torch.device("cpu")
        images, labels = [], []
        for start in range(0, n, _TAKE_BLOCK):
            stop = min(_TAKE_BLOCK, n - start)
            draws = [d[:stop] for d in self._draw(_TAKE_BLOCK, generator)]  # whole block: prefix-stable
            idx = torch.arange(start, start + stop) % len(self)
            x, y = self._render(idx, draws, cpu)
            images.append(x)
            labels.append(y)
        return torch.cat(images), torch.cat(labels)  # type: ignore[arg-type]

    def _gather(self, idx: Tensor, generator: torch.Generator,
                device: torch.device) -> tuple[Tensor, Tensor | None]:
        return self._render(idx, self._draw(len(idx), generator), device)

    def _draw(self, n: int, generator: torch.Generator) -> list[Tensor]:
        """Per image: background index, crop top, crop left, and colour shift (n, 3) or an empty (n, 0)."""
        size = self.image_size
        _, _, height, width = self.backgrounds.shape
        which = torch.randint(len(self.backgrounds), (n,), generator=generator)
        top = torch.randint(height - size + 1, (n,), generator=generator)
        left = torch.randint(width - size + 1, (n,), generator=generator)
        shift = torch.rand(n, 3, generator=generator) if self.change_colors else torch.empty(n, 0)
        return [which, top, left, shift]

    def _render(self, idx: Tensor, draws: list[Tensor], device: torch.device) -> tuple[Tensor, Tensor | None]:
        digits, labels = self._on(device)
        if device.type == "cpu":
            backgrounds = self.backgrounds
        else:
            key = f"backgrounds:{digits.device}"
            if key not in self._device_copies:
                self._device_copies[key] = (self.backgrounds.to(device), None)
            backgrounds = self._device_copies[key][0]
        idx = idx.to(device)
        which, top, left, shift = (d.to(device) for d in draws)
        images = compose_color_digits(digits[idx], backgrounds, which, top, left,
                                      shift if shift.shape[1] else None, self.image_size)
        return images, None if labels is None else labels[idx]


def compose_color_digits(digits: Tensor, backgrounds: Tensor, which: Tensor, top: Tensor, left: Tensor,
                         shift: Tensor | None, size: int) -> Tensor:
    """Seed 000's composition, batched: (n, 3, size, size) uint8 from (n, 1, 28, 28) uint8 digits.

    ``which``/``top``/``left`` (n,) pick each image's background and crop corner; ``shift`` (n, 3)
    in [0, 1) moves each channel c to (c + shift) / 2 (seed 000's ``change_colors``). The digit mask
    is the bilinear upsampling (corner-aligned, as ``scipy.ndimage.zoom(order=1)``) above one half.
    """
    n, device = len(digits), digits.device
    upsampled = F.interpolate(digits.float(), size=(size, size), mode="bilinear", align_corners=True)
    invert = (upsampled > 127.5).to(torch.uint8).mul_(255)  # (n, 1, size, size): 255 on the digit
    # One flat index_select gathers all crops (several times faster than 4-tensor advanced indexing).
    _, _, height, width = backgrounds.shape
    steps = torch.arange(size, device=device)
    corner = which * (3 * height * width) + top * width + left  # (n,)
    offsets = (torch.arange(3, device=device)[:, None, None] * (height * width)
               + steps[:, None] * width + steps).reshape(-1)  # (3 * size * size,)
    flat = (corner[:, None] + offsets).reshape(-1)
    crops = backgrounds.reshape(-1).index_select(0, flat).view(n, 3, size, size)
    if shift is not None:
        crops = ((crops.float() + 255.0 * shift[:, :, None, None]) / 2).round().to(torch.uint8)
    return crops ^ invert  # for uint8, c ^ 255 == 255 - c: one pass instead of subtract + select


def generated_backgrounds(count: int = _BACKGROUND_COUNT, size: int = 256,
                          seed: int = _BACKGROUND_SEED) -> Tensor:
    """Smooth random colour fields, uint8 (count, 3, size, size), the same on every machine.

    A sum of three octaves of bicubically upsampled Gaussian noise per channel, standardised and
    squashed with a sigmoid so most pixels are far from mid-grey (where an inverted digit would be
    invisible).
    """
    generator = torch.Generator().manual_seed(seed)
    field = torch.zeros(count, 3, size, size)
    for cells, weight in ((2, 1.0), (4, 0.5), (8, 0.25)):
        coarse = torch.randn(count, 3, cells + 1, cells + 1, generator=generator)
        field += weight * F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
    mean = field.mean(dim=(2, 3), keepdim=True)
    std = field.std(dim=(2, 3), keepdim=True)
    colours = torch.sigmoid(1.5 * (field - mean) / std)
    return (colours * 255).round().to(torch.uint8)


def load_background(path: str | Path, min_size: int) -> Tensor:
    """Any image file PIL reads, as uint8 (1, 3, H, W); refuses one too small for the crop."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"data.background: file {path} does not exist") from None
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"data.background: cannot read {path} as an image ({_one_line(e)})") from None
    w, h = rgb.size
    if w < min_size or h < min_size:
        raise DataError(f"data.background: {path} is {w}x{h} pixels; color-mnist needs at least "
                        f"{min_size}x{min_size} (data.image_size={min_size})")
    array = np.asarray(rgb, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


# ----------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)


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


def _one_line(error: BaseException | str) -> str:
    return " ".join(str(error).split())


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX file (gzip or plain) as a uint8 array, after checking its magic number and size."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({_one_line(e)})") from None
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
        reason = _one_line(e) or type(e).__name__
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


# ----------------------------------------------------------------------------------------------
# Kaggle CSV


def _csv_header(names: list[str], path: Path) -> bool:
    """True when the header is labeled, False when unlabeled; DataError when it is neither."""
    pixels = [f"pixel{i}" for i in range(_CSV_PIXELS)]
    cleaned = [name.strip().strip('"').lower() for name in names]
    if cleaned == ["label", *pixels]:
        return True
    if cleaned == pixels:
        return False
    shown = ",".join(names)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise DataError(f"{path}, line 1: header must be 'label,pixel0,...,pixel783' (labeled) or "
                    f"'pixel0,...,pixel783' (unlabeled), got {shown!r} ({len(names)} columns)")


_CSV_ROW = re.compile(rb"\d+(?:,\d+)*")


def _csv_line_problem(line: bytes, columns: list[str]) -> str | None:
    """Why one data line is malformed, or None (the slow, exact diagnosis of a suspect line)."""
    tokens = line.split(b",")
    if len(tokens) != len(columns):
        return f"expected {len(columns)} values, got {len(tokens)}"
    if _CSV_ROW.fullmatch(line) is None:
        for token, column in zip(tokens, columns, strict=True):
            text = token.decode("utf-8", "replace")
            if not text.strip():
                return f"column {column}: empty value"
            if re.fullmatch(r"-?\d+", text) is None:
                return f"column {column}: {text!r} is not an integer"
    for token, column in zip(tokens, columns, strict=True):
        top = 9 if column == "label" else 255
        if not 0 <= int(token) <= top:
            return f"column {column}: {int(token)} is outside 0..{top}"
    return None


def read_kaggle_csv(path: str | Path) -> tuple[Tensor, Tensor | None]:
    """A Kaggle digit-recognizer CSV as uint8 images (N, 1, 28, 28) and int64 labels (or None).

    Validation is vectorised (comma counts, stray bytes, ranges) and parsing is numpy's C parser,
    so 42000 rows load in about a second; only a line already known to be bad is diagnosed in Python.
    Every error names the file and the 1-based line number (the header is line 1).
    """
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file does not exist (data.name csv:PATH)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({_one_line(e)})") from None
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if not raw.strip():
        raise DataError(f"{path}, line 1: file is empty; expected a header 'label,pixel0,...,pixel783'")
    lines = raw.split(b"\n")
    labeled = _csv_header(lines[0].decode("utf-8", "replace").strip().split(","), path)
    columns = (["label"] if labeled else []) + [f"pixel{i}" for i in range(_CSV_PIXELS)]
    rows, line_numbers = [], []
    for number, line in enumerate(lines[1:], start=2):
        line = line.strip()
        if line:
            rows.append(line)
            line_numbers.append(number)
    if not rows:
        raise DataError(f"{path}, line 2: no data rows after the header")

    def fail(first: int, stop: int | None = None) -> DataError:
        """The error for the first bad row in rows[first:stop] (just rows[first] by default)."""
        for row in range(first, first + 1 if stop is None else stop):
            problem = _csv_line_problem(rows[row], columns)
            if problem:
                return DataError(f"{path}, line {line_numbers[row]}: {problem}")
        return DataError(f"{path}, lines {line_numbers[first]}-{line_numbers[row]}: cannot parse as integers")

    commas = np.fromiter((row.count(b",") for row in rows), dtype=np.int64, count=len(rows))
    wrong = np.flatnonzero(commas != len(columns) - 1)
    if len(wrong):
        raise fail(int(wrong[0]))
    body = b"\n".join(rows)
    stray = body.translate(None, b"0123456789,\n")  # bytes other than digits and separators
    if stray:
        first = min(body.find(bytes([c])) for c in set(stray))
        raise fail(body.count(b"\n", 0, first))
    del body

    try:  # numpy's C parser; uint8 makes it refuse empty values and anything above 255 itself
        values = np.loadtxt(rows, delimiter=",", dtype=np.uint8, comments=None, ndmin=2)
    except ValueError as e:
        found = re.search(r"at row (\d+)", str(e))
        row = int(found.group(1)) if found else -1
        if 0 <= row < len(rows) and _csv_line_problem(rows[row], columns):
            raise fail(row) from None
        raise fail(0, len(rows)) from None
    if labeled:
        over = np.flatnonzero(values[:, 0] > 9)
        if len(over):
            raise fail(int(over[0]))
    pixels = torch.from_numpy(values[:, 1:] if labeled else values).reshape(-1, 1, 28, 28).contiguous()
    labels = torch.from_numpy(values[:, 0].astype(np.int64)) if labeled else None
    return pixels, labels


def _csv_identity(path: Path) -> tuple[str, int, int]:
    """Path, size and modification time: an edited file is parsed again."""
    try:
        stat = path.stat()
    except OSError:
        raise DataError(f"{path}: file does not exist (data.name csv:PATH)") from None
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


_CSV_CACHE: dict[tuple[str, int, int], tuple[Tensor, Tensor | None]] = {}


def load_csv(path: str | Path, split: str) -> tuple[Tensor, Tensor | None]:
    """The split of a Kaggle CSV: ``test`` is the last N // 6 rows, ``train`` the rows before them.

    Parsed once per process.
    """
    path = Path(path).expanduser()
    key = _csv_identity(path)
    if key not in _CSV_CACHE:
        _CSV_CACHE[key] = read_kaggle_csv(path)
    images, labels = _CSV_CACHE[key]
    n_test = len(images) // _CSV_TEST_FRACTION
    if split == "test" and n_test == 0:
        raise DataError(f"{path}: {len(images)} rows are too few for a test split (the last 1/6 of the rows)")
    part = slice(len(images) - n_test, None) if split == "test" else slice(0, len(images) - n_test)
    return images[part], None if labels is None else labels[part]


# ----------------------------------------------------------------------------------------------
# Registry


def _make_idx(kind: str) -> Callable[[DataConfig, str], Dataset]:
    def make(cfg: DataConfig, split: str) -> Dataset:
        images, labels = load_idx(kind, resolve_data_dir(cfg.data_dir), split)
        return Dataset(kind, images, labels, split)

    make.__doc__ = f"{kind}: the original IDX files ({_FOLDERS[kind]}/raw/ under the data directory)."
    return make


def _make_color_mnist(cfg: DataConfig, split: str) -> Dataset:
    """color-mnist: MNIST digits inverted onto crops of generated (or given) backgrounds."""
    size = cfg.image_size
    if size < 8:
        raise DataError(f"data.image_size: color-mnist needs at least 8, got {size}")
    if cfg.background:
        backgrounds = load_background(cfg.background, size)
    else:
        backgrounds = _generated_backgrounds_cached(max(256, 2 * size))
    digits, labels = load_idx("mnist", resolve_data_dir(cfg.data_dir), split)
    return ColorMnist(digits, labels, backgrounds, size, cfg.change_colors, split)


_BACKGROUND_CACHE: dict[int, Tensor] = {}


def _generated_backgrounds_cached(size: int) -> Tensor:
    if size not in _BACKGROUND_CACHE:
        _BACKGROUND_CACHE[size] = generated_backgrounds(size=size)
    return _BACKGROUND_CACHE[size]


DATASETS: dict[str, Callable[[DataConfig, str], Dataset]] = {
    "mnist": _make_idx("mnist"),
    "fashion": _make_idx("fashion"),
    "color-mnist": _make_color_mnist,
}
CSV_PREFIX = "csv:"


def dataset_names() -> list[str]:
    """The names ``data.name`` accepts, for help texts and errors (``csv:PATH`` is a pattern)."""
    return [*DATASETS, f"{CSV_PREFIX}PATH"]


def check_dataset_name(name: str, key: str = "data.name") -> None:
    """Refuse a name no dataset answers to, before anything loads (``key`` is the flag or config
    key to name in the one-line error, with the valid names)."""
    if name not in DATASETS and not name.startswith(CSV_PREFIX):
        raise DataError(f"{key}: {name!r} is not one of {', '.join(dataset_names())}")


_DATASET_CACHE: dict[tuple, Dataset] = {}


def load_dataset(cfg: DataConfig, split: str = "train") -> Dataset:
    """The dataset ``cfg`` names, split ``train`` or ``test``; the same object for the same inputs."""
    if split not in SPLITS:
        raise DataError(f"split: {split!r} is not one of {', '.join(SPLITS)}")
    name = cfg.name
    key: tuple
    if name.startswith(CSV_PREFIX):
        text = name[len(CSV_PREFIX):].strip()
        if not text:
            raise DataError(f"data.name: {name!r} needs a file path after 'csv:', e.g. csv:train.csv")
        path = Path(text).expanduser()
        key = ("csv", _csv_identity(path), split)
        if key not in _DATASET_CACHE:
            images, labels = load_csv(path, split)
            _DATASET_CACHE[key] = Dataset(name, images, labels, split)
        return _DATASET_CACHE[key]
    if name not in DATASETS:
        raise DataError(f"data.name: unknown dataset {name!r}; valid: {VALID_NAMES}")
    key = (name, str(resolve_data_dir(cfg.data_dir)), split)
    if name == "color-mnist":
        key += (cfg.background, cfg.change_colors, cfg.image_size)
    if key not in _DATASET_CACHE:
        _DATASET_CACHE[key] = DATASETS[name](cfg, split)
    return _DATASET_CACHE[key]

