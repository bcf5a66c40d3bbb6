"""``dcgan-lite``: a DCGAN sized for CPUs and wide searches (28x28 grey, 64x64 RGB, any size).

On a CPU a convolution costs far more per image than a dense layer of the same arithmetic, and
its cost grows with the pixels it computes at. So this network does its work at low resolution
and keeps the full-resolution layers thin (G at width 1 on 28x28: 64 channels at 7x7, 32 at
14x14, 16 at 28x28; about 7 MFLOP per image forward)::

    G: z -> linear (C0, H0, W0) + norm + act, g_depth - 1 convs k3 at H0 x W0, then stages
       that double the size, each a transposed conv k4 s2 (``upsample: transpose``: computes
       at the input size, the cheapest) or 2x nearest/bilinear upsampling + conv k3, channels
       halving, + norm + act; conv k3 to C channels + the output activation.
    D: d_depth convs halving the size (k4 s2 p1, k3 on odd sizes, so ceil(n/2); k3 s1 once the
       size is 4 or less), each with G's channel count at the size it outputs (doubling: 28px
       32, 64, 128; 64px 16, 32, 64, 128), norm (not on the first, as in DCGAN), LeakyReLU;
       flatten, dropout, linear to 1 logit.

H0 x W0 is the image halved while it stays divisible and at least 7 pixels (28 -> 7, 64 -> 8,
32 -> 8). Options for when D wins outright, all off by default: ``model.g_min_channels`` (no G
stage narrower: 64 px RGB at width 0.5 ends in 4 channels, fewer than the 6 that drawing a
stroke as the inverse of any background colour takes), ``model.d_width`` (D's own width),
``model.mbstd_group`` (minibatch standard deviation, one channel before the head) and
``model.d_multiscale`` (every later D stage also sees the image average-pooled to its size).
These, ``model.g_norm`` (batch | none | instance | layer), ``model.d_norm`` (none | batch |
layer) and ``model.upsample`` belong to this architecture alone; ``width``, ``g_depth``,
``d_depth``, ``dropout``, ``g_activation``, ``d_activation``, ``leaky_slope``, ``bn_momentum``
and ``output`` mean what they mean elsewhere. Convolutions run in channels_last memory format
(converted inside the modules, so callers pass and get ordinary tensors), norms and activations of
fewer than 8 channels in the default layout (``_norm_act``); layers followed by a norm have no
bias; activations are in place.

Defaults from quick checks (mnist-dcgan-lite, 96k images at batch 64, one seed each, cfd of
2,000 samples): batch norm in D (``d_norm: batch``) 16.6 against 35-39 in five runs without a
norm in D (D sat at chance, loss 2 ln 2, and G drew broken strokes); DCGAN's N(0, 0.02) init 16.6
against 24.3 with the Keras seeds' Glorot-uniform (ahead at 32k and 64k images too). The thin
full-resolution layer earns its cost: ending G with a transposed conv straight to the image (as
DCGAN does) made a step 1.4x faster but reached only 30.3, and 18.1 with twice the channels at
half the speed. channels_last: +10-30 % images/s at 28 and 64 px (widths 0.25-1). For
``wgan-gp`` prefer ``d_norm: layer`` or ``none``: batch norm mixes the per-image gradients the
penalty is about.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_core.config import ModelConfig
from gan_core.layers import (
    Discriminator,
    Generator,
    OutputActivation,
    Pair,
    Shape,
    batch_norm_2d,
    discriminator_meta,
    dropout_layers,
    generator_meta,
    scaled,
    upsample_stages,
)

ARCH = "dcgan-lite"
G_BASE = 64  # G channels at the lowest resolution, at width 1; halved at every doubling
NHWC_MIN_CHANNELS = 8  # narrower tensors are normalised in NCHW (_norm_act)


class ChannelsLast(nn.Module):
    """Puts a 4-d activation in channels_last (NHWC) memory, which oneDNN's CPU convolutions
    run without reordering; the tensor's shape and values are unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last)


