"""Drawing images from a generator: fixed-seed noise, cycling or given labels, uint8 out.

Example::

    run = load_run("runs/mnist")
    images = generate(run.G, 64, seed=0)          # uint8 (64, 1, 28, 28)
"""

from __future__ import annotations

import torch

from gan_core import models


def cycling_labels(n: int, num_classes: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Class indices 0, 1, ..., K-1, 0, 1, ...: every class equally often in a sample."""
    return torch.arange(n, device=device) % num_classes


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Float label vectors, the form conditional models take."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


@torch.no_grad()
def generate(
    G: models.Generator,
    n: int,
    *,
    seed: int = 0,
    labels: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    batch: int = 500,
) -> torch.Tensor:
    """``n`` uint8 images (n, C, H, W) from G in eval mode; conditional runs cycle 0..K-1
    unless ``labels`` (ints, or (n, K) mixed label vectors) are given."""
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    if z is None:
        gen = torch.Generator().manual_seed(seed)
        z = models.sample_latent(n, G.latent_dim, G.latent_dist, gen, device)
    z = z.to(device)
    y = None
    if G.conditional:
        if labels is None:
            labels = cycling_labels(n, G.num_classes, device)
        labels = labels.to(device)
        y = labels.float() if labels.ndim == 2 else one_hot(labels, G.num_classes)
    out = []
    for i in range(0, n, batch):
        x = G(z[i : i + batch], None if y is None else y[i : i + batch])
        out.append(models.from_model_range(x, G.output))
    G.train(was_training)
    return torch.cat(out)
