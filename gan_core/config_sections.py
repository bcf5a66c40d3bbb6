"""The typed config tree: one dataclass per section (gan_core.config loads, checks and saves it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _choices(*names: str) -> dict[str, tuple[str, ...]]:
    return {"choices": names}


@dataclass
class DataConfig:
    """Which images to learn. ``name``: mnist, fashion, color-mnist, csv:PATH, or your own images
    as folder:PATH (class subfolders give labels) or npz:PATH (gan_core.data.image_files)."""

    name: str = "mnist"
    data_dir: str | None = None  # None: --data-dir, $GANSEARCH_DATA, then the embedded MNIST
    background: str | None = None  # color-mnist: an image file; None: generated colour fields
    change_colors: bool = False  # color-mnist: seed 000's random colour shift of the background
    # What the GAN sees: a square side and 1 (grey) or 3 (RGB) channels; None: the source's own
    # (color-mnist: 64x64 RGB). ``image_size``, color-mnist's name for the side before, is read
    # as ``resolution`` (config.from_dict), so saved configs and searches keep loading.
    resolution: int | None = None
    channels: int | None = field(default=None, metadata={"choices": (None, 1, 3)})


@dataclass
class ModelConfig:
    """Architecture by name plus the knobs every architecture understands.

    ``width`` multiplies the seed's channel or unit counts; ``g_depth``/``d_depth`` count hidden
    layers (mlp) or convolution blocks (dcgan-*, cgan); ``bn_momentum`` is Keras' convention
    (0.9 keeps 90 % of the running mean), as in the seeds.
    """

    # A built-in architecture by name, or your own by import path: "my_pkg.nets:build" (the
    # contract is in gan_core/user_arch.py); ``options`` is passed to it as model_cfg.options.
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
    # An import-path architecture's own keys, any YAML values (a space searches them as
    # model.options.KEY); built-in architectures take none.
    options: dict[str, Any] = field(default_factory=dict)


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
    each transform is applied to each image. Before them, ``blur_sigma`` > 0 blurs every image
    D sees with a Gaussian of that standard deviation in pixels, falling linearly to none over
    the first ``blur_images`` images (StyleGAN3's D blur: coarse structure first).
    """

    policy: list[str] = field(default_factory=list)
    p: float = 1.0
    blur_sigma: float = 0.0
    blur_images: int = 0


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
    # The network whose features the metrics compare: None, the reference classifier trained on
    # the data's labels; "my_pkg.feats:extractor" or a TorchScript file, your own; or
    # "inception:WEIGHTS_FILE", the standard Inception-v3 of FID papers (gan_core.metrics.features).
    features: str | None = None


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
