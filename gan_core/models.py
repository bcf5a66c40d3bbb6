"""Generator and discriminator architectures, registered by name.

Every architecture is one of the seed systems, parameterised by ``ModelConfig`` (width, depth,
dropout, latent size and distribution, batch-norm momentum, activations, output) with the
seed's numbers as the defaults, and the image shape taken from the dataset::

    G, D = build(cfg.model, dataset.shape, dataset.num_classes)
    z = sample_latent(64, G.latent_dim, G.latent_dist, torch.Generator().manual_seed(0), "cpu")
    logits = D(G(z))                      # (64,), no sigmoid: the losses work on logits

Conventions shared by all architectures:

- channels-first tensors; G returns (B, C, H, W) in the model range of ``output``
  ([0, 1] for sigmoid and stretched-sigmoid, [-1, 1] for tanh), see ``to_model_range``.
- ``width`` multiplies every channel or unit count (rounded, at least 1).
- ``bn_momentum`` is Keras' (0.9 keeps 90 % of the running mean): torch momentum = 1 - it;
  batch norm uses Keras' eps 1e-3.
- Keras seeds (mlp, dcgan-upsample, dcgan-transpose) use Keras' default init (Glorot-uniform
  weights, zero biases); ``cgan`` uses seed 004's truncated normal with stddev
  2/sqrt(weight size), zero biases; ``dcgan-lite`` (no seed) DCGAN's N(0, 0.02).
  Initialisation draws from torch's global RNG: seed it (``torch.manual_seed``) before ``build``.
- Conditional models take ``y`` as (B, num_classes) float label vectors (one-hot, or mixed /
  fractional for interpolation) or as int64 class indices (B,); unconditional models ignore ``y``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gan_core import seed_nets, user_arch
from gan_core.config import ModelConfig, validate_model
from gan_core.dcgan_lite import build_dcgan_lite
from gan_core.errors import ConfigError
from gan_core.layers import OUTPUT_RANGES, Discriminator, Generator, OutputActivation, Pair, Shape

__all__ = ["ARCHITECTURES", "LATENT_DISTS", "OUTPUT_RANGES", "Discriminator", "Generator", "OutputActivation",
           "Pair", "Shape", "build", "count_params", "estimate_flops", "flops_per_image", "from_model_range",
           "reinitialise", "sample_latent", "spectral_normalise", "to_model_range"]


LATENT_DISTS = ("uniform", "normal")


# ----------------------------------------------------------------------------- building blocks


# ----------------------------------------------------------------------------- the two networks


# ----------------------------------------------------------------------------- architectures


Builder = Callable[[ModelConfig, Shape, int], Pair]

ARCHITECTURES: dict[str, Builder] = {
    "mlp": seed_nets.build_mlp,
    "dcgan-upsample": seed_nets.build_dcgan_upsample,
    "dcgan-transpose": seed_nets.build_dcgan_transpose,
    "cgan": seed_nets.build_cgan,
    "dcgan-lite": build_dcgan_lite,
}


def build(cfg: ModelConfig, shape: Sequence[int], num_classes: int) -> tuple[Generator, Discriminator]:
    """Build (G, D) for ``cfg.arch`` on images of ``shape`` = (C, H, W) from the dataset.

    The model section is checked by ``config.validate_model`` (the one place for its rules, so a
    ModelConfig built in code is refused as YAML would be); here only what the data decides: a
    shape the architecture cannot build is a ConfigError.
    """
    validate_model(cfg)
    if len(shape) != 3 or any(int(s) < 1 for s in shape):
        raise ConfigError(f"data: image shape must be (C, H, W) with positive sizes, got {tuple(shape)}")
    c, h, w = (int(s) for s in shape)
    if ":" in cfg.arch:  # an import path: the user's own (G, D), checked against the contract
        G, D = user_arch.build(cfg, (c, h, w), int(num_classes))
    else:
        G, D = ARCHITECTURES[cfg.arch](cfg, (c, h, w), int(num_classes))
    if cfg.init != "original":
        reinitialise(G, cfg.init)
        reinitialise(D, cfg.init)
    if cfg.spectral_norm in ("g", "both"):
        spectral_normalise(G)
    if cfg.spectral_norm in ("d", "both"):
        spectral_normalise(D)
    return G, D


def reinitialise(module: nn.Module, kind: str) -> None:
    """Replace the architecture's own init of every Linear/Conv layer (``model.init``):
    ``torch`` re-runs the layers' own ``reset_parameters`` (PyTorch's default), ``dcgan`` draws
    N(0, 0.02) weights and zero biases. Norm layers keep theirs. Draws from torch's global RNG."""
    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    for m in module.modules():
        if not isinstance(m, kinds):
            continue
        if kind == "torch":
            m.reset_parameters()
        elif kind == "dcgan":
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        else:
            raise ConfigError(f"model.init: {kind!r} is not one of original, torch, dcgan")


