"""gan_core.models and gan_core.losses: every architecture x loss trains a step on CPU at tiny
width; the default (width 1) networks have exactly the seeds' parameter counts."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from gan_core import losses, models
from gan_core.config import ModelConfig
from gan_core.errors import ConfigError

MNIST = (1, 28, 28)
COLOR = (3, 64, 64)
TINY = dict(width=0.125)

# The seeds' hyperparameters in this package's conventions (what the presets hold).
SEED_CONFIGS = {
    "001": ModelConfig(arch="mlp", latent_dist="normal", g_depth=3, d_depth=2, dropout=0.0,
                       g_dropout=0.0, bn_momentum=0.8, leaky_slope=0.2, output="tanh"),
    "002": ModelConfig(),
    "000": ModelConfig(g_depth=4, g_activation="relu"),
    "003": ModelConfig(arch="dcgan-transpose", g_depth=2, d_depth=2, g_dropout=0.0,
                       bn_momentum=0.99, g_activation="relu", leaky_slope=0.2, output="tanh"),
    "004": ModelConfig(arch="cgan", latent_dim=2, latent_dist="normal", g_depth=1, d_depth=2,
                       dropout=0.5, g_dropout=0.0, g_activation="relu", d_activation="relu",
                       output="stretched-sigmoid"),
}
# dcgan-lite is no seed: its preset's model (mnist-dcgan-lite.yaml).
LITE = ModelConfig(arch="dcgan-lite", latent_dist="normal", g_depth=1, d_depth=2, dropout=0.0,
                   g_dropout=0.0, g_activation="relu", leaky_slope=0.2, output="tanh")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These networks are tiny: on a shared 2-core machine thread hand-offs cost more than the
    maths (10x here). Restored afterwards; library code never sets it."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(arch: str, **kw) -> ModelConfig:
    base = next(c for c in [*SEED_CONFIGS.values(), LITE] if c.arch == arch)
    return dataclasses.replace(base, **{**TINY, **kw})


def _inputs(G: models.Generator, n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    z = models.sample_latent(n, G.latent_dim, G.latent_dist, gen, "cpu")
    y = nn.functional.one_hot(torch.arange(n) % 10, 10).float() if G.conditional else None
    return z, y


def _snapshot(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in m.named_parameters()}


def _unchanged(before: dict[str, torch.Tensor], m: nn.Module) -> list[str]:
    return [k for k, p in m.named_parameters() if torch.equal(before[k], p.detach())]


CASES = [(arch, MNIST) for arch in models.ARCHITECTURES] + [("dcgan-upsample", COLOR), ("dcgan-lite", COLOR)]


@pytest.mark.parametrize("loss_name", list(losses.LOSSES))
@pytest.mark.parametrize(("arch", "shape"), CASES, ids=[f"{a}-{s[1]}px" for a, s in CASES])
def test_every_arch_and_loss_trains_one_step(arch, shape, loss_name):
    torch.manual_seed(0)
    num_classes = 10 if arch == "cgan" else 0
    G, D = models.build(_cfg(arch), shape, num_classes)
    loss = losses.LOSSES[loss_name]
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-2)
    n = 6
    real = models.to_model_range(torch.randint(0, 256, (n, *shape), dtype=torch.uint8), G.output)
    z, y = _inputs(G, n)

    fake = G(z, y)
    assert fake.shape == (n, *shape)
    lo, hi = models.OUTPUT_RANGES[G.output]
    assert fake.min() >= lo and fake.max() <= hi

    g_before, d_before = _snapshot(G), _snapshot(D)
    d_real, d_fake = D(real, y), D(fake.detach(), y)
    assert d_real.shape == (n,) and d_fake.shape == (n,)
    loss_d = loss.d_loss(d_real, d_fake)
    if loss.needs_gp:
        gen = torch.Generator().manual_seed(1)
        loss_d = loss_d + 10.0 * losses.gradient_penalty(D, real, fake, y, generator=gen)
    assert loss_d.ndim == 0 and torch.isfinite(loss_d)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    # Every D tensor moves, except the last bias where the loss is blind to a constant shift
    # of the logits (wgan-gp: E fake - E real; hinge with every margin active).
    last_bias = [k for k, _ in D.named_parameters()][-1]
    expected = [last_bias] if loss_name in ("wgan-gp", "hinge") else []
    assert _unchanged(d_before, D) in ([], expected)
    assert _unchanged(g_before, G) == list(g_before)  # G untouched by the D step

    d_before = _snapshot(D)
    loss_g = loss.g_loss(D(G(z, y), y))
    assert loss_g.ndim == 0 and torch.isfinite(loss_g)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    assert _unchanged(g_before, G) == []  # every G tensor moved
    assert _unchanged(d_before, D) == list(d_before)

    acc_real, acc_fake = losses.discriminator_accuracy(d_real, d_fake)
    assert 0.0 <= float(acc_real) <= 1.0 and 0.0 <= float(acc_fake) <= 1.0


# ----------------------------------------------------------------------------- seeds reproduced


def _totals(m: nn.Module) -> tuple[int, int]:
    """(trainable, Keras-style total = trainable + BN running mean/variance)."""
    running = sum(b.numel() for k, b in m.named_buffers() if k.endswith(("running_mean", "running_var")))
    return models.count_params(m), models.count_params(m) + running


def test_seed002_dcgan_upsample_matches_keras_summary():
    G, D = models.build(ModelConfig(), MNIST, 0)
    assert _totals(G) == (2_368_705, 2_394_241)
    assert _totals(D) == (4_311_553, 4_311_553)
    # D's spatial sizes 14, 7, 4, 4 -> flatten 4*4*512.
    assert D.head[0].in_features == 4 * 4 * 512


def test_seed001_mlp_matches_keras_summary():
    G, D = models.build(SEED_CONFIGS["001"], MNIST, 10)
    assert _totals(G) == (1_489_936, 1_493_520)
    assert _totals(D) == (533_505, 533_505)


def test_seed000_dcgan_upsample_at_64px_matches_its_layers():
    # Seed 000 prints no summary; these are its layers' Keras counts summed by hand.
    G, D = models.build(SEED_CONFIGS["000"], COLOR, 10)
    assert models.count_params(G) == 3_175_811
    assert models.count_params(D) == 4_314_753
    convs = [m.out_channels for m in G.net if isinstance(m, nn.Conv2d)]
    assert convs == [128, 128, 64, 32, 3]


def test_seed003_and_seed004_match_their_layers():
    G, D = models.build(SEED_CONFIGS["003"], MNIST, 10)
    assert (models.count_params(G), models.count_params(D)) == (1_719_873, 55_233)
    # Seed 004's TF variables: G 12*3136+3136, 5*5*32*64+32, 3*3*1*32+1; D 832, 51264,
    # (3136+10)*1024+1024, 1025.
    G, D = models.build(SEED_CONFIGS["004"], MNIST, 10)
    assert (models.count_params(G), models.count_params(D)) == (92_289, 3_275_649)


def test_width_scales_channels_with_a_floor_of_one():
    G, _ = models.build(ModelConfig(width=0.5), MNIST, 0)
    assert [m.out_channels for m in G.net if isinstance(m, nn.Conv2d)] == [64, 32, 16, 1]
    G, D = models.build(ModelConfig(width=0.001), MNIST, 0)
    assert all(m.out_channels == 1 for m in D.features if isinstance(m, nn.Conv2d))
    assert G(*_inputs(G, 2)).shape == (2, *MNIST)


# ----------------------------------------------------------------------------- shapes and errors


@pytest.mark.parametrize(
    ("arch", "shape", "depth"),
    [
        ("dcgan-upsample", (1, 32, 32), {}),
        ("dcgan-upsample", (3, 28, 28), {"g_depth": 1, "d_depth": 5}),
        ("dcgan-upsample", (1, 24, 40), {}),
        ("mlp", (3, 64, 64), {"g_depth": 1, "d_depth": 3}),
        ("dcgan-transpose", (3, 64, 64), {"g_depth": 3, "d_depth": 4}),
        ("dcgan-transpose", (1, 32, 32), {}),
        ("cgan", (3, 64, 64), {"g_depth": 2, "d_depth": 3}),
        ("cgan", (1, 36, 36), {}),
    ],
)
def test_shapes_come_from_the_dataset(arch, shape, depth):
    G, D = models.build(_cfg(arch, **depth), shape, 10)
    assert G.shape == shape and D.shape == shape
    z, y = _inputs(G, 3)
    x = G(z, y)
    assert x.shape == (3, *shape)
    assert D(x, y).shape == (3,)


@pytest.mark.parametrize(("arch", "shape"), [("dcgan-transpose", (1, 30, 30)), ("cgan", (1, 30, 30))])
def test_unbuildable_shape_is_a_config_error(arch, shape):
    with pytest.raises(ConfigError, match="divisible by"):
        models.build(_cfg(arch), shape, 10)


def test_cgan_needs_labels():
    with pytest.raises(ConfigError, match="cgan needs a labelled dataset"):
        models.build(_cfg("cgan"), MNIST, 0)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="model.arch: 'gan9000' is not one of mlp, dcgan-upsample"):
        models.build(ModelConfig(arch="gan9000"), MNIST, 0)
    with pytest.raises(ConfigError, match="model.g_depth: must be >= 1"):
        models.build(ModelConfig(g_depth=0), MNIST, 0)
    with pytest.raises(ConfigError, match="loss.name: 'nope' is not one of bce, minimax"):
        losses.get_loss("nope")
    with pytest.raises(ConfigError, match="model.latent_dist"):
        models.sample_latent(2, 3, "cauchy", torch.Generator(), "cpu")


def test_conditional_models_take_mixed_and_integer_labels():
    torch.manual_seed(0)
    G, D = models.build(_cfg("cgan"), MNIST, 10)
    G.eval()
    D.eval()
    assert G.conditional and D.conditional and G.num_classes == 10 and G.latent_dim == 2
    z = torch.zeros(3, 2)
    seven, nine = torch.eye(10)[7], torch.eye(10)[9]
    mixed = torch.stack([seven, 0.5 * seven + 0.5 * nine, nine])
    x = G(z, mixed)
    assert x.shape == (3, *MNIST) and x.min() >= 0 and x.max() <= 1
    assert not torch.equal(x[0], x[1]) and not torch.equal(x[1], x[2])
    assert torch.equal(G(z, torch.tensor([7, 7, 9])), G(z, torch.stack([seven, seven, nine])))
    assert D(x, mixed).shape == (3,)
    with pytest.raises(ValueError, match="needs labels"):
        G(z)


def test_unconditional_models_ignore_labels_and_report_attributes():
    G, D = models.build(_cfg("dcgan-upsample"), MNIST, 10)
    assert (G.conditional, G.num_classes, G.latent_dim, G.latent_dist, G.output) == (
        False, 0, 100, "uniform", "sigmoid")
    G.eval()
    z, _ = _inputs(G, 2)
    assert torch.equal(G(z), G(z, torch.eye(10)[:2]))
    assert isinstance(D.head[-1], nn.Linear)  # logits, no sigmoid


def test_build_is_deterministic_under_the_global_seed():
    torch.manual_seed(3)
    a = models.build(_cfg("cgan"), MNIST, 10)[0].state_dict()
    torch.manual_seed(3)
    b = models.build(_cfg("cgan"), MNIST, 10)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- pixels and noise


@pytest.mark.parametrize("output", list(models.OUTPUT_RANGES))
def test_model_range_round_trips_every_uint8_value(output):
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    f = models.to_model_range(x, output)
    assert f.dtype == torch.float32
    assert (f.min().item(), f.max().item()) == models.OUTPUT_RANGES[output]
    back = models.from_model_range(f, output)
    assert back.dtype == torch.uint8 and torch.equal(back, x)
    wild = torch.tensor([-5.0, float("nan"), 7.0])
    assert models.from_model_range(wild, output).tolist() == [0, 0, 255]


def test_sample_latent_is_reproducible_and_in_range():
    def draw(seed, dist, n=2000):
        return models.sample_latent(n, 8, dist, torch.Generator().manual_seed(seed), "cpu")

    u = draw(5, "uniform")
    assert u.shape == (2000, 8) and u.min() >= -1 and u.max() <= 1
    assert torch.equal(u, draw(5, "uniform")) and not torch.equal(u, draw(6, "uniform"))
    assert abs(u.mean().item()) < 0.05
    g = draw(5, "normal")
    assert torch.equal(g, draw(5, "normal"))
    assert abs(g.std().item() - 1.0) < 0.05
    state = torch.get_rng_state()
    draw(1, "normal")
    assert torch.equal(state, torch.get_rng_state())  # the global stream is untouched


# ----------------------------------------------------------------------------- losses


def test_loss_values_at_known_logits():
    zero, big = torch.zeros(4), torch.full((4,), 3.0)
    log2 = math.log(2.0)
    bce, mm, ls, hinge, wgan = (losses.LOSSES[k] for k in ("bce", "minimax", "lsgan", "hinge", "wgan-gp"))
    assert bce.d_loss(zero, zero).item() == pytest.approx(2 * log2)
    assert bce.g_loss(zero).item() == pytest.approx(log2)
    assert mm.g_loss(zero).item() == pytest.approx(-log2)
    assert bce.d_loss(big, -big).item() == pytest.approx(2 * math.log1p(math.exp(-3.0)))
    assert ls.d_loss(torch.ones(4), zero).item() == 0.0 and ls.g_loss(zero).item() == 0.5
    assert hinge.d_loss(big, -big).item() == 0.0 and hinge.d_loss(zero, zero).item() == 2.0
    assert hinge.g_loss(big).item() == -3.0
    assert wgan.d_loss(big, zero).item() == -3.0 and wgan.g_loss(big).item() == -3.0
    assert [k for k, v in losses.LOSSES.items() if v.needs_gp] == ["wgan-gp"]
    assert all(v.name == k for k, v in losses.LOSSES.items())
    # Non-saturating BCE stays finite far in the tails (logits, not probabilities).
    assert torch.isfinite(bce.d_loss(torch.full((2,), -1e4), torch.full((2,), 1e4)))


class _LinearCritic(nn.Module):
    """D(x) = <w, x> with ||w|| = scale: the input gradient has norm ``scale`` everywhere."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        w = torch.randn(1, 2, 3, 3)
        self.w = nn.Parameter(w / w.norm() * scale)

    def forward(self, x, y=None):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_is_exact_and_deterministic():
    real, fake = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3)
    assert losses.gradient_penalty(_LinearCritic(1.0), real, fake).item() == pytest.approx(0.0, abs=1e-6)
    critic = _LinearCritic(3.0)
    gp = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(4.0, rel=1e-5)
    gp.backward()  # differentiable w.r.t. D's parameters
    assert critic.w.grad is not None and critic.w.grad.abs().sum() > 0
    torch.manual_seed(0)
    G, D = models.build(_cfg("dcgan-upsample"), MNIST, 0)
    D.eval()
    x = torch.rand(4, *MNIST)
    a = losses.gradient_penalty(D, x, x.flip(0), generator=torch.Generator().manual_seed(9))
    b = losses.gradient_penalty(D, x, x.flip(0), generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)


