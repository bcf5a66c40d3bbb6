"""``load_dataset(cfg.data, split)``: the one door to every source, by ``data.name``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_core.config import DataConfig
from gan_core.data import color_mnist, idx, image_files, kaggle_csv
from gan_core.data.dataset import SPLITS, Dataset, holdout_split
from gan_core.data.image_files import FOLDER_PREFIX, NPZ_PREFIX, ImageSet
from gan_core.errors import DataError

CSV_PREFIX = "csv:"
PATTERNS = (f"{CSV_PREFIX}PATH", f"{FOLDER_PREFIX}PATH", f"{NPZ_PREFIX}PATH")
COLOR_MNIST_SIDE = 64  # color-mnist's side when data.resolution is unset: seed 000's 64x64


def _make_idx(kind: str) -> Callable[[DataConfig, str], Dataset]:
    def make(cfg: DataConfig, split: str) -> Dataset:
        images, labels = idx.load_idx(kind, idx.resolve_data_dir(cfg.data_dir), split)
        images = adapt(images, cfg.resolution, cfg.channels, kind)
        return Dataset(kind, images, labels, split, idx.CLASS_NAMES[kind])

    make.__doc__ = f"{kind}: the original IDX files ({idx.idx_folder(kind)}/raw/ under the data directory)."
    return make


def _make_color_mnist(cfg: DataConfig, split: str) -> Dataset:
    """color-mnist: MNIST digits inverted onto crops of generated (or given) backgrounds."""
    size = COLOR_MNIST_SIDE if cfg.resolution is None else cfg.resolution
    if size < 8:
        raise DataError(f"data.resolution: color-mnist needs at least 8, got {size}")
    if cfg.channels not in (None, 3):
        raise DataError(f"data.channels: color-mnist is RGB (3, or leave it unset), got {cfg.channels}")
    if cfg.background:
        backgrounds = color_mnist.load_background(cfg.background, size)
    else:
        backgrounds = _generated_backgrounds_cached(max(256, 2 * size))
    digits, labels = idx.load_idx("mnist", idx.resolve_data_dir(cfg.data_dir), split)
    return color_mnist.ColorMnist(digits, labels, backgrounds, size, cfg.change_colors, split)


_BACKGROUND_CACHE: dict[int, Tensor] = {}


def _generated_backgrounds_cached(size: int) -> Tensor:
    if size not in _BACKGROUND_CACHE:
        _BACKGROUND_CACHE[size] = color_mnist.generated_backgrounds(size=size)
    return _BACKGROUND_CACHE[size]


DATASETS: dict[str, Callable[[DataConfig, str], Dataset]] = {
    "mnist": _make_idx("mnist"),
    "fashion": _make_idx("fashion"),
    "color-mnist": _make_color_mnist,
}


def dataset_names() -> list[str]:
    """The names ``data.name`` accepts, for help texts and errors (``csv:PATH`` ... are patterns)."""
    return [*DATASETS, *PATTERNS]


def is_user_source(name: str) -> bool:
    """A folder or an npz file of the user's own images (converted once, shipped by a search)."""
    return name.startswith((FOLDER_PREFIX, NPZ_PREFIX))


def check_dataset_name(name: str, key: str = "data.name") -> None:
    """Refuse a name no dataset answers to, before anything loads (``key`` is the flag or config
    key to name in the one-line error, with the valid names)."""
    if name not in DATASETS and not name.startswith((CSV_PREFIX, FOLDER_PREFIX, NPZ_PREFIX)):
        raise DataError(f"{key}: {name!r} is not one of {', '.join(dataset_names())}")


