"""Your own images: ``folder:PATH`` (image files) and ``npz:PATH`` (one array file).

``folder:PATH``: class subfolders (``PATH/<class>/*.png``, any number of classes; class names
sorted, so ``cats`` is label 0 and ``dogs`` label 1) give labels; a folder of image files only is
unlabeled. Files and folders whose names start with a dot are skipped; any other file must be an
image (``.png .jpg .jpeg .webp .bmp .gif .tif .tiff``, the first frame of an animation).

``npz:PATH``: ``images`` uint8 ``(N, H, W)`` or ``(N, H, W, C)`` with C 1, 3 or 4, optional
``labels`` (integers 0..K-1, ``(N,)``) and optional ``class_names`` (K strings).

What the GAN sees is ``data.resolution`` (a square side) and ``data.channels`` (1 grey, 3 RGB);
unset, they are the images' own (one shared square size; grey when every image is grey).
Conversion, per image: to grey (``L``) or RGB (an alpha channel is dropped), then resized so its
shorter side is the resolution (Lanczos, which antialiases when it shrinks) and centre-cropped to a
square. A folder is converted once (like StyleGAN2-ADA's dataset tool) into one cached uint8
array with its labels, class names and a content digest, ``$GANSEARCH_CACHE/datasets/``, keyed
by the folder's listing (names, sizes, modification times) and the conversion, so a search does
not decode images per trial. Neither source has a test split: a fixed, seeded sixth of each
class (``dataset.holdout_split``) is held out for the metric.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gan_core.data.dataset import one_line
from gan_core.errors import DataError
from gan_core.io import atomic_write_bytes

FOLDER_PREFIX = "folder:"
NPZ_PREFIX = "npz:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F", "P;L")
CONVERT_VERSION = 1  # part of every cache key: a change to the conversion converts again
MAX_SIDE = 1024  # a resolution beyond this is a typo on a GAN toolkit for CPUs and a few GPUs


@dataclass(frozen=True)
class ImageSet:
    """A whole converted image set, before any split: what a folder or an npz file holds.

    ``digest`` (sha256 hex of the images, labels and class names) names its content: the same
    images give the same digest on every machine, whatever the folder was called."""

    images: Tensor  # uint8 (N, C, S, S)
    labels: Tensor | None  # int64 (N,)
    class_names: tuple[str, ...]
    digest: str
    source: str  # the data.name it came from

    def to_bytes(self) -> bytes:
        """The set as one ``.npz`` file's bytes (what the cache holds and a search ships)."""
        buf = io.BytesIO()
        arrays = {"images": self.images.numpy(), "class_names": np.array(self.class_names, dtype=str),
                  "meta": np.array(json.dumps({"digest": self.digest, "source": self.source}))}
        if self.labels is not None:
            arrays["labels"] = self.labels.numpy()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ImageSet:
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            labels = torch.from_numpy(f["labels"].astype(np.int64)) if "labels" in f else None
            return cls(torch.from_numpy(f["images"].copy()), labels, tuple(str(c) for c in f["class_names"]),
                       meta["digest"], meta["source"])