def test_discriminator_accuracy():
    acc_real, acc_fake = losses.discriminator_accuracy(torch.tensor([1.0, -1.0, 2.0, 3.0]),
                                                       torch.tensor([-1.0, -2.0, 0.5, 0.0]))
    assert (float(acc_real), float(acc_fake)) == (0.75, 0.75)


# ----------------------------------------------------------------------------- cost


def test_estimate_flops_counts_multiply_adds_twice():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    x = torch.zeros(1, 1, 8, 8)
    assert models.estimate_flops(net, x) == 2 * (4 * 8 * 8 * 9 + 10 * 256)
    up = nn.ConvTranspose2d(4, 2, 5, stride=2, padding=2, output_padding=1)
    assert models.estimate_flops(up, torch.zeros(1, 4, 7, 7)) == 2 * (4 * 7 * 7 * 2 * 25)
    G, D = models.build(ModelConfig(), MNIST, 0)
    G.train()
    f = models.flops_per_image(G, D)
    assert G.training  # mode restored
    # Seed 002's D: four 5x5 convs at 14, 7, 4, 4 px plus the dense layer.
    assert f["d"] == 2 * (14 * 14 * 64 * 25 + 7 * 7 * 128 * 64 * 25 + 16 * 256 * 128 * 25
                          + 16 * 512 * 256 * 25 + 8192)
    assert f["g"] > 0 and f["train_step"] == 4 * f["g"] + 9 * f["d"]


