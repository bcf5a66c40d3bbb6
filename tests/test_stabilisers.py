"""Stabilisers as config: EMA generator, spectral norm, DiffAugment, lazy R1.

Real tiny trainings on CPU: each stabiliser changes what training produces, resume with all of
them on is bitwise, and the pieces do what their papers say (EMA arithmetic, unit spectral
norm, DiffAugment equal to the reference code)."""

from __future__ import annotations

import textwrap

import optuna
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_core import augment as aug
from gan_core import models
from gan_core.checkpoint import load_checkpoint, load_run
from gan_core.config import ModelConfig, apply_overrides, dump_config, from_dict, to_dict
from gan_core.ema import GeneratorEma
from gan_core.errors import ConfigError
from gan_core.loop import Callbacks, train
from search.space import load_space
from tests.conftest import TINY_MODEL

ARCHS = [a for a in models.ARCHITECTURES if a in TINY_MODEL]
ALL_ON = ["ema.decay=0.9", "ema.start_images=32", "ema.standing_stats=2", "model.spectral_norm=both",
          "augment.policy=translation,cutout", "augment.p=0.7", "loss.r1_gamma=1.0", "loss.r1_every=2",
          "augment.blur_sigma=1.0", "augment.blur_images=64"]
COLOR = ["data.name=color-mnist", "data.resolution=28"]


def outputs(run_dir) -> dict[str, torch.Tensor]:
    """What a run's networks compute on fixed inputs (weight names differ under spectral norm)."""
    run = load_run(run_dir)
    gen = torch.Generator().manual_seed(0)
    z = models.sample_latent(8, run.G.latent_dim, run.G.latent_dist, gen)
    y = torch.arange(8) % 10 if run.G.conditional else None
    x = torch.rand(8, *run.D.shape, generator=gen)
    with torch.no_grad():
        return {"G": run.G(z, y), "G_raw": run.G_raw(z, y), "D": run.D(x, y)}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- config


def test_config_keys_default_off_and_round_trip(tiny_cfg):
    cfg = tiny_cfg("mlp")
    assert (cfg.ema.decay, cfg.ema.standing_stats, cfg.model.spectral_norm, cfg.augment.policy,
            cfg.loss.r1_gamma) == (0.0, 0, "none", [], 0.0)
    on = apply_overrides(cfg, ALL_ON)
    assert on.augment.policy == ["translation", "cutout"] and on.loss.r1_every == 2
    # A YAML list and DiffAugment's comma string are the same config; "" is no augmentation.
    as_list = apply_overrides(cfg, ["augment.policy=[translation, cutout]"])
    assert as_list == apply_overrides(cfg, ["augment.policy=translation, cutout"])
    assert apply_overrides(on, ["augment.policy="]).augment.policy == []
    assert from_dict(to_dict(on)) == on and "- translation" in dump_config(on)


@pytest.mark.parametrize(("setting", "message"), [
    ("ema.decay=1.0", r"ema.decay: must be in \[0, 1\)"),
    ("ema.start_images=-1", "ema.start_images: must be >= 0"),
    ("ema.standing_stats=-1", r"ema.standing_stats: must be >= 0 \(0: copy G's\), got -1"),
    ("augment.p=1.5", r"augment.p: must be in \[0, 1\]"),
    ("augment.blur_sigma=-1", r"augment.blur_sigma: must be >= 0 \(0: off\), got -1.0"),
    ("augment.blur_sigma=2", r"augment.blur_images: must be > 0 with augment.blur_sigma 2 \(the images over "),
    ("loss.r1_gamma=-1", "loss.r1_gamma: must be >= 0"),
    ("loss.r1_every=0", "loss.r1_every: must be >= 1"),
    ("augment.policy=translation,flip", "augment.policy: 'flip' is not one of translation, cutout, color"),
    ("augment.policy=cutout,cutout", "augment.policy: 'cutout' is listed twice"),
    ("augment.policy=3", "augment.policy: expected a list or a comma-separated string, got 3"),
    ("augment.policy=[3]", r"augment.policy: '3' is not one of translation, cutout, color"),
    ("model.spectral_norm=all", "model.spectral_norm: 'all' is not one of none, d, g, both"),
])
def test_bad_values_are_one_line_config_errors_with_the_key(tiny_cfg, setting, message):
    with pytest.raises(ConfigError, match=message) as info:
        apply_overrides(tiny_cfg("mlp"), [setting])
    assert "\n" not in str(info.value)


