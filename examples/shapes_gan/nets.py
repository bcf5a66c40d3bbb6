"""A small class-conditional convolutional GAN, written as a gansearch user would write one.

gansearch builds it from ``model.arch: shapes_gan.nets:build`` and passes the run's model config
(``model_cfg.latent_dim`` and the free mapping ``model_cfg.options``), the data's ``(C, H, W)`` and
its number of classes; the contract is in gan_core/user_arch.py. Its options, all searchable as
``model.options.KEY`` in a space:

- ``channels`` (64): D's widest layer and G's first; halved at each doubling of the size;
- ``norm`` ("batch"): G's normalisation, "batch" or "none";
- ``embed`` (True): condition on the class (G scales z by a class embedding, D adds the
  projection of its features on a class embedding, Miyato & Koyama 2018); False ignores labels.
"""

from __future__ import annotations

import torch
from torch import nn


def build(model_cfg, shape, num_classes):
    """(G, D) for images of ``shape`` = (C, H, W); H and W must be multiples of 4."""
    c, h, w = shape
    if h % 4 or w % 4:
        raise ValueError(f"shapes_gan needs a side divisible by 4, got {h}x{w}")
    opts = model_cfg.options
    channels = int(opts.get("channels", 64))
    norm = str(opts.get("norm", "batch"))
    if norm not in ("batch", "none"):
        raise ValueError(f"model.options.norm: {norm!r} is not one of batch, none")
    classes = num_classes if bool(opts.get("embed", True)) else 0
    G = Generator(model_cfg.latent_dim, channels, shape, classes, norm)
    D = Discriminator(channels, shape, classes)
    for m in (*G.modules(), *D.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return G, D


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, shape: tuple[int, int, int], classes: int, norm: str):
        super().__init__()
        c, h, w = shape
        ch = max(channels, 4)
        self.classes = classes
        self.embed = nn.Embedding(classes, latent_dim) if classes else None
        self.fc = nn.Linear(latent_dim, ch * (h // 4) * (w // 4))

        def bn(n: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(n)] if norm == "batch" else []

        self.net = nn.Sequential(
            nn.Unflatten(1, (ch, h // 4, w // 4)), *bn(ch), nn.ReLU(),
            nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), *bn(ch // 2), nn.ReLU(),
            nn.ConvTranspose2d(ch // 2, ch // 4, 4, 2, 1), *bn(ch // 4), nn.ReLU(),
            nn.Conv2d(ch // 4, c, 3, padding=1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and y is not None:
            z = z * self.embed(y)
        return self.net(self.fc(z))


class Discriminator(nn.Module):
    def __init__(self, channels: int, shape: tuple[int, int, int], classes: int):
        super().__init__()
        c, h, w = shape
        ch = max(channels, 4)
        self.features = nn.Sequential(
            nn.Conv2d(c, ch // 4, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch // 4, ch // 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch // 2, ch, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        n = ch * (h // 4) * (w // 4)
        self.out = nn.Linear(n, 1)
        self.embed = nn.Embedding(classes, n) if classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        logits = self.out(h)[:, 0]
        if self.embed is not None and y is not None:
            logits = logits + (h * self.embed(y)).sum(dim=1)
        return logits