# ----------------------------------------------------------------------------- dcgan-lite


def _layers(net: nn.Module, kinds) -> list[tuple[str, int, int]]:
    return [(type(m).__name__, m.in_channels, m.out_channels) for m in net.modules() if isinstance(m, kinds)]


def test_dcgan_lite_layers_computes_at_low_resolution():
    conv = (nn.Conv2d, nn.ConvTranspose2d)
    cfg = dataclasses.replace(LITE, width=1.0)
    G, D = models.build(cfg, MNIST, 10)
    assert G.net[0].out_features == 64 * 7 * 7  # z -> (64, 7, 7)
    assert _layers(G, conv) == [("ConvTranspose2d", 64, 32), ("ConvTranspose2d", 32, 16), ("Conv2d", 16, 1)]
    assert _layers(D, conv) == [("Conv2d", 1, 32), ("Conv2d", 32, 64)]  # 14x14, then 7x7
    assert D.head[0].in_features == 64 * 7 * 7
    # Exact arithmetic: linear, two k4 transposed convs at 7 and 14 px, k3 conv at 28 px; D's
    # k4 stride-2 convs out at 14 and 7 px, then the dense logit.
    f = models.flops_per_image(G, D)
    assert f["g"] == 2 * (100 * 64 * 49 + 49 * 64 * 32 * 16 + 196 * 32 * 16 * 16 + 784 * 16 * 9)
    assert f["d"] == 2 * (196 * 32 * 16 + 49 * 64 * 32 * 16 + 64 * 49)
    # 64x64 RGB: 8 -> 16 -> 32 -> 64 with channels halving; D mirrors G's channels per size.
    G, D = models.build(dataclasses.replace(cfg, g_depth=2, d_depth=4), COLOR, 10)
    assert G.net[0].out_features == 64 * 8 * 8
    assert _layers(G, conv) == [("Conv2d", 64, 64), ("ConvTranspose2d", 64, 32), ("ConvTranspose2d", 32, 16),
                                ("ConvTranspose2d", 16, 8), ("Conv2d", 8, 3)]
    assert _layers(D, conv) == [("Conv2d", 3, 16), ("Conv2d", 16, 32), ("Conv2d", 32, 64), ("Conv2d", 64, 128)]
    assert D.head[0].in_features == 128 * 4 * 4
    # Layers followed by a norm carry no bias; G's output conv, D's first conv (never normed,
    # as in DCGAN) and D's head do.
    assert [m.bias is None for m in G.net if isinstance(m, (nn.Linear, *conv))] == [True] * 5 + [False]
    assert [m.bias is None for m in D.modules() if isinstance(m, (nn.Linear, *conv))] == [False] + [True] * 3 + [False]
    G, D = models.build(dataclasses.replace(cfg, g_norm="none", d_norm="none"), MNIST, 10)
    assert all(m.bias is not None for m in [*G.modules(), *D.modules()] if isinstance(m, (nn.Linear, *conv)))


