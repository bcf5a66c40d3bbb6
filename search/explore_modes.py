"""The pictures ``gansearch explore`` draws, by name: light (no torch), so that ``--help`` lists them
without loading a model library; ``search.explore`` draws them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    suffix: str  # what --out must end in
    conditional_only: bool
    help: str


MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("samples", ".png", False, "a grid of samples: 8x8, or for conditional runs one row per noise "
                                   "vector and one column per class (seed 004)"),
    Mode("morph", ".png", False, "a noise vector swept from all -1 to all +1 in ten steps (seed 002)"),
    Mode("arith", ".png", False, "images of noise vectors a, b and b - a (seed 002)"),
    Mode("quiz", ".png", False, "40 real and generated images mixed at random, plus FILE-answers.png "
                                "with the generated ones outlined in red (seed 002)"),
    Mode("interpolate", ".png", True, "conditional runs: class A blended into class B over ten steps, "
                                      "one row per noise vector (seed 004)"),
    Mode("clock", ".gif", True, "conditional runs: digits cross-fading 0 -> 9 -> 0 in label space (seed 004)"),
    Mode("walk", ".gif", False, "a smooth spherical interpolation between random latent points"),
)}
