"""One typed config tree for a GAN training run, loaded from and saved to YAML.

Every key has a type; unknown keys and wrong types are refused with the key's path, so a
misspelt or silently ignored hyperparameter is impossible (the bug of Ray Tune's DCGAN example,
whose optimisers read ``config.get("lr")`` while the space sampled ``netG_lr``).

Example::

    cfg = load_preset("mnist-dcgan")
    cfg = apply_overrides(cfg, ["optim.d.lr=1e-4", "model.dropout=0.3"])
    save_config(cfg, "run/config.yaml")
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gan_core import choices as registry
from gan_core.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"


def _choices(*names: str) -> dict[str, tuple[str, ...]]:
    return {"choices": names}


@dataclass
class DataConfig:
    """Which images to learn. ``name``: mnist, fashion, color-mnist, or csv:PATH."""

    name: str = "mnist"
    data_dir: str | None = None  # None: --data-dir, $GANSEARCH_DATA, then the embedded MNIST
    background: str | None = None  # color-mnist: an image file; None: generated colour fields
    change_colors: bool = False  # color-mnist: seed 000's random colour shift of the background
    image_size: int = 64  # color-mnist only: side of the square RGB image


@dataclass
class ModelConfig:
    """Architecture by name plus the knobs every architecture understands.

    ``width`` multiplies the seed's channel or unit counts; ``g_depth``/``d_depth`` count hidden
    layers (mlp) or convolution blocks (dcgan-*, cgan); ``bn_momentum`` is Keras' convention
    (0.9 keeps 90 % of the running mean), as in the seeds.
    """

    arch: str = "dcgan-upsample"
    latent_dim: int = 100
    latent_dist: str = field(default="uniform", metadata=_choices("uniform", "normal"))
    width: float = 1.0
    g_depth: int = 3
    d_depth: int = 4
    dropout: float = 0.4  # discriminator dropout
    g_dropout: float = 0.4  # generator dropout (seed 002 drops after the first dense layer)
    bn_momentum: float = 0.9
    g_activation: str = field(default="leaky_relu", metadata=_choices("relu", "leaky_relu"))
    d_activation: str = field(default="leaky_relu", metadata=_choices("relu", "leaky_relu"))
    leaky_slope: float = 0.3  # Keras' LeakyReLU() default, as seed 002 uses it
    # Weight init of every Linear/Conv layer: ``original`` is each architecture's own, as the
    # original system had it (Keras' Glorot-uniform for mlp and dcgan-*, a truncated normal for
    # cgan, DCGAN's for dcgan-lite; ``seed``, its name before, is still read as ``original`` so
    # saved configs and searches keep loading); ``torch`` is PyTorch's default (Kaiming-uniform,
    # a=sqrt(5): about half Glorot's scale on wide layers, which trains the dense GAN faster);
    # ``dcgan`` is N(0, 0.02).
    init: str = field(default="original", metadata={**_choices("original", "torch", "dcgan"),
                                                     "aliases": {"seed": "original"}})
    # Spectral normalisation (Miyato et al. 2018) of every Linear/Conv layer of D, G or both.
    spectral_norm: str = field(default="none", metadata=_choices("none", "d", "g", "both"))
    output: str = field(
        default="sigmoid", metadata=_choices("sigmoid", "tanh", "stretched-sigmoid")
    )
    # dcgan-lite only (the seeds' architectures keep their own fixed layers):
    g_norm: str = field(default="batch", metadata=_choices("batch", "none", "instance", "layer"))
    d_norm: str = field(default="batch", metadata=_choices("none", "batch", "layer"))
    upsample: str = field(default="transpose", metadata=_choices("transpose", "nearest", "bilinear"))
    g_min_channels: int = 0  # no G stage narrower than this (the full-resolution ones); 0: off
    d_width: float | None = None  # D's channel multiplier; None: ``width``, as G's
    mbstd_group: int = 0  # minibatch standard deviation in D over groups of this many images; 0: off
    d_multiscale: bool = False  # D's later stages also see the image average-pooled to their size


@dataclass
class LossConfig:
    """Adversarial loss by name: bce (non-saturating), minimax, lsgan, hinge, wgan-gp.

    ``r1_gamma`` > 0 adds the R1 penalty on real images (Mescheder et al. 2018), lazily as in
    StyleGAN2: every ``r1_every``-th D update adds r1_gamma/2 * E||grad_x D(x)||^2 * r1_every,
    which costs one double backward per r1_every updates yet pulls as hard as every-step R1.
    """

    name: str = "bce"
    gp_weight: float = 10.0  # wgan-gp only
    r1_gamma: float = 0.0  # 0: off
    r1_every: int = 16


@dataclass
class OptimSide:
    """One side's optimiser. ``clip_value`` clips each gradient element (Keras ``clipvalue``);
    ``decay`` is Keras' time decay, lr / (1 + decay * updates)."""

    name: str = field(default="adam", metadata=_choices("adam", "rmsprop", "sgd"))
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    momentum: float = 0.0
    alpha: float = 0.9  # rmsprop smoothing (Keras' rho)
    clip_value: float | None = None
    decay: float = 0.0