@pytest.mark.parametrize("shape", [MNIST, COLOR, (1, 32, 32), (3, 24, 40)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("upsample", ["transpose", "nearest", "bilinear"])
def test_dcgan_lite_every_upsample_builds_trains_and_keeps_the_layout(upsample, shape):
    torch.manual_seed(0)
    G, D = models.build(_cfg("dcgan-lite", upsample=upsample, d_depth=4), shape, 0)
    opt = torch.optim.Adam([*G.parameters(), *D.parameters()], lr=1e-3)
    z, _ = _inputs(G, 4)
    x = G(z)
    assert x.shape == (4, *shape) and x.is_contiguous()  # channels_last stays inside the nets
    assert x.min() >= -1 and x.max() <= 1
    assert x.view(4, -1).shape == (4, math.prod(shape))
    before = _snapshot(G)
    loss = losses.LOSSES["bce"].g_loss(D(x))
    opt.zero_grad()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in [*G.parameters(), *D.parameters()])
    opt.step()
    assert _unchanged(before, G) == []


def test_dcgan_lite_upsample_kinds_draw_differently():
    outs = {}
    for kind in ("transpose", "nearest", "bilinear"):
        torch.manual_seed(0)
        G, _ = models.build(_cfg("dcgan-lite", upsample=kind), MNIST, 0)
        G.eval()
        outs[kind] = G(_inputs(G, 2)[0])
    assert [m for m in G.net if isinstance(m, nn.Upsample)][0].mode == "bilinear"
    # nearest and bilinear share every weight (same layers, same seed) yet differ in the output.
    assert not torch.equal(outs["nearest"], outs["bilinear"])
    assert not torch.equal(outs["transpose"], outs["nearest"])


@pytest.mark.parametrize(("g_norm", "d_norm"), [("batch", "none"), ("none", "batch"), ("instance", "layer"),
                                                ("layer", "none")])
def test_dcgan_lite_norms_build_train_and_normalise_as_named(g_norm, d_norm):
    torch.manual_seed(0)
    G, D = models.build(_cfg("dcgan-lite", g_norm=g_norm, d_norm=d_norm, d_depth=3), MNIST, 0)
    kinds = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "layer": nn.GroupNorm}
    g_norms = [m for m in G.modules() if isinstance(m, tuple(kinds.values()))]
    d_norms = [m for m in D.modules() if isinstance(m, tuple(kinds.values()))]
    assert len(g_norms) == (0 if g_norm == "none" else 3)  # projection + two upsampling stages
    assert all(type(m) is kinds[g_norm] for m in g_norms)
    assert len(d_norms) == (0 if d_norm == "none" else 2)  # none on D's first conv
    assert all(type(m) is kinds[d_norm] for m in d_norms)
    z, _ = _inputs(G, 6)
    # Only batch norm mixes the images of a batch (in training mode).
    alone, together = G(z[:1]), G(z)[:1]
    assert torch.allclose(alone, together, atol=1e-5) == (g_norm != "batch")
    real = torch.rand(6, *MNIST) * 2 - 1
    loss = losses.LOSSES["bce"].d_loss(D(real), D(G(z).detach()))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in D.parameters())