def test_color_on_grayscale_is_refused_before_anything_is_written(tiny_cfg, tmp_path):
    cfg = tiny_cfg("mlp", sets=["augment.policy=translation,color"])
    with pytest.raises(ConfigError) as info:
        train(cfg, tmp_path / "run", progress=False)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("augment.policy: 'color'") and "'mnist'" in msg
    assert "translation, cutout" in msg
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("setting", [
    ["model.spectral_norm=d"], ["model.spectral_norm=g"], ["augment.policy=translation"],
    ["augment.policy=cutout"], ["augment.policy=color", *COLOR], ["loss.r1_gamma=10"],
    ["augment.blur_sigma=2", "augment.blur_images=1000"],
], ids=lambda s: s[0])
def test_each_stabiliser_changes_the_trained_networks(tiny_cfg, tmp_path, setting):
    base = [s for s in setting if s.startswith("data.")]
    train(tiny_cfg("mlp", steps=3, sets=base), tmp_path / "off", progress=False)
    train(tiny_cfg("mlp", steps=3, sets=setting), tmp_path / "on", progress=False)
    off, on = outputs(tmp_path / "off"), outputs(tmp_path / "on")
    assert not torch.equal(off["G_raw"], on["G_raw"]) and not torch.equal(off["D"], on["D"])


def test_ema_samples_differ_but_leave_training_alone(tiny_cfg, tmp_path):
    train(tiny_cfg("dcgan-upsample", steps=4), tmp_path / "off", progress=False)
    train(tiny_cfg("dcgan-upsample", steps=4, sets=["ema.decay=0.5"]), tmp_path / "on", progress=False)
    off, on = outputs(tmp_path / "off"), outputs(tmp_path / "on")
    assert torch.equal(off["G_raw"], on["G_raw"]) and torch.equal(off["D"], on["D"])  # same training
    assert not torch.equal(on["G"], on["G_raw"])  # ...but the samples come from the average
    state = load_checkpoint(tmp_path / "on")
    assert state["G_ema"].keys() == state["G"].keys() and load_checkpoint(tmp_path / "off")["G_ema"] is None


def test_ema_is_an_exact_copy_before_start_images(tiny_cfg, tmp_path):
    # batch-norm running statistics included: they are buffers of the copy
    cfg = tiny_cfg("dcgan-upsample", steps=4, sets=["ema.decay=0.9", f"ema.start_images={16 * 4}"])
    train(cfg, tmp_path, progress=False)
    state = load_checkpoint(tmp_path)
    assert same_state(state["G_ema"], state["G"])
    run = load_run(tmp_path)
    assert run.G is not run.G_raw and not run.G.training