@dataclass
class OptimConfig:
    d: OptimSide = field(default_factory=OptimSide)
    g: OptimSide = field(default_factory=OptimSide)


@dataclass
class BalanceConfig:
    """Seed 004's controller: pause whichever side is winning.

    The statistic is the smoothed discriminator error (mean of D's surprise on real+fake and on
    fake). Below ``lower`` the discriminator is winning and pauses; above ``upper`` the generator
    pauses; a paused side resumes once the error is ``hysteresis`` back inside the band.
    """

    enabled: bool = False
    lower: float = 0.3
    upper: float = 0.8
    smoothing: float = 0.9  # exponential moving average factor
    hysteresis: float = 0.05
    warmup: int = 10  # steps before the controller may pause anything


@dataclass
class AugmentConfig:
    """DiffAugment (Zhao et al. 2020): differentiable augmentation of every image D sees.

    ``policy``: names from translation, cutout, color (color: RGB data only), applied in the
    given order; YAML takes a list or DiffAugment's comma-separated string ("translation,cutout",
    which is how a search space offers it as a choice; "" = none). ``p``: the probability that
    each transform is applied to each image.
    """

    policy: list[str] = field(default_factory=list)
    p: float = 1.0


@dataclass
class EmaConfig:
    """An exponential moving average of G's weights, used for every sample and evaluation.

    After each generator update ema = decay * ema + (1 - decay) * G (parameters; buffers such
    as batch-norm statistics are copied). Until ``start_images`` images have been seen the EMA
    generator is an exact copy of G, so the average does not drag in the untrained start.
    ``decay`` 0 turns it off (samples come from G itself). ``standing_stats`` > 0 gives the
    average batch-norm statistics of its own, from that many batches of 64 fixed noise vectors,
    before it draws, is scored or saved (gan_core.ema); 0 copies G's.
    """

    decay: float = 0.0
    start_images: int = 0
    standing_stats: int = 0


@dataclass
class TrainConfig:
    """Budget and schedule, all counted in images seen (one step = one batch of real images)."""

    batch_size: int = 64
    images: int = 640_000
    d_steps: int = 1  # discriminator updates per generator update
    seed: int = 0
    log_every: int = 6400  # images between metrics.jsonl lines
    sample_every: int = 32000  # images between sample grids (and GIF frames)
    checkpoint_every: int = 64000  # images between checkpoints
    weight_warn: float = 1e9  # seed 004's large-weight warning threshold


@dataclass
class EvalConfig:
    """Classifier-based evaluation during training (gan_core.metrics)."""

    every: int = 0  # images between evaluations; 0: only at the end of the run
    n: int = 2000  # generated samples per evaluation, from fixed noise
    objective: str = "cfd"  # which metric is the scalar ``score`` (lower is better)
    enabled: bool = True