@pytest.mark.parametrize(("key", "value", "choices"), [
    ("upsample", "pixelshuffle", "transpose, nearest, bilinear"),
    ("g_norm", "group", "batch, none, instance, layer"),
    ("d_norm", "instance", "none, batch, layer"),
])
def test_dcgan_lite_bad_choice_is_one_line_listing_the_choices(key, value, choices):
    from gan_core.config import apply_overrides, load_preset

    message = f"model.{key}: {value!r} is not one of {choices}"
    with pytest.raises(ConfigError) as exc:
        apply_overrides(load_preset("mnist-dcgan-lite"), [f"model.{key}={value}"])
    assert str(exc.value) == message
    with pytest.raises(ConfigError) as exc:  # a ModelConfig built in code is checked at build
        models.build(dataclasses.replace(LITE, **{key: value}), MNIST, 0)
    assert str(exc.value) == message


def test_dcgan_lite_grows_with_width():
    sizes = []
    for width in (0.25, 0.5, 1.0, 2.0):
        G, D = models.build(dataclasses.replace(LITE, width=width), MNIST, 0)
        sizes.append((models.count_params(G), models.count_params(D), models.flops_per_image(G, D)["train_step"]))
    for small, big in zip(sizes, sizes[1:], strict=False):
        assert all(b > s for s, b in zip(small, big, strict=True))
    # Doubling the width quadruples the conv weights and doubles G's dense projection (most of
    # G's parameters at 28 px, though little of its arithmetic).
    assert 2.0 < sizes[3][0] / sizes[2][0] < 2.5 and 3.5 < sizes[3][1] / sizes[2][1] < 4.0
    assert 3.0 < sizes[3][2] / sizes[2][2] < 4.0