def test_ema_update_is_the_moving_average():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = GeneratorEma(G, decay=0.75, start_images=10)
    before = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
    G(torch.randn(5, 3))  # moves the running statistics
    ema.update(10)  # not past start_images: an exact copy
    assert same_state(ema.model.state_dict(), G.state_dict())
    ema.load_state_dict(before)
    ema.update(11)
    for k, p in G.named_parameters():
        assert torch.allclose(ema.model.get_parameter(k), 0.75 * before[k] + 0.25 * p, atol=1e-6)
    assert torch.equal(ema.model.get_buffer("1.running_mean"), G.get_buffer("1.running_mean"))
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_ema_standing_stats_are_the_averages_own_and_leave_training_alone(tiny_cfg, tmp_path):
    """With ema.standing_stats the average's batch-norm statistics are those of its own
    activations on fixed noise (cumulative over the batches), recomputed once per update;
    G, D and the average's weights train exactly as without."""
    from gan_core.ema import STANDING_BATCH, STANDING_SEED

    torch.manual_seed(0)
    G = models.Generator(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU()), arch="mlp", latent_dim=3,
                         latent_dist="normal", shape=(1, 2, 2), output="tanh")
    G(torch.randn(16, 3) * 5)  # G's own running statistics: far from the average's
    ema = GeneratorEma(G, decay=0.5, standing_batches=3)
    z = models.sample_latent(3 * STANDING_BATCH, 3, "normal", torch.Generator().manual_seed(STANDING_SEED))
    h = ema.model.net[0](z)
    model = ema.sampler()
    assert model is ema.model and not model.training and not model.net[1].training
    assert torch.allclose(model.net[1].running_mean, h.mean(0), atol=1e-5)
    per_batch = torch.stack([b.var(0) for b in h.split(STANDING_BATCH)]).mean(0)  # as BN averages them
    assert torch.allclose(model.net[1].running_var, per_batch, atol=1e-5)
    assert model.net[1].momentum == G.net[1].momentum  # restored
    mean = model.net[1].running_mean.clone()
    model.net[1].running_mean.zero_()
    ema.sampler()  # no update since: not recomputed
    assert torch.equal(model.net[1].running_mean, torch.zeros(4))
    with torch.no_grad():
        G.net[0].bias.add_(1.0)
    ema.update(1)  # the average moves half way: its statistics are computed again when saved
    assert torch.allclose(ema.state_dict()["net.1.running_mean"], ema.model.net[0](z).mean(0), atol=1e-5)
    assert not torch.equal(ema.model.net[1].running_mean, mean)

    train(tiny_cfg("dcgan-upsample", steps=4, sets=["ema.decay=0.5"]), tmp_path / "copy", progress=False)
    train(tiny_cfg("dcgan-upsample", steps=4, sets=["ema.decay=0.5", "ema.standing_stats=2"]), tmp_path / "own",
          progress=False)
    a, b = load_checkpoint(tmp_path / "copy"), load_checkpoint(tmp_path / "own")
    assert same_state(a["G"], b["G"]) and same_state(a["D"], b["D"])
    weights = [k for k in a["G_ema"] if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(a["G_ema"][k], b["G_ema"][k]) for k in weights)
    stats = [k for k in a["G_ema"] if "running_mean" in k]
    assert stats and all(not torch.equal(a["G_ema"][k], b["G_ema"][k]) for k in stats)


def _stop_after(n: int):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > n

    return stop


@pytest.mark.parametrize("arch", ARCHS + ["color"])
def test_resume_with_every_stabiliser_is_bitwise(tiny_cfg, tmp_path, arch):
    sets = list(ALL_ON)
    if arch == "color":  # the full DiffAugment policy on RGB data
        arch, sets = "dcgan-upsample", sets + COLOR + ["augment.policy=color,translation,cutout"]
    if arch == "mlp":
        sets.append("train.d_steps=2")
    cfg = tiny_cfg(arch, steps=6, sets=sets)
    straight = train(cfg, tmp_path / "straight", progress=False)
    first = train(cfg, tmp_path / "resumed", progress=False, callbacks=Callbacks(should_stop=_stop_after(3)))
    assert first.status == "stopped" and first.step == 3
    second = train(cfg, tmp_path / "resumed", progress=False)
    assert straight.status == second.status == "completed" and second.step == 6
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    for key in ("G", "D", "G_ema"):
        assert same_state(a[key], b[key]), key
    assert any(".parametrizations.weight.original" in k for k in a["D"])
    assert not same_state(a["G_ema"], a["G"])


def test_spectral_norm_keeps_every_d_layer_at_unit_norm(tiny_cfg, tmp_path):
    cfg = tiny_cfg("dcgan-transpose", steps=4, sets=["model.spectral_norm=both"])
    train(cfg, tmp_path, progress=False)
    run = load_run(tmp_path)  # eval mode: the weights as the last power iteration left them
    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    for net in (run.D, run.G_raw):
        layers = [m for m in net.modules() if isinstance(m, kinds)]
        assert layers and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
        for m in layers:
            w = m.weight.detach()
            if isinstance(m, nn.ConvTranspose2d):  # normalised along its output channels
                w = w.transpose(0, 1)
            sigma = torch.linalg.matrix_norm(w.flatten(1), ord=2).item()
            assert abs(sigma - 1.0) < 0.05, (type(m).__name__, sigma)
    raw = max(torch.linalg.matrix_norm(m.parametrizations.weight.original.detach().flatten(1), ord=2).item()
              for m in run.D.modules() if isinstance(m, kinds))
    assert raw > 1.2  # the unnormalised weights are not unit-norm themselves


