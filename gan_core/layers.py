"""The building blocks every architecture shares: the Generator and Discriminator wrappers with
their metadata, the output activations, channel scaling, norms, activations and the seeds' inits.

``gan_core.models`` registers the architectures built from them (``seed_nets.py`` holds the five
seed systems' networks, ``dcgan_lite.py`` the CPU-sized DCGAN); conventions are in its docstring.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from gan_core.config import ModelConfig
from gan_core.errors import ConfigError

Shape = tuple[int, int, int]
Pair = tuple["Generator", "Discriminator"]

OUTPUT_RANGES: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "stretched-sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
}
KERAS_BN_EPS = 1e-3


class OutputActivation(nn.Module):
    """The generator's last non-linearity; ``stretched-sigmoid`` is seed 004's
    clamp(sigmoid(x) * 1.2 - 0.1, 0, 1), which reaches exact black and white."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in OUTPUT_RANGES:
            raise ConfigError(f"model.output: {kind!r} is not one of {', '.join(OUTPUT_RANGES)}")
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "tanh":
            return torch.tanh(x)
        if self.kind == "sigmoid":
            return torch.sigmoid(x)
        return (torch.sigmoid(x) * 1.2 - 0.1).clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return self.kind


def scaled(n: float, width: float) -> int:
    """A seed's unit or channel count scaled by ``width`` (rounded, at least 1)."""
    return max(1, int(round(n * width)))


def activation(kind: str, slope: float) -> nn.Module:
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky_relu":
        return nn.LeakyReLU(slope)
    raise ConfigError(f"model activation: {kind!r} is not one of relu, leaky_relu")


def batch_norm_1d(n: int, cfg: ModelConfig) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(n, eps=KERAS_BN_EPS, momentum=1.0 - cfg.bn_momentum)


def batch_norm_2d(n: int, cfg: ModelConfig) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(n, eps=KERAS_BN_EPS, momentum=1.0 - cfg.bn_momentum)


def dropout_layers(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []


def conv_out_size(n: int, stride: int) -> int:
    """Spatial size after a 'same'-padded convolution or ceil-mode pooling: ceil(n / stride)."""
    return -(-n // stride)


def keras_init(module: nn.Module) -> None:
    """Keras' defaults: Glorot-uniform kernels, zero biases (BN keeps gamma=1, beta=0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def truncated_normal_init(module: nn.Module) -> None:
    """The conditional seed system's (004) "He et al." init: truncated normal, stddev 2/sqrt(number of weights)
    (truncated at 2 stddev like tf.truncated_normal), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            std = 2.0 / math.sqrt(m.weight.numel())
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def label_vectors(y: Tensor | None, num_classes: int, like: Tensor) -> Tensor:
    """(B, K) float label vectors from one-hot/mixed vectors or int class indices."""
    if y is None:
        raise ValueError(f"conditional model needs labels y: (B, {num_classes}) vectors or (B,) ints")
    if y.ndim == 1:
        if y.dtype.is_floating_point:
            raise ValueError("labels y of shape (B,) must be integer class indices")
        y = nn.functional.one_hot(y.long(), num_classes)
    if y.shape != (like.shape[0], num_classes):
        raise ValueError(f"labels y: expected shape ({like.shape[0]}, {num_classes}), got {tuple(y.shape)}")
    return y.to(dtype=like.dtype, device=like.device)


class Generator(nn.Module):
    """z (B, latent_dim) [+ labels y] -> images (B, C, H, W) in the model range of ``output``.

    Conditional generators see ``cat(y, z)`` (seed 004's order)."""

    def __init__(
        self,
        net: nn.Module,
        *,
        arch: str,
        latent_dim: int,
        latent_dist: str,
        shape: Shape,
        output: str,
        num_classes: int = 0,
        conditional: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.arch = arch
        self.latent_dim = latent_dim
        self.latent_dist = latent_dist
        self.shape = tuple(shape)
        self.output = output
        self.num_classes = num_classes
        self.conditional = conditional

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.conditional:
            z = torch.cat([label_vectors(y, self.num_classes, z), z], dim=1)
        return self.net(z)


class Discriminator(nn.Module):
    """Images (B, C, H, W) [+ labels y] -> logits (B,). No sigmoid: losses take logits.

    ``features`` ends in a flatten; conditional discriminators concatenate ``y`` to the
    features before ``head`` (seed 004 injects the label at the first dense layer)."""

    def __init__(
        self,
        features: nn.Module,
        head: nn.Module,
        *,
        arch: str,
        shape: Shape,
        num_classes: int = 0,
        conditional: bool = False,
    ) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.arch = arch
        self.shape = tuple(shape)
        self.num_classes = num_classes
        self.conditional = conditional

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.features(x)
        if self.conditional:
            h = torch.cat([h, label_vectors(y, self.num_classes, h)], dim=1)
        return self.head(h)[:, 0]


def discriminator_meta(arch: str, shape: Shape, num_classes: int, conditional: bool) -> dict[str, Any]:
    """The keyword arguments of ``Discriminator`` besides its layers."""
    return dict(arch=arch, shape=shape, num_classes=num_classes if conditional else 0,
                conditional=conditional)


def generator_meta(cfg: ModelConfig, arch: str, shape: Shape, num_classes: int, conditional: bool) -> dict[str, Any]:
    """The keyword arguments of ``Generator`` besides its layers."""
    return dict(discriminator_meta(arch, shape, num_classes, conditional), latent_dim=cfg.latent_dim,
                latent_dist=cfg.latent_dist, output=cfg.output)


def upsample_stages(h: int, w: int) -> int:
    """Largest n with H and W divisible by 2**n and at least 7 pixels left (28 -> 2, 64 -> 3)."""
    n = 0
    while all(s % 2 ** (n + 1) == 0 and s // 2 ** (n + 1) >= 7 for s in (h, w)):
        n += 1
    return n


def require_divisible(arch: str, shape: Shape, factor: int, why: str) -> None:
    """A ConfigError unless the image's height and width are multiples of ``factor``."""
    _, h, w = shape
    if h % factor or w % factor:
        raise ConfigError(
            f"model.arch: {arch} {why} needs image height and width divisible by {factor}, "
            f"got {h}x{w} (choose another arch or depth)"
        )