def test_dcgan_lite_takes_spectral_norm_and_still_counts_flops():
    torch.manual_seed(0)
    plain = models.flops_per_image(*models.build(_cfg("dcgan-lite", d_norm="layer", d_depth=3), COLOR, 0))
    G, D = models.build(_cfg("dcgan-lite", d_norm="layer", d_depth=3, spectral_norm="both"), COLOR, 0)
    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    assert all(nn.utils.parametrize.is_parametrized(m, "weight") for m in [*G.modules(), *D.modules()]
               if isinstance(m, kinds))
    assert models.flops_per_image(G, D) == plain
    opt = torch.optim.Adam(D.parameters(), lr=1e-3)
    z, _ = _inputs(G, 4)
    loss = losses.LOSSES["hinge"].d_loss(D(torch.rand(4, *COLOR) * 2 - 1), D(G(z).detach()))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    w = D.features[1].weight  # the first conv, normalised: largest singular value ~1
    assert torch.linalg.matrix_norm(w.detach().flatten(1), ord=2).item() == pytest.approx(1.0, abs=0.1)


def test_init_torch_and_dcgan_replace_the_original_init_deterministically():
    """model.init: original keeps each architecture's init; torch gives PyTorch's default scale
    (bound 1/sqrt(fan_in), half Glorot's on seed 001's 784->256 layer); dcgan gives N(0, 0.02)."""
    from gan_core.config import apply_overrides, load_preset

    cfg = load_preset("mnist-mlp").model
    first = {}
    for kind in ("original", "torch", "dcgan"):
        torch.manual_seed(0)
        _, D = models.build(dataclasses.replace(cfg, init=kind), (1, 28, 28), 10)
        first[kind] = D.features[1].weight.detach()
        torch.manual_seed(0)
        _, again = models.build(dataclasses.replace(cfg, init=kind), (1, 28, 28), 10)
        assert torch.equal(first[kind], again.features[1].weight)
    glorot, default = (6 / (784 + 512)) ** 0.5, 1 / 784**0.5
    assert first["original"].abs().max() <= glorot and first["original"].abs().max() > 0.9 * glorot
    assert first["torch"].abs().max() <= default and first["torch"].abs().max() > 0.9 * default
    assert abs(float(first["dcgan"].std()) - 0.02) < 0.002
    with pytest.raises(ConfigError, match="model.init: 'he' is not one of original, torch, dcgan"):
        apply_overrides(load_preset("mnist-mlp"), ["model.init=he"])
    # "seed", the value's old name, is still read (saved configs and searches keep loading).
    assert apply_overrides(load_preset("mnist-mlp"), ["model.init=seed"]).model.init == "original"


