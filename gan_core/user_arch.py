"""Your own GAN, by import path: ``model.arch: "my_pkg.nets:build"``.

The contract (the one place it is written; the README repeats it)::

    build(model_cfg, shape, num_classes) -> (G, D)

- ``model_cfg`` is the run's ``ModelConfig``: ``latent_dim``, ``width``, ``dropout`` ... and
  ``options``, a free mapping of your own keys (``model.options.channels`` in a config or a
  search space); ``shape`` is ``(C, H, W)`` of the data (``data.resolution``, ``data.channels``);
  ``num_classes`` is the number of classes, 0 for unlabeled data.
- ``G(z, y)`` takes ``z`` of shape ``(N, model.latent_dim)`` and ``y``, int64 labels ``(N,)``
  (or None for unlabeled data; ignore it for an unconditional GAN), and returns images
  ``(N, C, H, W)`` in [-1, 1] (``model.output: tanh``; with ``sigmoid`` in [0, 1]).
- ``D(x, y)`` takes such images and labels and returns logits of shape ``(N,)`` or ``(N, 1)``
  (no sigmoid: every loss works on logits).
- Both are ``torch.nn.Module``s; initialise the weights in ``build`` (torch's global RNG is
  seeded from ``train.seed`` before it is called, so a run repeats exactly).

Everything else of gansearch works on them unchanged: every loss, the balance controller, EMA,
spectral norm (``model.spectral_norm`` wraps your Linear and Conv layers), DiffAugment, R1,
checkpoints and exact resume, search, review, export, retrain, ``sample`` and ``score``. The
module travels with a search to every node (the driver ships its package to the trials), and a
checkpoint records the import path and a digest of the package's source: loading it where the
module is missing or has changed is a one-line error. An example (``examples/shapes_gan``)::

    import torch
    from torch import nn

    def build(model_cfg, shape, num_classes):
        c, h, w = shape
        ch = int(model_cfg.options.get("channels", 64))
        return Generator(model_cfg.latent_dim, ch, shape, num_classes), Discriminator(ch, shape, num_classes)

    class Generator(nn.Module):
        def __init__(self, latent_dim, ch, shape, num_classes):
            super().__init__()
            c, h, w = shape
            self.embed = nn.Embedding(max(num_classes, 1), latent_dim)
            self.fc = nn.Linear(latent_dim, ch * (h // 4) * (w // 4))
            self.net = nn.Sequential(
                nn.Unflatten(1, (ch, h // 4, w // 4)), nn.BatchNorm2d(ch), nn.ReLU(),
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1), nn.BatchNorm2d(ch // 2), nn.ReLU(),
                nn.ConvTranspose2d(ch // 2, c, 4, 2, 1), nn.Tanh())

        def forward(self, z, y=None):
            return self.net(self.fc(z if y is None else z * self.embed(y)))

    class Discriminator(nn.Module):
        def __init__(self, ch, shape, num_classes):
            super().__init__()
            c, h, w = shape
            self.net = nn.Sequential(
                nn.Conv2d(c, ch // 2, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Conv2d(ch // 2, ch, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())
            self.out = nn.Linear(ch * (h // 4) * (w // 4), 1)
            self.embed = nn.Embedding(max(num_classes, 1), ch * (h // 4) * (w // 4))

        def forward(self, x, y=None):
            h = self.net(x)
            return self.out(h).flatten() + (0 if y is None else (h * self.embed(y)).sum(1))
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_core.config import ModelConfig
from gan_core.errors import GansearchError
from gan_core.layers import OUTPUT_RANGES, Discriminator, Generator, Shape


class ArchError(GansearchError):
    """An import-path architecture that does not import, or breaks the contract above."""


def split_path(arch: str) -> tuple[str, str]:
    module, _, attr = arch.partition(":")
    return module, attr


def import_user_module(name: str) -> Any:
    """Import a user's module as ``python -m`` would from this folder: installed packages and
    $PYTHONPATH first, then the current folder (which a console script like ``gansearch`` does not
    put on ``sys.path`` itself). ImportError if neither has it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        here = str(Path.cwd())
        if here in sys.path or not (exc.name and name.startswith(exc.name.split(".")[0])):
            raise
        sys.path.append(here)
        return importlib.import_module(name)


def load_builder(arch: str) -> Callable[..., Any]:
    """The callable ``module:callable`` names, or a one-line ArchError naming the module."""
    module_name, attr = split_path(arch)
    try:
        module = import_user_module(module_name)
    except ImportError as exc:
        raise ArchError(f"model.arch: cannot import {module_name} ({exc}); install it, put its folder on "
                        "PYTHONPATH, or run from the folder that holds it") from None
    except Exception as exc:  # the user's module raised while it was imported
        raise ArchError(f"model.arch: importing {module_name} failed: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:200]}") from None
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise ArchError(f"model.arch: {module_name} has no callable {attr!r}")
    return builder


def package_root(arch: str) -> Path:
    """The folder (a package) or file (a module) of the architecture's top-level package: what
    a search ships to its trials and what the source digest covers."""
    load_builder(arch)
    return module_root(split_path(arch)[0])