class Contiguous(nn.Module):
    """Back to the default layout, so code that ``view``s G's images keeps working."""

    def forward(self, x: Tensor) -> Tensor:
        return x.contiguous()


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, as in StyleGAN2): one extra channel
    holding the standard deviation of each feature over a group of ``group`` images, averaged
    over features and pixels, so D can see a batch that lacks variety. A batch not divisible
    by the group (a single image, when FLOPs are counted) is one group per image (std 0)."""

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group, n) if n % min(self.group, n) == 0 else 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (n / g, c, h, w)
        y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # (n, 1, h, w)
        return torch.cat([x, y.to(memory_format=torch.channels_last)], dim=1)

    def extra_repr(self) -> str:
        return f"group={self.group}"


class MultiScaleStages(nn.Module):
    """D's convolution stages, each after the first also given the image average-pooled to its
    input size (``model.d_multiscale``; the skip discriminator of StyleGAN2 and MSG-GAN's
    idea): D compares colours and shapes at every scale directly, and G gets a smooth gradient
    at each of them, not only what survives the strided convolutions."""

    def __init__(self, stages: list[nn.Sequential]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stages[0](x)
        for stage in self.stages[1:]:
            small = nn.functional.adaptive_avg_pool2d(x, h.shape[-2:])
            h = stage(torch.cat([h, small], dim=1))
        return h


def _norm(kind: str, n: int, cfg: ModelConfig) -> list[nn.Module]:
    """A per-channel norm for (B, n, H, W): batch (Keras eps and momentum, as elsewhere),
    instance (affine), layer (GroupNorm with one group: over C, H and W), or none."""
    if kind == "batch":
        return [batch_norm_2d(n, cfg)]
    if kind == "instance":
        return [nn.InstanceNorm2d(n, affine=True)]
    if kind == "layer":
        return [nn.GroupNorm(1, n)]
    return []


def _act(kind: str, slope: float) -> nn.Module:
    """In-place activation: every layer before it (linear, conv, norm) keeps what its backward
    needs elsewhere, so overwriting its output saves a tensor per layer."""
    return nn.ReLU(inplace=True) if kind == "relu" else nn.LeakyReLU(slope, inplace=True)


def _to_nchw(_module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return (args[0].contiguous(), *args[1:])


def _to_nhwc(_module: nn.Module, _args: tuple[Tensor, ...], out: Tensor) -> Tensor:
    return out.contiguous(memory_format=torch.channels_last)


def _norm_act(norm: list[nn.Module], n: int, act: nn.Module) -> list[nn.Module]:
    """Norm and activation of an n-channel conv output. Below NHWC_MIN_CHANNELS they run in
    NCHW and the tensor goes back to NHWC for the next conv: PyTorch's channels_last batch norm
    vectorises over channels, so with 4 of them it ran 5x slower than the NCHW kernel, while the
    convolutions stay faster in NHWC (G's last stage with 4 channels: 1.23-1.27x fwd+bwd at 28
    and 64 px, measured side by side; with 8 channels NHWC throughout is faster). Hooks, not
    layers, switch the layout, so the Sequential's indices and the saved runs' keys stay."""
    if norm and n < NHWC_MIN_CHANNELS:
        norm[0].register_forward_pre_hook(_to_nchw)
        act.register_forward_hook(_to_nhwc)
    return [*norm, act]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's init (Radford et al.): weights N(0, 0.02), norm scales N(1, 0.02), biases 0.

    The DCGAN recipe this architecture follows was tuned with it, and it trained better here
    than Glorot-uniform (module docstring)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_dcgan_lite(cfg: ModelConfig, shape: Shape, num_classes: int) -> Pair:
    """(G, D) of ``dcgan-lite`` for images of ``shape``; see the module docstring."""
    g_norm, d_norm, upsample = cfg.g_norm, cfg.d_norm, cfg.upsample  # checked by config.validate_model
    c, h, w = shape
    n_up = upsample_stages(h, w)
    h0, w0 = h // 2**n_up, w // 2**n_up
    g_bias = g_norm == "none"
    c0 = scaled(G_BASE, cfg.width)
    g: list[nn.Module] = [
        nn.Linear(cfg.latent_dim, c0 * h0 * w0, bias=g_bias), nn.Unflatten(1, (c0, h0, w0)),
        ChannelsLast(), *_norm_act(_norm(g_norm, c0, cfg), c0, _act(cfg.g_activation, cfg.leaky_slope)),
    ]
    for _ in range(cfg.g_depth - 1):
        g += [nn.Conv2d(c0, c0, 3, padding=1, bias=g_bias),
              *_norm_act(_norm(g_norm, c0, cfg), c0, _act(cfg.g_activation, cfg.leaky_slope))]
    prev = c0
    for i in range(n_up):
        ch = max(scaled(G_BASE / 2 ** (i + 1), cfg.width), cfg.g_min_channels)
        if upsample == "transpose":
            g.append(nn.ConvTranspose2d(prev, ch, 4, stride=2, padding=1, bias=g_bias))
        else:
            g += [nn.Upsample(scale_factor=2, mode=upsample),
                  nn.Conv2d(prev, ch, 3, padding=1, bias=g_bias)]
        g += _norm_act(_norm(g_norm, ch, cfg), ch, _act(cfg.g_activation, cfg.leaky_slope))
        prev = ch
    g += [nn.Conv2d(prev, c, 3, padding=1), Contiguous(), OutputActivation(cfg.output)]

    d_width = cfg.d_width if cfg.d_width is not None else cfg.width
    stages: list[nn.Sequential] = []
    prev, sh, sw = c, h, w
    for i in range(cfg.d_depth):
        ch = scaled(G_BASE * 2 ** (i + 1 - n_up), d_width)  # G's channel count at this size
        # Halve while the side is > 4: k4 s2 p1 gives n/2 on even sides, k3 s2 p1 ceil(n/2) on
        # odd ones; at 4 pixels or less a k3 s1 p1 conv keeps the size.
        kernel = (3 if sh <= 4 or sh % 2 else 4, 3 if sw <= 4 or sw % 2 else 4)
        stride = (2 if sh > 4 else 1, 2 if sw > 4 else 1)
        norm = _norm(d_norm, ch, cfg) if i > 0 else []
        c_in = prev + (c if cfg.d_multiscale and i > 0 else 0)
        stages.append(nn.Sequential(
            nn.Conv2d(c_in, ch, kernel, stride=stride, padding=1, bias=not norm),
            *_norm_act(norm, ch, _act(cfg.d_activation, cfg.leaky_slope))))
        prev, sh, sw = ch, -(-sh // stride[0]), -(-sw // stride[1])
    d: list[nn.Module] = [ChannelsLast()]
    # Without the multi-scale input the stages stay one flat Sequential, as saved runs have it.
    d += [MultiScaleStages(stages)] if cfg.d_multiscale else [layer for stage in stages for layer in stage]
    if cfg.mbstd_group > 0:
        d.append(MinibatchStd(cfg.mbstd_group))
        prev += 1
    d += [nn.Flatten(), *dropout_layers(cfg.dropout)]
    G = Generator(nn.Sequential(*g), **generator_meta(cfg, ARCH, shape, num_classes, False))
    D = Discriminator(nn.Sequential(*d), nn.Sequential(nn.Linear(prev * sh * sw, 1)),
                      **discriminator_meta(ARCH, shape, num_classes, False))
    dcgan_init(G)
    dcgan_init(D)
    return G, D