def test_dcgan_lite_normalises_narrow_layers_in_nchw_without_changing_the_numbers():
    """Below 8 channels norm and activation run in NCHW (hooks switch the layout; the module
    list and so the saved keys are as before); the result is the channels_last one's."""
    from gan_core import dcgan_lite

    seen = []
    torch.manual_seed(0)
    cfg = dataclasses.replace(LITE, width=0.25)  # G: 16 -> 8 -> 4 channels at 7, 14, 28 px
    G, _ = models.build(cfg, MNIST, 0)
    norms = [m for m in G.net if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.register_forward_pre_hook(lambda m, a: seen.append((m.num_features, a[0].is_contiguous())))
    z, _ = _inputs(G, 4)
    x = G(z)
    assert seen == [(16, False), (8, False), (4, True)]  # channels_last but for the 4-channel one
    try:
        dcgan_lite.NHWC_MIN_CHANNELS = 1
        torch.manual_seed(0)
        G1, _ = models.build(cfg, MNIST, 0)
    finally:
        dcgan_lite.NHWC_MIN_CHANNELS = 8
    assert list(G1.state_dict()) == list(G.state_dict())
    assert torch.allclose(G1(z), x, atol=1e-6)


def test_dcgan_lite_discriminator_options_build_train_and_cost_what_they_say():
    """model.d_width scales D alone; mbstd_group adds one channel of the batch's spread;
    d_multiscale feeds every later stage the pooled image; g_min_channels widens G's thin
    stages. All off: the preset's networks."""
    conv = (nn.Conv2d, nn.ConvTranspose2d)
    base = dataclasses.replace(LITE, width=1.0, d_depth=3)
    G0, D0 = models.build(base, COLOR, 0)
    G, D = models.build(dataclasses.replace(base, d_width=0.5), COLOR, 0)
    assert _layers(G, conv) == _layers(G0, conv)
    # g_min_channels floors G's thin full-resolution stages only.
    G1, D1 = models.build(dataclasses.replace(base, g_min_channels=16), COLOR, 0)
    assert _layers(G1, conv) == [("ConvTranspose2d", 64, 32), ("ConvTranspose2d", 32, 16),
                                 ("ConvTranspose2d", 16, 16), ("Conv2d", 16, 3)]
    assert _layers(D1, conv) == _layers(D0, conv)
    assert _layers(D, conv) == [("Conv2d", 3, 8), ("Conv2d", 8, 16), ("Conv2d", 16, 32)]
    _, D = models.build(dataclasses.replace(base, d_multiscale=True, mbstd_group=4), COLOR, 0)
    assert _layers(D, conv) == [("Conv2d", 3, 16), ("Conv2d", 19, 32), ("Conv2d", 35, 64)]
    assert D.head[0].in_features == 65 * 8 * 8
    torch.manual_seed(0)
    z, _ = _inputs(G0, 8)
    x = G0(z).detach()
    # The spread channel: identical images have none, so D tells a collapsed batch apart.
    mbstd = next(m for m in D.modules() if type(m).__name__ == "MinibatchStd")
    h = torch.randn(8, 3, 4, 4)
    assert torch.allclose(mbstd(h[:1].expand(8, -1, -1, -1))[:, 3], torch.full((8, 4, 4), 1e-4))
    assert mbstd(h)[:, 3].min() > 0.5
    real = x.clone().requires_grad_(True)
    d_real = D(real)
    r1 = losses.r1_penalty(d_real, real)  # double backward through pooling and the spread
    loss = losses.LOSSES["hinge"].d_loss(d_real, D(torch.rand(8, *COLOR) * 2 - 1)) + r1
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    assert models.estimate_flops(D, torch.zeros(1, *COLOR)) > models.estimate_flops(D0, torch.zeros(1, *COLOR))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("d_width", "0", "model.d_width: must be > 0, or null for model.width, got 0.0"),
    ("mbstd_group", "-1", "model.mbstd_group: must be >= 0 (0: off), got -1"),
    ("g_min_channels", "-2", "model.g_min_channels: must be >= 0 (0: off), got -2"),
])
def test_dcgan_lite_bad_discriminator_option_is_one_line(key, value, message):
    from gan_core.config import apply_overrides, load_preset

    with pytest.raises(ConfigError) as exc:
        apply_overrides(load_preset("mnist-dcgan-lite"), [f"model.{key}={value}"])
    assert str(exc.value) == message