def module_root(module_name: str) -> Path:
    """The folder or file of an imported module's top-level package."""
    top = module_name.split(".")[0]
    module = sys.modules[top]
    paths = list(getattr(module, "__path__", []))
    if paths:
        return Path(paths[0]).resolve()
    file = getattr(module, "__file__", None)
    if not file:
        raise ArchError(f"model.arch: {top} has no source files (a built-in or namespace module)")
    return Path(file).resolve()


def source_digest(arch: str) -> str:
    """sha256 (hex, 16) of every ``.py`` file of the architecture's top-level package, by
    relative path: an edit anywhere in the package changes it."""
    root = package_root(arch)
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    h = hashlib.sha256()
    for f in files:
        if "__pycache__" in f.parts:
            continue
        h.update(f"{f.relative_to(root.parent)}\0".encode())
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def check_source(saved: dict[str, Any] | None, arch: str, where: Path) -> None:
    """Refuse, in one line, a checkpoint whose architecture's source is not the one here."""
    if not saved:
        return
    now = source_digest(arch)
    if saved.get("digest") != now:
        raise ArchError(f"{where}: model.arch {arch} has changed since this checkpoint was written (source "
                        f"digest {saved.get('digest')} then, {now} now); restore that source, or train anew")


class UserGenerator(Generator):
    """Your G behind the toolkit's Generator: labels go in as int64 indices (one-hot or
    soft label vectors are turned into indices; a mix of classes has no index and is refused)."""

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z, as_indices(y, self.num_classes) if self.conditional else None)


class UserDiscriminator(Discriminator):
    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.features(x, as_indices(y, self.num_classes) if self.conditional else None)
        return out.reshape(out.shape[0]) if out.dim() == 2 and out.shape[1] == 1 else out


def as_indices(y: Tensor | None, num_classes: int) -> Tensor | None:
    if y is None or not y.dtype.is_floating_point:
        return y
    top, idx = y.max(dim=1)
    if not bool(((top == 1) & (y.sum(dim=1) == 1)).all()):
        raise ArchError("an import-path architecture takes class indices; a mix of classes (interpolate, "
                        "clock) has no index")
    return idx


def build(cfg: ModelConfig, shape: Shape, num_classes: int) -> tuple[Generator, Discriminator]:
    """Call your ``build`` and check what it returns against the contract (a batch of two)."""
    builder = load_builder(cfg.arch)
    try:
        pair = builder(cfg, shape, num_classes)
    except GansearchError:
        raise
    except Exception as exc:
        raise ArchError(f"model.arch: {cfg.arch} raised {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:200]}") from None
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(m, nn.Module) for m in pair)):
        raise ArchError(f"model.arch: {cfg.arch} must return (G, D), two torch.nn.Module, got {type(pair).__name__}")
    conditional = num_classes > 0
    G = UserGenerator(pair[0], arch=cfg.arch, latent_dim=cfg.latent_dim, latent_dist=cfg.latent_dist,
                      shape=shape, output=cfg.output, num_classes=num_classes, conditional=conditional)
    D = UserDiscriminator(pair[1], nn.Sequential(), arch=cfg.arch, shape=shape, num_classes=num_classes,
                          conditional=conditional)
    _probe(G, D, cfg, shape, num_classes)
    return G, D


def _probe(G: Generator, D: Discriminator, cfg: ModelConfig, shape: Shape, num_classes: int) -> None:
    """One forward of each on two samples, in eval mode and without gradients (no weight, no
    running statistic and no RNG stream of the run changes), checked against the contract."""
    z = torch.rand(2, cfg.latent_dim, generator=torch.Generator().manual_seed(0)) * 2 - 1
    y = torch.arange(2) % num_classes if num_classes else None
    modes = [(m, m.training) for m in (G, D)]
    lo, hi = OUTPUT_RANGES[cfg.output]
    try:
        G.eval()
        D.eval()
        with torch.no_grad():
            try:
                x = G(z, y)
            except Exception as exc:
                raise ArchError(f"model.arch: G of {cfg.arch} failed on z (2, {cfg.latent_dim}) and y "
                                f"{None if y is None else '(2,) int64'}: {type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:160]}") from None
            if not isinstance(x, Tensor) or tuple(x.shape) != (2, *shape):
                got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ArchError(f"model.arch: G of {cfg.arch} must return (N, C, H, W) = (2, {', '.join(map(str, shape))}) "
                                f"for this data, got {got}")
            if not x.is_meta and bool((x < lo - 1e-3).any() or (x > hi + 1e-3).any()):  # meta: shapes only
                raise ArchError(f"model.arch: G of {cfg.arch} returned values in [{x.min().item():.3g}, "
                                f"{x.max().item():.3g}], outside model.output {cfg.output}'s [{lo:g}, {hi:g}] "
                                "(end G with tanh for [-1, 1] and set model.output: tanh)")
            try:
                logits = D(x, y)
            except Exception as exc:
                raise ArchError(f"model.arch: D of {cfg.arch} failed on images {tuple(x.shape)}: "
                                f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}") from None
            if not isinstance(logits, Tensor) or tuple(logits.shape) != (2,):
                raise ArchError(f"model.arch: D of {cfg.arch} must return logits (N,) or (N, 1), got "
                                f"{tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    finally:
        for m, training in modes:
            m.train(training)
