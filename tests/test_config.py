"""The typed config tree: YAML round trip, key-path errors, overrides, presets."""

import dataclasses

import pytest

from gan_core.config import (
    Config,
    apply_overrides,
    diff,
    from_dict,
    load_config,
    load_preset,
    preset_names,
    save_config,
    to_dict,
)
from gan_core.errors import ConfigError

PRESETS = ["color-mnist-dcgan", "color-mnist-lite", "fashion-dcgan", "fashion-lite", "mnist-cgan", "mnist-dcgan",
           "mnist-dcgan-lite", "mnist-lite", "mnist-mlp", "mnist-mlp-ema", "mnist-mlp-quick"]


def test_presets_are_the_five_seed_systems_plus_cpu_recipes_and_round_trip(tmp_path):
    assert preset_names() == PRESETS
    for name in PRESETS:
        cfg = load_preset(name)
        assert cfg.name == name
        save_config(cfg, tmp_path / f"{name}.yaml")
        assert load_config(tmp_path / f"{name}.yaml") == cfg


def test_seed_numbers_in_presets():
    dcgan = load_preset("mnist-dcgan")
    assert (dcgan.optim.d.name, dcgan.optim.d.lr, dcgan.optim.g.name, dcgan.optim.g.lr) == ("rmsprop", 8e-4, "adam", 4e-4)
    assert dcgan.train.batch_size == 256 and dcgan.steps == 3001
    cgan = load_preset("mnist-cgan")
    assert cgan.balance.enabled and (cgan.balance.lower, cgan.balance.upper) == (0.3, 0.8)
    assert cgan.model.latent_dim == 2 and cgan.train.batch_size == 10


@pytest.mark.parametrize(
    "data, message",
    [
        ({"optim": {"d": {"lr": "fast"}}}, "optim.d.lr: expected float, got 'fast'"),
        ({"model": {"widht": 2}}, "model.widht: unknown key (valid: arch, latent_dim"),
        ({"train": {"batch_size": 1.5}}, "train.batch_size: expected int, got 1.5"),
        ({"model": {"latent_dist": "cauchy"}}, "model.latent_dist: 'cauchy' is not one of uniform, normal"),
        ({"model": {"arch": "resnet"}}, "model.arch: 'resnet' is not one of"),
        ({"loss": {"name": "wgan"}}, "loss.name: 'wgan' is not one of"),
        ({"balance": {"enabled": True, "lower": 0.8, "upper": 0.3}}, "balance: need lower"),
        ({"train": {"images": 0}}, "train.images: must be > 0"),
        ({"eval": {"enabled": "yes"}}, "eval.enabled: expected bool, got 'yes'"),
    ],
)
def test_bad_values_name_the_key_path(data, message):
    with pytest.raises(ConfigError) as exc:
        from_dict(data)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  g:\n    lr: fast\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: optim.g.lr: expected float"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is not one of color-mnist-dcgan"):
        load_preset("nope")


def test_overrides_parse_yaml_scalars_and_refuse_unknown_paths():
    cfg = apply_overrides(Config(), ["optim.d.lr=1e-3", "optim.g.clip_value=none", "balance.enabled=true"])
    assert cfg.optim.d.lr == 1e-3 and cfg.optim.g.clip_value is None and cfg.balance.enabled
    with pytest.raises(ConfigError, match="optim.x: unknown key"):
        apply_overrides(Config(), ["optim.x.lr=1"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_overrides(Config(), ["optim.d.lr"])


def test_diff_names_the_differing_keys():
    a = Config()
    b = apply_overrides(a, ["model.dropout=0.1", "train.seed=3"])
    assert diff(a, b) == {"model.dropout": (0.4, 0.1), "train.seed": (0, 3)}
    assert from_dict(to_dict(b)) == b


def test_registries_are_keyed_by_the_names_config_validates_against():
    """config checks names against gan_core.choices without importing the registries."""
    from gan_core import augment, choices, losses, models

    assert tuple(models.ARCHITECTURES) == choices.ARCHITECTURES
    assert tuple(losses.LOSSES) == choices.LOSSES
    assert tuple(augment.AUGMENTATIONS) == choices.AUGMENTATIONS
    from gan_core import optim
    from gan_core.config import ModelConfig, OptimSide

    def allowed(cls: type, name: str) -> tuple[str, ...]:
        return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["choices"]

    assert set(models.OUTPUT_RANGES) == set(allowed(ModelConfig, "output"))
    assert set(models.LATENT_DISTS) == set(allowed(ModelConfig, "latent_dist"))
    assert set(optim.OPTIMIZERS) == set(allowed(OptimSide, "name"))


def test_config_validation_imports_no_model_code():
    import subprocess
    import sys

    code = ("import sys; from gan_core.config import load_preset, apply_overrides; "
            "apply_overrides(load_preset('mnist-dcgan'), ['model.arch=mlp', 'augment.policy=translation']); "
            "print(sorted({'torch', 'gan_core.models', 'gan_core.losses', 'gan_core.augment'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
