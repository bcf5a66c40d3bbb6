"""The names of every registry, in one light module.

``config`` validates a config against these names without importing the modules that hold the
registries (which import ``config`` for their types: no import circle, no torch for a YAML check);
``models``, ``losses`` and ``augment`` key their registries by them, and a test keeps the two equal.
"""

from __future__ import annotations

ARCHITECTURES = ("mlp", "dcgan-upsample", "dcgan-transpose", "cgan", "dcgan-lite")  # models.ARCHITECTURES
LOSSES = ("bce", "minimax", "lsgan", "hinge", "wgan-gp")  # losses.LOSSES
AUGMENTATIONS = ("translation", "cutout", "color")  # augment.AUGMENTATIONS