@dataclass
class Config:
    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def steps(self) -> int:
        """Training steps at the stated batch size (the images budget rounded up)."""
        return -(-self.train.images // self.train.batch_size)


# ----------------------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _yaml11_number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; numeric fields take it as the number."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    if isinstance(value, str) and value.strip().lower().lstrip("+-.") in ("nan", "inf", "infinity"):
        return float(value.strip().lower().replace(".", ""))  # refused below as not finite
    return value


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        if value is None:  # an empty YAML value (``policy:``, ``--set augment.policy=``)
            return []
        if isinstance(value, str):  # "translation,cutout": Optuna choices must be scalars
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        raise ConfigError(f"{path}: expected a list or a comma-separated string, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if errors else ConfigError(f"{path}: expected {_type_name(tp)}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return _from_dict(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        value = _yaml11_number(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        value = _yaml11_number(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # a NaN or infinite hyperparameter trains nothing
                raise ConfigError(f"{path}: must be a finite number, got {value}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):  # YAML reads `data_dir: 2024` as a number
            return str(value)
    else:  # pragma: no cover - every field above is one of these types
        raise ConfigError(f"{path}: unsupported type {tp}")
    raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")


def _from_dict(cls: type, data: dict[str, Any], path: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(f"{where}: unknown key (valid: {', '.join(fields)})")
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = _coerce(value, hints[name], key)
        aliases = fields[name].metadata.get("aliases", {})
        if isinstance(kwargs[name], str) and kwargs[name] in aliases:  # an old name of a choice
            kwargs[name] = aliases[kwargs[name]]
        choices = fields[name].metadata.get("choices")
        if choices and kwargs[name] not in choices:
            raise ConfigError(f"{key}: {kwargs[name]!r} is not one of {', '.join(choices)}")
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a Config from plain data (e.g. YAML or a search trial's values)."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping, got {data!r}")
    cfg = _from_dict(Config, data)
    validate(cfg)
    return cfg


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def validate_model(model: ModelConfig) -> None:
    """The model section's rules, also for a ModelConfig built in code (``models.build`` calls
    this rather than checking again): every choice field and the architecture name, depths >= 1."""
    for f in dataclasses.fields(ModelConfig):
        allowed = f.metadata.get("choices")
        if allowed and getattr(model, f.name) not in allowed:
            raise ConfigError(f"model.{f.name}: {getattr(model, f.name)!r} is not one of {', '.join(allowed)}")
    if model.arch not in registry.ARCHITECTURES:
        raise ConfigError(f"model.arch: {model.arch!r} is not one of {', '.join(registry.ARCHITECTURES)}")
    for key in ("g_depth", "d_depth"):
        if getattr(model, key) < 1:
            raise ConfigError(f"model.{key}: must be >= 1, got {getattr(model, key)}")
    if model.d_width is not None and model.d_width <= 0:
        raise ConfigError(f"model.d_width: must be > 0, or null for model.width, got {model.d_width}")
    if model.g_min_channels < 0:
        raise ConfigError(f"model.g_min_channels: must be >= 0 (0: off), got {model.g_min_channels}")
    if model.mbstd_group < 0:
        raise ConfigError(f"model.mbstd_group: must be >= 0 (0: off), got {model.mbstd_group}")


def validate(cfg: Config) -> None:
    """Value checks the types cannot express; names are checked against ``gan_core.choices``
    (the registries' names), so validating a config imports no model code."""
    validate_model(cfg.model)
    if cfg.loss.name not in registry.LOSSES:
        raise ConfigError(f"loss.name: {cfg.loss.name!r} is not one of {', '.join(registry.LOSSES)}")
    positive = {
        "train.batch_size": cfg.train.batch_size,
        "train.images": cfg.train.images,
        "train.d_steps": cfg.train.d_steps,
        "model.latent_dim": cfg.model.latent_dim,
        "model.width": cfg.model.width,
        "optim.d.lr": cfg.optim.d.lr,
        "optim.g.lr": cfg.optim.g.lr,
        "eval.n": cfg.eval.n,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    for key, value in {"model.dropout": cfg.model.dropout, "model.g_dropout": cfg.model.g_dropout}.items():
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{key}: must be in [0, 1), got {value}")
    b = cfg.balance
    if b.enabled and not b.lower + b.hysteresis < b.upper - b.hysteresis:
        raise ConfigError(
            f"balance: need lower + hysteresis < upper - hysteresis, got lower={b.lower}, "
            f"upper={b.upper}, hysteresis={b.hysteresis}"
        )
    if not 0.0 <= b.smoothing < 1.0:
        raise ConfigError(f"balance.smoothing: must be in [0, 1), got {b.smoothing}")
    for key in ("log_every", "sample_every", "checkpoint_every"):
        if getattr(cfg.train, key) < 0:
            raise ConfigError(f"train.{key}: must be >= 0")
    _validate_stabilisers(cfg)
    _validate_ranges(cfg)


def _validate_stabilisers(cfg: Config) -> None:
    for name in cfg.augment.policy:
        if name not in registry.AUGMENTATIONS:
            raise ConfigError(f"augment.policy: {name!r} is not one of {', '.join(registry.AUGMENTATIONS)}")
    twice = [n for i, n in enumerate(cfg.augment.policy) if n in cfg.augment.policy[:i]]
    if twice:
        raise ConfigError(f"augment.policy: {twice[0]!r} is listed twice")
    if not 0.0 <= cfg.augment.p <= 1.0:
        raise ConfigError(f"augment.p: must be in [0, 1], got {cfg.augment.p}")
    if not 0.0 <= cfg.ema.decay < 1.0:
        raise ConfigError(f"ema.decay: must be in [0, 1), got {cfg.ema.decay}")
    if cfg.ema.start_images < 0:
        raise ConfigError(f"ema.start_images: must be >= 0, got {cfg.ema.start_images}")
    if cfg.ema.standing_stats < 0:
        raise ConfigError(f"ema.standing_stats: must be >= 0 (0: copy G's), got {cfg.ema.standing_stats}")
    if cfg.loss.r1_gamma < 0:
        raise ConfigError(f"loss.r1_gamma: must be >= 0, got {cfg.loss.r1_gamma}")
    if cfg.loss.r1_every < 1:
        raise ConfigError(f"loss.r1_every: must be >= 1, got {cfg.loss.r1_every}")


SEED_MAX = 2**32 - 1  # what numpy, Optuna and every torch generator (seed * 1000 + k) accept
BATCH_MAX = 65536  # a batch beyond this is a typo: it cannot be allocated at any useful width


def _validate_ranges(cfg: Config) -> None:
    """Ranges of the numeric keys the optimisers, layers and schedule would otherwise refuse late
    (a traceback mid-run) or take silently (a negative decay, a clip value of 0)."""
    unit = "[0, 1)"
    checks: list[tuple[str, float, bool, str]] = []  # key, value, ok, the valid range
    for side in ("d", "g"):
        o: OptimSide = getattr(cfg.optim, side)
        k = f"optim.{side}"
        checks += [(f"{k}.beta1", o.beta1, 0 <= o.beta1 < 1, unit), (f"{k}.beta2", o.beta2, 0 <= o.beta2 < 1, unit),
                   (f"{k}.alpha", o.alpha, 0 <= o.alpha < 1, unit),
                   (f"{k}.momentum", o.momentum, 0 <= o.momentum < 1, unit),
                   (f"{k}.decay", o.decay, o.decay >= 0, ">= 0")]
        if o.clip_value is not None:
            checks.append((f"{k}.clip_value", o.clip_value, o.clip_value > 0, "> 0, or null for no clipping"))
    m, t, b = cfg.model, cfg.train, cfg.balance
    checks += [
        ("model.bn_momentum", m.bn_momentum, 0 <= m.bn_momentum <= 1, "[0, 1]"),
        ("model.leaky_slope", m.leaky_slope, m.leaky_slope >= 0, ">= 0"),
        ("loss.gp_weight", cfg.loss.gp_weight, cfg.loss.gp_weight >= 0, ">= 0"),
        ("train.seed", t.seed, 0 <= t.seed <= SEED_MAX, f"0..{SEED_MAX}"),
        ("train.batch_size", t.batch_size, t.batch_size <= BATCH_MAX, f"1..{BATCH_MAX}"),
        ("train.weight_warn", t.weight_warn, t.weight_warn > 0, "> 0"),
        ("eval.every", cfg.eval.every, cfg.eval.every >= 0, ">= 0 (0: only at the end)"),
        ("balance.hysteresis", b.hysteresis, b.hysteresis >= 0, ">= 0"),
        ("balance.warmup", b.warmup, b.warmup >= 0, ">= 0"),
    ]
    for key, value, ok, valid in checks:
        if not ok:
            raise ConfigError(f"{key}: must be {'in ' if valid[0] in '[(' else ''}{valid}, got {value}")


# ----------------------------------------------------------------------------- files


def load_config(path: str | Path) -> Config:
    """Read a YAML config; errors name the file and the key path."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a config is YAML)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return from_dict(data or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write atomically: a reader never sees half a file."""
    from gan_core.io import atomic_write_text

    atomic_write_text(Path(path), dump_config(cfg))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> Config:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"--preset: {name!r} is not one of {', '.join(preset_names())}")
    return load_config(path)


def _parse_value(text: str, tp: Any = None) -> Any:
    """An override's text as a value. Keys of type str (names, paths) take the text as written,
    not parsed as YAML: a folder named ``2024``, ``csv:my: file.csv`` or ``a #b.csv`` stay
    themselves (``null``/``~`` or nothing is None for optional ones; quotes are removed)."""
    strs = (str, str | None, typing.Optional[str])  # noqa: UP045 - both spellings of the annotation
    if tp in strs:
        if tp is not str and text in ("", "null", "~", "None", "none"):
            return None
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            return text[1:-1]
        return text
    value = yaml.safe_load(text)
    if isinstance(value, str) and value.lower() in ("none", "null"):
        return None
    return value


def _field_type(dotted: str) -> Any:
    """The annotation of ``a.b.c`` in the Config tree (None for a path not in it)."""
    tp: Any = Config
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(tp):
            return None
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return None
        tp = hints[part]
    return tp


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts, refusing paths that are not in the tree."""
    node = data
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        if not isinstance(node, dict) or part not in node:
            valid = ", ".join(node) if isinstance(node, dict) else "none"
            raise ConfigError(f"{here}: unknown key (valid: {valid})")
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``key.path=value`` strings (values parsed as YAML scalars) and re-validate."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        key, text = item.split("=", 1)
        set_path(data, key.strip(), _parse_value(text.strip(), _field_type(key.strip())))
    return from_dict(data)


def apply_values(cfg: Config, values: dict[str, Any]) -> Config:
    """Set ``key.path`` to values as they are (a flag's string is not parsed) and re-validate."""
    data = to_dict(cfg)
    for key, value in values.items():
        set_path(data, key, value)
    return from_dict(data)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"d": {"lr": 1}}}`` -> ``{"optim.d.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def diff(a: Config, b: Config) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ, as ``{"optim.d.lr": (old, new)}``."""
    fa, fb = flatten(to_dict(a)), flatten(to_dict(b))
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}
