"""DiffAugment (Zhao et al. 2020): differentiable augmentation of every image D sees.

D overfits a small or easy data set and then stops teaching G; augmenting real and fake images
alike, differentiably (G's gradient flows through the transform), keeps D honest without
leaking the augmentation into G's samples. The transforms and their ratios are those of the
reference DiffAugment code: ``translation`` shifts by up to 1/8 of the side with zero padding,
``cutout`` zeroes a square of half the side, ``color`` is random brightness (+-0.5),
saturation (x0..2) and contrast (x0.5..1.5). Like the reference, nothing is clamped, so
``color`` may leave the model's output range (brightness is scaled for [-1, 1] images).

Every random number comes from the caller's CPU ``torch.Generator`` (then moved to the
images' device), so a run that keeps the generator's state in its checkpoint resumes exactly::

    aug = DiffAugment(["translation", "cutout"], p=1.0, generator=torch.Generator().manual_seed(5))
    logits = D(aug(images), y)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from gan_core.errors import ConfigError

Transform = Callable[[Tensor, torch.Generator], Tensor]


def _uniform(x: Tensor, gen: torch.Generator) -> Tensor:
    """One U[0, 1) number per image, shaped (B, 1, 1, 1) to broadcast."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=gen).to(device=x.device, dtype=x.dtype)


def brightness(x: Tensor, gen: torch.Generator) -> Tensor:
    return x + (_uniform(x, gen) - 0.5)


def saturation(x: Tensor, gen: torch.Generator) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, gen) * 2) + mean


def contrast(x: Tensor, gen: torch.Generator) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, gen) + 0.5) + mean


def translation(x: Tensor, gen: torch.Generator, ratio: float = 0.125) -> Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its side, filling with zeros.

    The reference indexes a 1-pixel zero-padded copy at clamp(i + shift + 1, 0, H + 1), so
    every pixel shifted in from outside reads the padding; two gathers do the same."""
    b, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (b, 1), generator=gen).to(x.device)
    ty = torch.randint(-sw, sw + 1, (b, 1), generator=gen).to(x.device)
    rows = (torch.arange(h, device=x.device) + tx + 1).clamp(0, h + 1)  # (B, H) padded indices
    cols = (torch.arange(w, device=x.device) + ty + 1).clamp(0, w + 1)  # (B, W)
    padded = F.pad(x, [1, 1, 1, 1])
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def cutout(x: Tensor, gen: torch.Generator, ratio: float = 0.5) -> Tensor:
    """Zero a square of ``ratio`` of the side at a random centre (it may hang over the edge).

    The reference's clamped index grid zeroes exactly the rows and columns of the square that
    lie inside the image; a broadcast row-and-column test builds the same mask."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (b, 1), generator=gen).to(x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (b, 1), generator=gen).to(x.device)
    r = torch.arange(h, device=x.device) - (ox - ch // 2)  # (B, H): position inside the square
    q = torch.arange(w, device=x.device) - (oy - cw // 2)
    inside = ((r >= 0) & (r < ch))[:, :, None] & ((q >= 0) & (q < cw))[:, None, :]
    return x * (~inside).to(x.dtype)[:, None]


# Names a policy may hold, each a sequence of transforms applied in order (the reference's table).
AUGMENTATIONS: dict[str, tuple[Transform, ...]] = {
    "translation": (translation,),
    "cutout": (cutout,),
    "color": (brightness, saturation, contrast),
}
RGB_ONLY = ("color",)


def check_policy(policy: Sequence[str], shape: Sequence[int], dataset: str) -> None:
    """Refuse transforms the data cannot take (``color`` on grayscale: saturation is void)."""
    if shape[0] != 3:
        bad = [n for n in policy if n in RGB_ONLY]
        if bad:
            ok = ", ".join(n for n in AUGMENTATIONS if n not in RGB_ONLY)
            raise ConfigError(f"augment.policy: {bad[0]!r} needs RGB images; data.name {dataset!r} has "
                              f"{shape[0]} channel(s) (valid here: {ok})")


def blur_sigma(start: float, fade_images: int, images_seen: int) -> float:
    """The D-input blur's standard deviation (pixels) after ``images_seen`` images: ``start``
    falling linearly to 0 over ``fade_images`` (StyleGAN3's blur_init_sigma / blur_fade_kimg)."""
    if start <= 0 or images_seen >= fade_images:
        return 0.0
    return start * (1.0 - images_seen / fade_images)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) images, kernel radius 3 sigma (at least 1), zero
    padding; differentiable (R1 takes its gradient through it). sigma 0: ``x`` unchanged.

    Early in training D then judges shapes and colours, not the fine texture an untrained G
    draws (transposed-conv checkerboards), which it otherwise learns first and wins on."""
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (taps / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)


class DiffAugment:
    """The configured policy as one callable on (B, C, H, W) float images.

    With ``p`` < 1 each transform is applied to each image with probability ``p`` (a per-image
    coin from the same generator); with an empty policy it returns its input unchanged."""

    def __init__(self, policy: Sequence[str], p: float, generator: torch.Generator) -> None:
        unknown = [n for n in policy if n not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(f"augment.policy: {unknown[0]!r} is not one of {', '.join(AUGMENTATIONS)}")
        self.transforms = [f for name in policy for f in AUGMENTATIONS[name]]
        self.p = float(p)
        self.generator = generator

    def __bool__(self) -> bool:
        return bool(self.transforms) and self.p > 0

    def __call__(self, x: Tensor) -> Tensor:
        if not self:
            return x
        for f in self.transforms:
            y = f(x, self.generator)
            if self.p < 1.0:
                apply = torch.rand(x.shape[0], generator=self.generator) < self.p
                y = torch.where(apply.to(x.device)[:, None, None, None], y, x)
            x = y
        return x.contiguous()