def test_spectral_norm_builds_every_architecture_on_meta():
    for arch in models.ARCHITECTURES:
        cfg = ModelConfig(arch=arch, width=0.125, spectral_norm="both")
        with torch.device("meta"):
            G, D = models.build(cfg, (3, 64, 64), 10)
        assert any(nn.utils.parametrize.is_parametrized(m) for m in D.modules())


# ----------------------------------------------------------------------------- DiffAugment


def _reference(x: torch.Tensor, policy: str, gen: torch.Generator) -> torch.Tensor:
    """The reference DiffAugment code (mit-han-lab/data-efficient-gans), transcribed with its
    random draws taken from ``gen`` in the same order."""

    def rand(*size):
        return torch.rand(*size, generator=gen)

    def brightness(x):
        return x + (rand(x.size(0), 1, 1, 1) - 0.5)

    def saturation(x):
        m = x.mean(dim=1, keepdim=True)
        return (x - m) * (rand(x.size(0), 1, 1, 1) * 2) + m

    def contrast(x):
        m = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - m) * (rand(x.size(0), 1, 1, 1) + 0.5) + m

    def translation(x, ratio=0.125):
        shift_x, shift_y = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
        tx = torch.randint(-shift_x, shift_x + 1, size=[x.size(0), 1, 1], generator=gen)
        ty = torch.randint(-shift_y, shift_y + 1, size=[x.size(0), 1, 1], generator=gen)
        gb, gx, gy = torch.meshgrid(torch.arange(x.size(0)), torch.arange(x.size(2)),
                                    torch.arange(x.size(3)), indexing="ij")
        gx = torch.clamp(gx + tx + 1, 0, x.size(2) + 1)
        gy = torch.clamp(gy + ty + 1, 0, x.size(3) + 1)
        x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
        return x_pad.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)

    def cutout(x, ratio=0.5):
        cs = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
        ox = torch.randint(0, x.size(2) + (1 - cs[0] % 2), size=[x.size(0), 1, 1], generator=gen)
        oy = torch.randint(0, x.size(3) + (1 - cs[1] % 2), size=[x.size(0), 1, 1], generator=gen)
        gb, gx, gy = torch.meshgrid(torch.arange(x.size(0)), torch.arange(cs[0]), torch.arange(cs[1]),
                                    indexing="ij")
        gx = torch.clamp(gx + ox - cs[0] // 2, min=0, max=x.size(2) - 1)
        gy = torch.clamp(gy + oy - cs[1] // 2, min=0, max=x.size(3) - 1)
        mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype)
        mask[gb, gx, gy] = 0
        return x * mask.unsqueeze(1)

    fns = {"color": [brightness, saturation, contrast], "translation": [translation], "cutout": [cutout]}
    for p in policy.split(","):
        for f in fns[p]:
            x = f(x)
    return x.contiguous()


REFERENCE_CASES = [(policy, shape)
                   for policy in ("translation", "cutout", "color", "color,translation,cutout")
                   for shape in ((3, 28, 28), (1, 28, 28), (3, 9, 12), (1, 2, 2))
                   if shape[0] == 3 or "color" not in policy]


@pytest.mark.parametrize(("policy", "shape"), REFERENCE_CASES)
def test_diffaugment_equals_the_reference_code(policy, shape):
    x = torch.rand(32, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ours = aug.DiffAugment(policy.split(","), 1.0, torch.Generator().manual_seed(7))(x)
    ref = _reference(x, policy, torch.Generator().manual_seed(7))
    assert ours.shape == x.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_translation_and_cutout_keep_shape_and_range_and_are_differentiable():
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    out = aug.DiffAugment(["translation", "cutout"], 1.0, torch.Generator().manual_seed(3))(x)
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= x.max()
    zeroed = (out == 0).flatten(1).float().mean(1)
    assert zeroed.min() > 0.05  # every image lost a cutout square: a quarter, or at a corner 1/16
    (grad,) = torch.autograd.grad((out * torch.arange(28.0)).sum(), x)
    assert torch.isfinite(grad).all() and (grad != 0).any() and (grad == 0).any()  # flows, but not
    # through the pixels that were cut or shifted out


def test_color_is_differentiable_and_p_picks_images():
    x = torch.rand(200, 3, 8, 8, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    out = aug.DiffAugment(["color"], 1.0, torch.Generator().manual_seed(1))(x)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    half = aug.DiffAugment(["translation"], 0.5, torch.Generator().manual_seed(2))(x.detach())
    untouched = (half == x).flatten(1).all(1).float().mean().item()
    assert 0.35 < untouched < 0.75  # about half untouched (plus images drawn a zero shift)
    assert torch.equal(aug.DiffAugment(["translation"], 0.0, torch.Generator())(x), x)
    assert torch.equal(aug.DiffAugment([], 1.0, torch.Generator())(x), x)


# ----------------------------------------------------------------------------- search space


def test_a_space_searching_the_stabilisers_parses_and_its_draws_validate(tmp_path):
    path = tmp_path / "stabilisers.yaml"
    path.write_text(textwrap.dedent("""\
        base: mnist-mlp
        budget: {images: 64000, eval_every: 16000}
        params:
          ema.decay: {choice: [0.0, 0.99, 0.999]}
          ema.start_images: 16000
          model.spectral_norm: {choice: [none, d, both]}
          augment.policy: {choice: ["", translation, "translation,cutout"]}
          augment.p: {float: [0.2, 1.0]}
          loss.r1_gamma: {float: [0.0, 10.0]}
          loss.r1_every: {choice: [4, 16]}
        """))
    space = load_space(path, build_models=True, dry_run=16)
    assert space.base_point()["augment.policy"] == ""  # the preset's empty list is the "" choice
    fn = space.define_by_run(seed=0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    policies = set()
    for _ in range(24):
        trial = study.ask()
        fixed = fn(trial)
        cfg = space.config_for({**trial.params, **fixed})
        policies.add(tuple(cfg.augment.policy))
        assert cfg.model.spectral_norm in ("none", "d", "both") and cfg.ema.start_images == 16000
        study.tell(trial, 0.0)
    assert policies == {(), ("translation",), ("translation", "cutout")}
    assert {p.key for p in space.pbt_mutable()} >= {"ema.decay", "augment.p", "loss.r1_gamma"}


def test_a_space_offering_color_on_mnist_is_refused(tmp_path):
    from gan_core.errors import GansearchError

    path = tmp_path / "bad.yaml"
    path.write_text("base: mnist-mlp\nbudget: {images: 64000, eval_every: 16000}\n"
                    "params:\n  augment.policy: {choice: [translation, 'color,cutout']}\n")
    load_space(path)  # the typed tree has no view on the data's channels
    with pytest.raises(GansearchError, match="augment.policy: 'color' needs RGB images") as info:
        load_space(path, build_models=True)
    assert "\n" not in str(info.value)


def test_d_blur_fades_out_and_keeps_brightness():
    from gan_core.augment import blur_sigma, gaussian_blur

    assert [blur_sigma(4.0, 100, n) for n in (0, 25, 100, 500)] == [4.0, 3.0, 0.0, 0.0]
    assert blur_sigma(0.0, 0, 0) == 0.0
    x = torch.rand(2, 3, 32, 32)
    assert gaussian_blur(x, 0.0) is x
    y = gaussian_blur(x, 1.5)
    inner = (slice(None), slice(None), slice(5, -5), slice(5, -5))  # zero padding darkens the border only
    assert torch.allclose(y[inner].mean(), x[inner].mean(), atol=0.01)
    assert y.std() < 0.6 * x.std()  # noise is smoothed
    flat = torch.full((1, 1, 32, 32), 0.5)
    assert torch.allclose(gaussian_blur(flat, 1.5)[inner[:2] + (slice(5, -5), slice(5, -5))], flat[..., 5:-5, 5:-5])
