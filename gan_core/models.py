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

from gan_core.config import ModelConfig, validate_model
from gan_core.errors import ConfigError

Shape = tuple[int, int, int]
Pair = tuple["Generator", "Discriminator"]

OUTPUT_RANGES: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "stretched-sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
}
LATENT_DISTS = ("uniform", "normal")
KERAS_BN_EPS = 1e-3


# ----------------------------------------------------------------------------- building blocks


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


def _w(n: float, width: float) -> int:
    """A seed's unit or channel count scaled by ``width`` (rounded, at least 1)."""
    return max(1, int(round(n * width)))


def _act(kind: str, slope: float) -> nn.Module:
    if kind == "relu":
        return nn.ReLU()
    if kind == "leaky_relu":
        return nn.LeakyReLU(slope)
    raise ConfigError(f"model activation: {kind!r} is not one of relu, leaky_relu")


def _bn1d(n: int, cfg: ModelConfig) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(n, eps=KERAS_BN_EPS, momentum=1.0 - cfg.bn_momentum)


def _bn2d(n: int, cfg: ModelConfig) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(n, eps=KERAS_BN_EPS, momentum=1.0 - cfg.bn_momentum)


def _dropout(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []


def _conv_out(n: int, stride: int) -> int:
    """Spatial size after a 'same'-padded convolution or ceil-mode pooling: ceil(n / stride)."""
    return -(-n // stride)


def _keras_init(module: nn.Module) -> None:
    """Keras' defaults: Glorot-uniform kernels, zero biases (BN keeps gamma=1, beta=0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _truncated_normal_init(module: nn.Module) -> None:
    """The conditional seed system's (004) "He et al." init: truncated normal, stddev 2/sqrt(number of weights)
    (truncated at 2 stddev like tf.truncated_normal), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            std = 2.0 / math.sqrt(m.weight.numel())
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _label_vectors(y: Tensor | None, num_classes: int, like: Tensor) -> Tensor:
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


# ----------------------------------------------------------------------------- the two networks


class Generator(nn.Module):
    """z (B, latent_dim) [+ labels y] -> images (B, C, H, W) in the model range of ``output``.

    Conditional generators see ``cat(y, z)`` (seed 004's order)."""

    def __init__(
        self,
        net: nn.Sequential,
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
            z = torch.cat([_label_vectors(y, self.num_classes, z), z], dim=1)
        return self.net(z)


class Discriminator(nn.Module):
    """Images (B, C, H, W) [+ labels y] -> logits (B,). No sigmoid: losses take logits.

    ``features`` ends in a flatten; conditional discriminators concatenate ``y`` to the
    features before ``head`` (seed 004 injects the label at the first dense layer)."""

    def __init__(
        self,
        features: nn.Sequential,
        head: nn.Sequential,
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
            h = torch.cat([h, _label_vectors(y, self.num_classes, h)], dim=1)
        return self.head(h)[:, 0]


# ----------------------------------------------------------------------------- architectures


def _meta(arch: str, shape: Shape, num_classes: int, conditional: bool) -> dict[str, Any]:
    return dict(arch=arch, shape=shape, num_classes=num_classes if conditional else 0,
                conditional=conditional)


def _g_meta(cfg: ModelConfig, arch: str, shape: Shape, num_classes: int, conditional: bool) -> dict[str, Any]:
    return dict(_meta(arch, shape, num_classes, conditional), latent_dim=cfg.latent_dim,
                latent_dist=cfg.latent_dist, output=cfg.output)


def _build_mlp(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
    """Seed 001: G dense 256, 512, 1024 (doubling; g_depth layers), each LeakyReLU then BN;
    dense to C*H*W. D: flatten, dense 512, 256 (halving; d_depth layers), dense 1."""
    c, h, w = shape
    g_act = lambda: _act(cfg.g_activation, cfg.leaky_slope)  # noqa: E731
    d_act = lambda: _act(cfg.d_activation, cfg.leaky_slope)  # noqa: E731
    g: list[nn.Module] = []
    prev = cfg.latent_dim
    for i in range(cfg.g_depth):
        units = _w(256 * 2**i, cfg.width)
        g += [nn.Linear(prev, units), g_act(), _bn1d(units, cfg), *_dropout(cfg.g_dropout)]
        prev = units
    g += [nn.Linear(prev, c * h * w), nn.Unflatten(1, shape), OutputActivation(cfg.output)]

    d: list[nn.Module] = [nn.Flatten()]
    prev = c * h * w
    for i in range(cfg.d_depth):
        units = _w(512 / 2**i, cfg.width)
        d += [nn.Linear(prev, units), d_act(), *_dropout(cfg.dropout)]
        prev = units
    G = Generator(nn.Sequential(*g), **_g_meta(cfg, "mlp", shape, num_classes, False))
    D = Discriminator(nn.Sequential(*d), nn.Sequential(nn.Linear(prev, 1)),
                      **_meta("mlp", shape, num_classes, False))
    _keras_init(G)
    _keras_init(D)
    return G, D


def _upsample_stages(h: int, w: int) -> int:
    """Largest n with H and W divisible by 2**n and at least 7 pixels left (28 -> 2, 64 -> 3)."""
    n = 0
    while all(s % 2 ** (n + 1) == 0 and s // 2 ** (n + 1) >= 7 for s in (h, w)):
        n += 1
    return n


def _build_dcgan_upsample(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
    """Seed 002 (28x28x1) and seed 000 (64x64x3).

    G: dense to (256, H/2**n, W/2**n) + BN + act, dropout, then n = min(g_depth, the most
    halvings that leave >= 7 pixels) stages of nearest 2x upsampling + conv k5 + BN + act with
    128 channels except 64 in the last stage (28px: 128, 64; 64px: 128, 128, 64), then
    g_depth - n refinement convs of 32 channels, then conv k5 to C + output activation.
    D: d_depth convs k5 'same' with 64, 128, 256, 512 ... channels, stride 2 while the
    spatial size is > 4 (28: 14, 7, 4, 4; 64: 32, 16, 8, 4), act, dropout after all but the
    first; flatten, dense 1.
    """
    c, h, w = shape
    g_act = lambda: _act(cfg.g_activation, cfg.leaky_slope)  # noqa: E731
    d_act = lambda: _act(cfg.d_activation, cfg.leaky_slope)  # noqa: E731
    n_up = min(cfg.g_depth, _upsample_stages(h, w))
    h0, w0 = h // 2**n_up, w // 2**n_up
    c0 = _w(256, cfg.width)
    g: list[nn.Module] = [
        nn.Linear(cfg.latent_dim, c0 * h0 * w0), _bn1d(c0 * h0 * w0, cfg), g_act(),
        nn.Unflatten(1, (c0, h0, w0)), *_dropout(cfg.g_dropout),
    ]
    prev = c0
    for i in range(cfg.g_depth):
        if i < n_up:
            ch = _w(64 * 2 ** min(n_up - 1 - i, 1), cfg.width)
            g.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            ch = _w(32, cfg.width)
        g += [nn.Conv2d(prev, ch, 5, padding=2), _bn2d(ch, cfg), g_act()]
        prev = ch
    g += [nn.Conv2d(prev, c, 5, padding=2), OutputActivation(cfg.output)]

    d: list[nn.Module] = []
    prev, sh, sw = c, h, w
    for i in range(cfg.d_depth):
        ch = _w(64 * 2**i, cfg.width)
        stride = (2 if sh > 4 else 1, 2 if sw > 4 else 1)
        d += [nn.Conv2d(prev, ch, 5, stride=stride, padding=2), d_act()]
        if i > 0:
            d += _dropout(cfg.dropout)
        prev, sh, sw = ch, _conv_out(sh, stride[0]), _conv_out(sw, stride[1])
    d.append(nn.Flatten())
    G = Generator(nn.Sequential(*g), **_g_meta(cfg, "dcgan-upsample", shape, num_classes, False))
    D = Discriminator(nn.Sequential(*d), nn.Sequential(nn.Linear(prev * sh * sw, 1)),
                      **_meta("dcgan-upsample", shape, num_classes, False))
    _keras_init(G)
    _keras_init(D)
    return G, D


def _require_divisible(arch: str, shape: Shape, factor: int, why: str) -> None:
    _, h, w = shape
    if h % factor or w % factor:
        raise ConfigError(
            f"model.arch: {arch} {why} needs image height and width divisible by {factor}, "
            f"got {h}x{w} (choose another arch or depth)"
        )


def _build_dcgan_transpose(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
    """Seed 003 (Fashion-MNIST).

    G: dense 512 act BN, dense (64, H/4, W/4) act BN, then g_depth transposed convs k5 stride 2
    (each doubles the size exactly): hidden ones act + BN with channels halving to 32, the last
    to C + output activation. With g_depth = k the reshape holds 32 * 2**(k-1) channels at
    H/2**k. D: d_depth convs k5 stride 2 'same' with 32, 64, ... channels + act, dropout,
    flatten, dense 1.
    """
    c, h, w = shape
    k = cfg.g_depth
    _require_divisible("dcgan-transpose", shape, 2**k, f"with g_depth={k}")
    g_act = lambda: _act(cfg.g_activation, cfg.leaky_slope)  # noqa: E731
    d_act = lambda: _act(cfg.d_activation, cfg.leaky_slope)  # noqa: E731
    h0, w0 = h // 2**k, w // 2**k
    c0 = _w(32 * 2 ** (k - 1), cfg.width)
    hidden = _w(512, cfg.width)
    g: list[nn.Module] = [
        nn.Linear(cfg.latent_dim, hidden), g_act(), _bn1d(hidden, cfg),
        nn.Linear(hidden, c0 * h0 * w0), g_act(), _bn1d(c0 * h0 * w0, cfg),
        nn.Unflatten(1, (c0, h0, w0)), *_dropout(cfg.g_dropout),
    ]
    prev = c0
    for i in range(k - 1):
        ch = _w(32 * 2 ** (k - 2 - i), cfg.width)
        g += [nn.ConvTranspose2d(prev, ch, 5, stride=2, padding=2, output_padding=1), g_act(),
              _bn2d(ch, cfg)]
        prev = ch
    g += [nn.ConvTranspose2d(prev, c, 5, stride=2, padding=2, output_padding=1),
          OutputActivation(cfg.output)]

    d: list[nn.Module] = []
    prev, sh, sw = c, h, w
    for i in range(cfg.d_depth):
        ch = _w(32 * 2**i, cfg.width)
        d += [nn.Conv2d(prev, ch, 5, stride=2, padding=2), d_act()]
        prev, sh, sw = ch, _conv_out(sh, 2), _conv_out(sw, 2)
    d += [*_dropout(cfg.dropout), nn.Flatten()]
    G = Generator(nn.Sequential(*g), **_g_meta(cfg, "dcgan-transpose", shape, num_classes, False))
    D = Discriminator(nn.Sequential(*d), nn.Sequential(nn.Linear(prev * sh * sw, 1)),
                      **_meta("dcgan-transpose", shape, num_classes, False))
    _keras_init(G)
    _keras_init(D)
    return G, D


def _build_cgan(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
    """Seed 004, conditional on the label vector.

    G: cat(y, z) -> dense (64, H/4, W/4) act, transposed conv 32 k5 stride 4 act, then
    g_depth - 1 transposed convs 32 k5 stride 1 act, transposed conv C k3 + stretched-sigmoid
    (by default). D: d_depth blocks of conv k5 'same' (32, 64, ... channels) act + 2x2 max-pool,
    flatten, cat(features, y), dense 1024 act, dropout, dense 1.
    """
    if num_classes <= 0:
        raise ConfigError(
            "model.arch: cgan needs a labelled dataset (data.name mnist, fashion, color-mnist or a "
            "csv:PATH with a label column); this one has no labels"
        )
    c, h, w = shape
    _require_divisible("cgan", shape, 4, "(one stride-4 transposed conv)")
    g_act = lambda: _act(cfg.g_activation, cfg.leaky_slope)  # noqa: E731
    d_act = lambda: _act(cfg.d_activation, cfg.leaky_slope)  # noqa: E731
    c0, c1 = _w(64, cfg.width), _w(32, cfg.width)
    g: list[nn.Module] = [
        nn.Linear(num_classes + cfg.latent_dim, c0 * (h // 4) * (w // 4)), g_act(),
        nn.Unflatten(1, (c0, h // 4, w // 4)), *_dropout(cfg.g_dropout),
        nn.ConvTranspose2d(c0, c1, 5, stride=4, padding=1, output_padding=1), g_act(),
    ]
    for _ in range(cfg.g_depth - 1):
        g += [nn.ConvTranspose2d(c1, c1, 5, stride=1, padding=2), g_act()]
    g += [nn.ConvTranspose2d(c1, c, 3, stride=1, padding=1), OutputActivation(cfg.output)]

    d: list[nn.Module] = []
    prev, sh, sw = c, h, w
    for i in range(cfg.d_depth):
        ch = _w(32 * 2**i, cfg.width)
        d += [nn.Conv2d(prev, ch, 5, padding=2), d_act(), nn.MaxPool2d(2, ceil_mode=True)]
        prev, sh, sw = ch, _conv_out(sh, 2), _conv_out(sw, 2)
    d.append(nn.Flatten())
    fc = _w(1024, cfg.width)
    head = nn.Sequential(nn.Linear(prev * sh * sw + num_classes, fc), d_act(), *_dropout(cfg.dropout),
                         nn.Linear(fc, 1))
    G = Generator(nn.Sequential(*g), **_g_meta(cfg, "cgan", shape, num_classes, True))
    D = Discriminator(nn.Sequential(*d), head, **_meta("cgan", shape, num_classes, True))
    _truncated_normal_init(G)
    _truncated_normal_init(D)
    return G, D


def _build_dcgan_lite(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
    """A DCGAN sized for CPUs and wide searches; it lives in ``gan_core.dcgan_lite`` (imported
    here, not at the top: it builds on this module's blocks)."""
    from gan_core.dcgan_lite import build_dcgan_lite

    return build_dcgan_lite(cfg, shape, num_classes)


Builder = Callable[[ModelConfig, Shape, int], Pair]

ARCHITECTURES: dict[str, Builder] = {
    "mlp": _build_mlp,
    "dcgan-upsample": _build_dcgan_upsample,
    "dcgan-transpose": _build_dcgan_transpose,
    "cgan": _build_cgan,
    "dcgan-lite": _build_dcgan_lite,
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