def content_digest(images: Tensor, labels: Tensor | None, class_names: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(f"{tuple(images.shape)}".encode())
    h.update(images.contiguous().numpy().tobytes())
    if labels is not None:
        h.update(labels.numpy().astype("<i8").tobytes())
    h.update(json.dumps(list(class_names)).encode())
    return h.hexdigest()


def source_path(name: str) -> Path:
    """The path of a ``folder:PATH`` or ``npz:PATH`` data name (a one-line error when empty)."""
    prefix = FOLDER_PREFIX if name.startswith(FOLDER_PREFIX) else NPZ_PREFIX
    text = name[len(prefix):].strip()
    if not text:
        example = "folder:images/" if prefix == FOLDER_PREFIX else "npz:images.npz"
        raise DataError(f"data.name: {name!r} needs a path after {prefix!r}, e.g. {example}")
    return Path(text).expanduser()


# ----------------------------------------------------------------------------- a folder


def list_folder(root: Path) -> tuple[list[Path], list[int] | None, tuple[str, ...]]:
    """The image files of a folder (sorted), their labels and class names (None, () if flat)."""
    if not root.exists():
        raise DataError(f"folder:{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"folder:{root}: not a folder (an .npz file is npz:PATH)")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    folders = [p for p in entries if p.is_dir()]
    files = [p for p in entries if not p.is_dir()]
    if folders and files:
        raise DataError(f"folder:{root}: holds both class folders ({folders[0].name}/) and files "
                        f"({files[0].name}); put every image into a class folder, or none")
    if not folders:
        _check_images(files, root)
        return files, None, ()
    paths: list[Path] = []
    labels: list[int] = []
    for k, folder in enumerate(folders):
        inside = sorted(p for p in folder.rglob("*") if p.is_file()
                        and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if not inside:
            raise DataError(f"folder:{root}: class folder {folder.name}/ holds no images")
        _check_images(inside, root)
        paths += inside
        labels += [k] * len(inside)
    return paths, labels, tuple(f.name for f in folders)


def _check_images(files: list[Path], root: Path) -> None:
    if not files:
        raise DataError(f"folder:{root}: no images in it (looked for {' '.join(IMAGE_SUFFIXES)})")
    for p in files:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"folder:{root}: {p.relative_to(root)} is not an image file (image files end in "
                            f"{', '.join(IMAGE_SUFFIXES)}); move it out of the folder")


def _open(path: Path, root: Path):  # -> PIL.Image.Image
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"folder:{root}: {path.relative_to(root)} is not a readable image "
                        f"({one_line(exc)})") from None


def native_format(paths: list[Path], root: Path) -> tuple[tuple[int, int], bool]:
    """The first image's (width, height), whether every image is grey, and a one-line error when
    the images' sizes differ (reads only the files' headers)."""
    first: tuple[int, int] | None = None
    grey = True
    for p in paths:
        with _open(p, root) as img:
            if first is None:
                first, first_path = img.size, p
            elif img.size != first:
                raise DataError(f"folder:{root}: images differ in size ({first_path.relative_to(root)} "
                                f"{first[0]}x{first[1]}, {p.relative_to(root)} {img.size[0]}x{img.size[1]}); "
                                "set data.resolution to the side every image is resized to")
            grey = grey and img.mode in GREY_MODES
    assert first is not None  # list_folder refuses an empty folder
    return first, grey


def convert_image(img, side: int, channels: int):  # (PIL image, ...) -> np.ndarray (side, side, C)
    """One image as the GAN sees it: grey or RGB, shorter side resized to ``side``, centre crop."""
    from PIL import Image

    img.seek(0)  # an animation's first frame
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    scale = side / min(w, h)
    if (w, h) != (side, side):
        size = (max(side, round(w * scale)), max(side, round(h * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
        left, top = (size[0] - side) // 2, (size[1] - side) // 2
        img = img.crop((left, top, left + side, top + side))
    array = np.asarray(img, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def convert_folder(root: Path, resolution: int | None, channels: int | None, *,
                   progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """Decode, convert and stack every image of a folder (no cache: see ``load_folder``)."""
    paths, labels, class_names = list_folder(root)
    if resolution is None or channels is None:
        (w, h), grey = native_format(paths, root)
        if resolution is None:
            if w != h:
                raise DataError(f"folder:{root}: the images are {w}x{h}, not square; set data.resolution "
                                "(each image is resized and centre-cropped to that side)")
            resolution = w
        channels = channels or (1 if grey else 3)
    check_side(resolution, f"folder:{root}")
    out = np.empty((len(paths), resolution, resolution, channels), dtype=np.uint8)

    def one(i: int) -> None:
        with _open(paths[i], root) as img:
            try:
                out[i] = convert_image(img, resolution, channels)
            except (OSError, ValueError) as exc:  # a header that parsed, then broken pixel data
                raise DataError(f"folder:{root}: {paths[i].relative_to(root)} is not a readable image "
                                f"({one_line(exc)})") from None

    # Pillow releases the GIL while it decodes and resizes: threads use every core.
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        for done, _ in enumerate(pool.map(one, range(len(paths))), start=1):
            if progress is not None:
                progress(done, len(paths))
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    label_tensor = None if labels is None else torch.tensor(labels, dtype=torch.int64)
    return ImageSet(images, label_tensor, class_names, content_digest(images, label_tensor, class_names),
                    FOLDER_PREFIX + str(root))


def check_side(side: int, where: str) -> None:
    if not 4 <= side <= MAX_SIDE:
        raise DataError(f"{where}: resolution {side} is outside 4..{MAX_SIDE} (data.resolution)")


def folder_cache_key(root: Path, resolution: int | None, channels: int | None) -> str:
    """What identifies a conversion: the folder's listing (relative names, sizes, mtimes) and the
    requested resolution and channels; an added, removed or edited image changes it."""
    paths, labels, _ = list_folder(root)
    h = hashlib.sha256(json.dumps([CONVERT_VERSION, str(root.resolve()), resolution, channels]).encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(labels).encode())
    return h.hexdigest()[:16]


def load_folder(root: Path, resolution: int | None, channels: int | None, *,
                cache: Path | None, progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """The converted set of a folder, from the cache (``cache``/datasets) or converted into it."""
    if cache is None:
        return convert_folder(root, resolution, channels, progress=progress)
    key = folder_cache_key(root, resolution, channels)
    entry = cache / "datasets" / f"{_slug(root.name)}-{key}.npz"
    if entry.is_file():
        try:
            return ImageSet.from_bytes(entry.read_bytes())
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # torn or foreign: convert again and replace it
    started = time.perf_counter()
    converted = convert_folder(root, resolution, channels, progress=progress)
    converted_s = time.perf_counter() - started
    atomic_write_bytes(entry, converted.to_bytes())
    CONVERSIONS.append((len(converted.images), converted_s))
    return converted


CONVERSIONS: list[tuple[int, float]] = []  # (images, seconds) of each conversion in this process


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip("-") or "folder"


# ----------------------------------------------------------------------------- an npz file


def load_npz_images(path: Path, resolution: int | None, channels: int | None) -> ImageSet:
    """An ``.npz`` of ``images`` (+ ``labels``, ``class_names``) as a converted set."""
    name = NPZ_PREFIX + str(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{name}: not a readable .npz file ({one_line(exc)})") from None
    images = arrays.get("images")
    if images is None:
        raise DataError(f"{name}: no 'images' array (found: {', '.join(arrays) or 'none'})")
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3, 4)):
        raise DataError(f"{name}: 'images' must be uint8 (N, H, W) or (N, H, W, C) with C 1, 3 or 4, "
                        f"got {images.dtype} {images.shape}")
    if len(images) == 0:
        raise DataError(f"{name}: 'images' holds no images")
    if images.ndim == 3:
        images = images[:, :, :, None]
    labels = arrays.get("labels")
    class_names: tuple[str, ...] = ()
    if labels is not None:
        if labels.shape != (len(images),) or labels.dtype.kind not in "iu" or (len(labels) and labels.min() < 0):
            raise DataError(f"{name}: 'labels' must be integers >= 0 of shape ({len(images)},), "
                            f"got {labels.dtype} {labels.shape}")
        count = int(labels.max()) + 1
        names = arrays.get("class_names")
        class_names = tuple(str(c) for c in names) if names is not None else tuple(str(k) for k in range(count))
        if len(class_names) < count:
            raise DataError(f"{name}: label {count - 1} but only {len(class_names)} class_names")
    _, h, w, c = images.shape
    side = resolution or h
    if resolution is None and h != w:
        raise DataError(f"{name}: the images are {w}x{h}, not square; set data.resolution")
    check_side(side, name)
    want = channels or (1 if c == 1 else 3)
    if (h, w, c) != (side, side, want):
        from PIL import Image

        modes = {1: "L", 3: "RGB", 4: "RGBA"}
        images = np.stack([convert_image(Image.fromarray(im[:, :, 0] if c == 1 else im, modes[c]), side, want)
                           for im in images])
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    label_tensor = None if labels is None else torch.from_numpy(labels.astype(np.int64))
    return ImageSet(tensor, label_tensor, class_names, content_digest(tensor, label_tensor, class_names), name)
