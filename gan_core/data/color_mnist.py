"""Seed 000's colour digits (``color-mnist``): each MNIST digit is upsampled (bilinear, like
``scipy.ndimage.zoom(order=1)``), binarised, and the colours of a random crop of a background are
inverted where the digit is. Default backgrounds are generated smooth colour fields (no image
licence to worry about); ``data.background`` takes any image file instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gan_core.data.dataset import Dataset, one_line
from gan_core.errors import DataError

_BACKGROUND_COUNT = 8  # generated colour fields to crop from
_BACKGROUND_SEED = 20171013  # seed 000's publication date: fixed, so every machine sees the same fields
_TAKE_BLOCK = 1024  # take() draws crops per block of images, so take(100) is a prefix of take(2000)


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
        raise DataError(f"data.background: cannot read {path} as an image ({one_line(e)})") from None
    w, h = rgb.size
    if w < min_size or h < min_size:
        raise DataError(f"data.background: {path} is {w}x{h} pixels; color-mnist needs at least "
                        f"{min_size}x{min_size} (data.resolution={min_size})")
    array = np.asarray(rgb, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