def adapt(images: Tensor, resolution: int | None, channels: int | None, where: str) -> Tensor:
    """A stored uint8 (N, C, S, S) set at ``resolution`` and ``channels`` (unset: as it is):
    grey to RGB repeats the channel, RGB to grey takes ITU-R 601 luma, a new side is an
    antialiased bilinear resize (the sources here are square)."""
    n, c, h, w = images.shape
    if channels is not None and channels != c:
        if channels == 3:
            images = images.expand(n, 3, h, w)
        else:
            luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * luma).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if resolution is not None and resolution != h:
        image_files.check_side(resolution, where)
        resized = [F.interpolate(images[i:i + 4096].float(), size=(resolution, resolution), mode="bilinear",
                                 antialias=True, align_corners=False) for i in range(0, n, 4096)]
        images = torch.cat(resized).round().clamp(0, 255).to(torch.uint8)
    return images.contiguous()


# ----------------------------------------------------------------------------- user image sets

# Sets a search's driver converted and shipped to this process (``provide_image_set``): a trial
# on another node trains on the driver's bytes without the folder being there.
_PROVIDED: dict[tuple[str, int | None, int | None], ImageSet] = {}


def _set_key(cfg: DataConfig) -> tuple[str, int | None, int | None]:
    return (cfg.name, cfg.resolution, cfg.channels)


def provide_image_set(cfg: DataConfig, image_set: ImageSet) -> None:
    """Make ``load_dataset(cfg)`` use ``image_set`` (converted elsewhere) for ``cfg``'s source."""
    _PROVIDED[_set_key(cfg)] = image_set  # load_dataset's cache is keyed by the set's digest


def _print_progress(name: str) -> Callable[[int, int], None]:
    """Plain lines on stderr (readable in a log file): the start, then every tenth."""
    shown = [0]

    def progress(done: int, total: int) -> None:
        if done == 1 or done * 10 // total > shown[0]:
            shown[0] = done * 10 // total
            print(f"converting {name} (once; cached): {done}/{total} images", file=sys.stderr, flush=True)

    return progress


def load_image_set(cfg: DataConfig) -> ImageSet:
    """The whole converted set of a ``folder:`` or ``npz:`` source (before its split): the one a
    driver shipped here, else the cached conversion, else converted now (progress on stderr)."""
    if _set_key(cfg) in _PROVIDED:
        return _PROVIDED[_set_key(cfg)]
    path = image_files.source_path(cfg.name)
    if cfg.name.startswith(NPZ_PREFIX):
        return image_files.load_npz_images(path, cfg.resolution, cfg.channels)
    return image_files.load_folder(path, cfg.resolution, cfg.channels, cache=idx.cache_dir().parent,
                                   progress=_print_progress(cfg.name))


# ----------------------------------------------------------------------------- the door


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
        key = ("csv", kaggle_csv.csv_identity(path), split, cfg.resolution, cfg.channels)
        if key not in _DATASET_CACHE:
            images, labels = kaggle_csv.load_csv(path, split)
            _DATASET_CACHE[key] = Dataset(name, adapt(images, cfg.resolution, cfg.channels, name), labels, split)
        return _DATASET_CACHE[key]
    if is_user_source(name):
        whole = load_image_set(cfg)
        key = ("user", name, cfg.resolution, cfg.channels, whole.digest, split)
        if key not in _DATASET_CACHE:
            part = holdout_split(whole.labels, len(whole.images), split)
            labels = None if whole.labels is None else whole.labels[part]
            if not len(part):
                raise DataError(f"{name}: {len(whole.images)} images are too few for a {split} split "
                                "(a sixth of each class is held out for the metric)")
            _DATASET_CACHE[key] = Dataset(name, whole.images[part].contiguous(), labels, split,
                                          whole.class_names or None, digest=whole.digest)
        return _DATASET_CACHE[key]
    if name not in DATASETS:
        raise DataError(f"data.name: {name!r} is not one of {', '.join(dataset_names())}")
    key = (name, str(idx.resolve_data_dir(cfg.data_dir)), split, cfg.resolution, cfg.channels)
    if name == "color-mnist":
        key += (cfg.background, cfg.change_colors)
    if key not in _DATASET_CACHE:
        _DATASET_CACHE[key] = DATASETS[name](cfg, split)
    return _DATASET_CACHE[key]
