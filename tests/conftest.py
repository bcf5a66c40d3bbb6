"""Shared fixtures: a per-session cache, tiny configs, and the ``realdata`` marker.

The suite runs anywhere: MNIST ships inside the package (gan_core/_data), and a test that needs
other real files (Fashion-MNIST) is marked ``realdata`` and skipped unless $GANSEARCH_DATA names a
folder holding them (`.ci/run` sets it). No test reads a path outside the repository otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# Classifiers and reference statistics are cached; one cache per machine keeps the suite fast
# after the first run, and a fresh CI machine builds it once.
os.environ.setdefault("GANSEARCH_CACHE", str(Path(os.environ.get("TMPDIR", "/tmp")) / "gansearch-test-cache"))
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# Tiny models run fastest on one thread; more threads only fight each other here.
torch.set_num_threads(1)

# Modules that start a Ray (in the test process or a search's own). `make test` runs two
# pytest-xdist workers, each taking whole modules (--dist loadfile, so module fixtures are built
# once); these modules count as one, so one Ray at a time runs beside the other worker's torch
# tests instead of two Rays fighting for a small machine's CPUs.
RAY_MODULES = {"test_autoscaler", "test_driver", "test_examples", "test_grow", "test_ray_address", "test_review",
               "test_safety", "test_shipping", "test_trackers", "test_tune", "test_watch"}


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook; absent without xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """--dist loadfile with the Ray modules as one file. (xdist_group marks would say the same,
    but --dist loadgroup does not group under pytest 9: it renames node ids pytest no longer
    reads.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class RayModulesTakeTurns(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "ray" if Path(module).stem in RAY_MODULES else module

    return RayModulesTakeTurns(config, log)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("realdata") and not os.environ.get("GANSEARCH_DATA"):
        pytest.skip("needs real data files: set GANSEARCH_DATA to a folder holding FashionMNIST/raw and MNIST/raw")


TINY_MODEL = {
    "mlp": {"width": 0.0625, "g_depth": 2, "d_depth": 2},
    "dcgan-upsample": {"width": 0.0625},
    "dcgan-transpose": {"width": 0.125},
    "cgan": {"width": 0.0625},
    "dcgan-lite": {"width": 0.125},
}
PRESET_OF = {
    "mlp": "mnist-mlp",
    "dcgan-upsample": "mnist-dcgan",
    "dcgan-transpose": "fashion-dcgan",
    "cgan": "mnist-cgan",
    "dcgan-lite": "mnist-dcgan-lite",
}


@pytest.fixture
def tiny_cfg():
    """Factory: a real preset shrunk to tiny widths, batch 16 and a few steps."""
    from gan_core.config import apply_overrides, load_preset

    def make(arch: str = "dcgan-upsample", loss: str | None = None, steps: int = 4, sets: list[str] | None = None):
        cfg = load_preset(PRESET_OF[arch])
        extra = list(sets or [])
        sets = [f"model.{k}={v}" for k, v in TINY_MODEL[arch].items()]
        sets += [
            "data.name=mnist",
            "train.batch_size=16",
            f"train.images={16 * steps}",
            "train.log_every=32",
            "train.sample_every=32",
            "train.checkpoint_every=0",
            "eval.enabled=false",
        ]
        if loss:
            sets.append(f"loss.name={loss}")
        sets += extra
        return apply_overrides(cfg, sets)

    return make
