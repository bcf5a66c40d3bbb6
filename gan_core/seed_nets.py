"""The seed systems' networks (000/002 ``dcgan-upsample``, 001 ``mlp``, 003 ``dcgan-transpose``,
004 ``cgan``), each with its seed's numbers as the defaults of ``ModelConfig``; registered by
name in ``gan_core.models``."""

from __future__ import annotations

from torch import nn

from gan_core.config import ModelConfig
from gan_core.errors import ConfigError
from gan_core.layers import (
    Discriminator,
    Generator,
    OutputActivation,
    Pair,
    Shape,
    activation,
    batch_norm_1d,
    batch_norm_2d,
    conv_out_size,
    discriminator_meta,
    dropout_layers,
    generator_meta,
    keras_init,
    require_divisible,
    scaled,
    truncated_normal_init,
    upsample_stages,
)


def build_mlp(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
    """Seed 001: G dense 256, 512, 1024 (doubling; g_depth layers), each LeakyReLU then BN;
    dense to C*H*W. D: flatten, dense 512, 256 (halving; d_depth layers), dense 1."""
    c, h, w = shape
    g_act = lambda: activation(cfg.g_activation, cfg.leaky_slope)  # noqa: E731
    d_act = lambda: activation(cfg.d_activation, cfg.leaky_slope)  # noqa: E731
    g: list[nn.Module] = []
    prev = cfg.latent_dim
    for i in range(cfg.g_depth):
        units = scaled(256 * 2**i, cfg.width)
        g += [nn.Linear(prev, units), g_act(), batch_norm_1d(units, cfg), *dropout_layers(cfg.g_dropout)]
        prev = units
    g += [nn.Linear(prev, c * h * w), nn.Unflatten(1, shape), OutputActivation(cfg.output)]

    d: list[nn.Module] = [nn.Flatten()]
    prev = c * h * w
    for i in range(cfg.d_depth):
        units = scaled(512 / 2**i, cfg.width)
        d += [nn.Linear(prev, units), d_act(), *dropout_layers(cfg.dropout)]
        prev = units
    G = Generator(nn.Sequential(*g), **generator_meta(cfg, "mlp", shape, num_classes, False))
    D = Discriminator(nn.Sequential(*d), nn.Sequential(nn.Linear(prev, 1)),
                      **discriminator_meta("mlp", shape, num_classes, False))
    keras_init(G)
    keras_init(D)
    return G, D


def build_dcgan_upsample(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
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
    g_act = lambda: activation(cfg.g_activation, cfg.leaky_slope)  # noqa: E731
    d_act = lambda: activation(cfg.d_activation, cfg.leaky_slope)  # noqa: E731
    n_up = min(cfg.g_depth, upsample_stages(h, w))
    h0, w0 = h // 2**n_up, w // 2**n_up
    c0 = scaled(256, cfg.width)
    g: list[nn.Module] = [
        nn.Linear(cfg.latent_dim, c0 * h0 * w0), batch_norm_1d(c0 * h0 * w0, cfg), g_act(),
        nn.Unflatten(1, (c0, h0, w0)), *dropout_layers(cfg.g_dropout),
    ]
    prev = c0
    for i in range(cfg.g_depth):
        if i < n_up:
            ch = scaled(64 * 2 ** min(n_up - 1 - i, 1), cfg.width)
            g.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            ch = scaled(32, cfg.width)
        g += [nn.Conv2d(prev, ch, 5, padding=2), batch_norm_2d(ch, cfg), g_act()]
        prev = ch
    g += [nn.Conv2d(prev, c, 5, padding=2), OutputActivation(cfg.output)]

    d: list[nn.Module] = []
    prev, sh, sw = c, h, w
    for i in range(cfg.d_depth):
        ch = scaled(64 * 2**i, cfg.width)
        stride = (2 if sh > 4 else 1, 2 if sw > 4 else 1)
        d += [nn.Conv2d(prev, ch, 5, stride=stride, padding=2), d_act()]
        if i > 0:
            d += dropout_layers(cfg.dropout)
        prev, sh, sw = ch, conv_out_size(sh, stride[0]), conv_out_size(sw, stride[1])
    d.append(nn.Flatten())
    G = Generator(nn.Sequential(*g), **generator_meta(cfg, "dcgan-upsample", shape, num_classes, False))
    D = Discriminator(nn.Sequential(*d), nn.Sequential(nn.Linear(prev * sh * sw, 1)),
                      **discriminator_meta("dcgan-upsample", shape, num_classes, False))
    keras_init(G)
    keras_init(D)
    return G, D


def build_dcgan_transpose(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
    """Seed 003 (Fashion-MNIST).

    G: dense 512 act BN, dense (64, H/4, W/4) act BN, then g_depth transposed convs k5 stride 2
    (each doubles the size exactly): hidden ones act + BN with channels halving to 32, the last
    to C + output activation. With g_depth = k the reshape holds 32 * 2**(k-1) channels at
    H/2**k. D: d_depth convs k5 stride 2 'same' with 32, 64, ... channels + act, dropout,
    flatten, dense 1.
    """
    c, h, w = shape
    k = cfg.g_depth
    require_divisible("dcgan-transpose", shape, 2**k, f"with g_depth={k}")
    g_act = lambda: activation(cfg.g_activation, cfg.leaky_slope)  # noqa: E731
    d_act = lambda: activation(cfg.d_activation, cfg.leaky_slope)  # noqa: E731
    h0, w0 = h // 2**k, w // 2**k
    c0 = scaled(32 * 2 ** (k - 1), cfg.width)
    hidden = scaled(512, cfg.width)
    g: list[nn.Module] = [
        nn.Linear(cfg.latent_dim, hidden), g_act(), batch_norm_1d(hidden, cfg),
        nn.Linear(hidden, c0 * h0 * w0), g_act(), batch_norm_1d(c0 * h0 * w0, cfg),
        nn.Unflatten(1, (c0, h0, w0)), *dropout_layers(cfg.g_dropout),
    ]
    prev = c0
    for i in range(k - 1):
        ch = scaled(32 * 2 ** (k - 2 - i), cfg.width)
        g += [nn.ConvTranspose2d(prev, ch, 5, stride=2, padding=2, output_padding=1), g_act(),
              batch_norm_2d(ch, cfg)]
        prev = ch
    g += [nn.ConvTranspose2d(prev, c, 5, stride=2, padding=2, output_padding=1),
          OutputActivation(cfg.output)]

    d: list[nn.Module] = []
    prev, sh, sw = c, h, w
    for i in range(cfg.d_depth):
        ch = scaled(32 * 2**i, cfg.width)
        d += [nn.Conv2d(prev, ch, 5, stride=2, padding=2), d_act()]
        prev, sh, sw = ch, conv_out_size(sh, 2), conv_out_size(sw, 2)
    d += [*dropout_layers(cfg.dropout), nn.Flatten()]
    G = Generator(nn.Sequential(*g), **generator_meta(cfg, "dcgan-transpose", shape, num_classes, False))
    D = Discriminator(nn.Sequential(*d), nn.Sequential(nn.Linear(prev * sh * sw, 1)),
                      **discriminator_meta("dcgan-transpose", shape, num_classes, False))
    keras_init(G)
    keras_init(D)
    return G, D


def build_cgan(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
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
    require_divisible("cgan", shape, 4, "(one stride-4 transposed conv)")
    g_act = lambda: activation(cfg.g_activation, cfg.leaky_slope)  # noqa: E731
    d_act = lambda: activation(cfg.d_activation, cfg.leaky_slope)  # noqa: E731
    c0, c1 = scaled(64, cfg.width), scaled(32, cfg.width)
    g: list[nn.Module] = [
        nn.Linear(num_classes + cfg.latent_dim, c0 * (h // 4) * (w // 4)), g_act(),
        nn.Unflatten(1, (c0, h // 4, w // 4)), *dropout_layers(cfg.g_dropout),
        nn.ConvTranspose2d(c0, c1, 5, stride=4, padding=1, output_padding=1), g_act(),
    ]
    for _ in range(cfg.g_depth - 1):
        g += [nn.ConvTranspose2d(c1, c1, 5, stride=1, padding=2), g_act()]
    g += [nn.ConvTranspose2d(c1, c, 3, stride=1, padding=1), OutputActivation(cfg.output)]

    d: list[nn.Module] = []
    prev, sh, sw = c, h, w
    for i in range(cfg.d_depth):
        ch = scaled(32 * 2**i, cfg.width)
        d += [nn.Conv2d(prev, ch, 5, padding=2), d_act(), nn.MaxPool2d(2, ceil_mode=True)]
        prev, sh, sw = ch, conv_out_size(sh, 2), conv_out_size(sw, 2)
    d.append(nn.Flatten())
    fc = scaled(1024, cfg.width)
    head = nn.Sequential(nn.Linear(prev * sh * sw + num_classes, fc), d_act(), *dropout_layers(cfg.dropout),
                         nn.Linear(fc, 1))
    G = Generator(nn.Sequential(*g), **generator_meta(cfg, "cgan", shape, num_classes, True))
    D = Discriminator(nn.Sequential(*d), head, **discriminator_meta("cgan", shape, num_classes, True))
    truncated_normal_init(G)
    truncated_normal_init(D)
    return G, D