def spectral_normalise(module: nn.Module) -> None:
    """Spectral norm (Miyato et al. 2018) on every Linear/Conv2d/ConvTranspose2d, after init.

    Uses torch's parametrization (weight = original / sigma, one power iteration per training
    forward); its ``original``, ``_u`` and ``_v`` are in the state dict, so a resume is exact.
    The power-iteration vectors start from torch's global RNG, like the init before it.
    """
    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    for m in [m for m in module.modules() if isinstance(m, kinds)]:
        nn.utils.parametrizations.spectral_norm(m)


# ----------------------------------------------------------------------------- latent and pixels


def sample_latent(
    n: int, latent_dim: int, dist: str, generator: torch.Generator, device: torch.device | str = "cpu"
) -> Tensor:
    """(n, latent_dim) noise, uniform in [-1, 1] or standard normal, drawn only from
    ``generator`` (a CPU torch.Generator) and then moved to ``device``, so the same seed gives
    the same noise on every device."""
    if dist == "uniform":
        z = torch.rand(n, latent_dim, generator=generator) * 2.0 - 1.0
    elif dist == "normal":
        z = torch.randn(n, latent_dim, generator=generator)
    else:
        raise ConfigError(f"model.latent_dist: {dist!r} is not one of {', '.join(LATENT_DISTS)}")
    return z.to(device)


def _check_output(output: str) -> None:
    if output not in OUTPUT_RANGES:
        raise ConfigError(f"model.output: {output!r} is not one of {', '.join(OUTPUT_RANGES)}")


def to_model_range(x_uint8: Tensor, output: str) -> Tensor:
    """uint8 images in [0, 255] -> float32 in [0, 1] (sigmoid, stretched-sigmoid) or [-1, 1] (tanh)."""
    _check_output(output)
    x = x_uint8.to(torch.float32)
    if output == "tanh":
        return x / 127.5 - 1.0
    return x / 255.0


def from_model_range(x: Tensor, output: str) -> Tensor:
    """Inverse of ``to_model_range``: rounds and clamps to uint8 (NaN becomes black, 0)."""
    _check_output(output)
    x = torch.nan_to_num(x.detach().to(torch.float32), nan=OUTPUT_RANGES[output][0])
    x = (x + 1.0) * 127.5 if output == "tanh" else x * 255.0
    return x.round().clamp(0, 255).to(torch.uint8)


# ----------------------------------------------------------------------------- size and cost


def count_params(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters (only those with requires_grad unless ``trainable_only=False``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def estimate_flops(module: nn.Module, example_inputs: Tensor | Sequence[Any]) -> int:
    """FLOPs (2 x multiply-adds) of Linear/Conv2d/ConvTranspose2d layers in one forward pass
    of ``module(*example_inputs)``, counted with forward hooks (eval mode, no grad); pass a
    batch of one for a per-image figure. Activations, BN and pooling are not counted."""
    total = 0

    def hook(m: nn.Module, inputs: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Linear):
            macs = out.numel() * m.in_features
        elif isinstance(m, nn.ConvTranspose2d):
            macs = inputs[0].numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size)
        else:
            assert isinstance(m, nn.Conv2d)  # the hook is registered on these three kinds only
            macs = out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)
        total += 2 * macs

    args = (example_inputs,) if isinstance(example_inputs, Tensor) else tuple(example_inputs)
    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, kinds)]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(*args)
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return total


def flops_per_image(G: Generator, D: Discriminator) -> dict[str, int]:
    """Forward FLOPs per image of G and D, and an estimate for one training step per image
    (D phase: G forward + D forward/backward on real and fake; G phase: G and D forward and
    backward; backward ~ 2x forward): ``train_step = 4 g + 9 d``."""
    device = next(G.parameters()).device
    z = torch.zeros(1, G.latent_dim, device=device)
    y = torch.zeros(1, G.num_classes, device=device) if G.conditional else None
    g = estimate_flops(G, (z, y))
    x = torch.zeros(1, *D.shape, device=device)
    d = estimate_flops(D, (x, y))
    return {"g": g, "d": d, "train_step": 4 * g + 9 * d}
