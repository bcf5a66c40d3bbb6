"""explore: every picture mode on tiny models trained with the real loop, checked as images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.checkpoint import load_run
from gan_core.config import apply_overrides, load_preset
from gan_core.errors import GansearchError
from gan_core.loop import train
from search import explore as ex
from search.cli import main

TINY = {  # as tests/conftest.py's tiny_cfg, built here once per module for all four architectures
    "mlp": ("mnist-mlp", ["model.width=0.0625", "model.g_depth=2", "model.d_depth=2"]),
    "dcgan-upsample": ("mnist-dcgan", ["model.width=0.0625"]),
    "dcgan-transpose": ("fashion-dcgan", ["model.width=0.125"]),
    "cgan": ("mnist-cgan", ["model.width=0.0625"]),
}
TILE = ex.TILE  # 28-pixel digits are drawn 4x


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for arch, (preset, sets) in TINY.items():
        cfg = apply_overrides(load_preset(preset), sets + [
            "data.name=mnist", "train.batch_size=16", "train.images=48", "train.log_every=32",
            "train.sample_every=0", "train.checkpoint_every=0", "eval.enabled=false"])
        out[arch] = tmp_path_factory.mktemp(arch)
        assert train(cfg, out[arch], device="cpu", progress=False).status == "completed"
    return out


def red(im: Image.Image) -> int:
    x = np.asarray(im.convert("RGB")).astype(int)
    return int(((x[..., 0] > 200) & (x[..., 1] < 60) & (x[..., 2] < 60)).sum())


def frames(path) -> int:
    with Image.open(path) as im:
        return im.n_frames


@pytest.mark.parametrize("arch", list(TINY))
def test_png_modes_on_every_architecture(runs, arch, tmp_path):
    written = ex.explore(runs[arch], "morph", tmp_path / "m.png", seed=1)
    with Image.open(written[0]) as im:  # ten steps of 112 px; conditional runs: one row per class
        assert im.width >= 10 * TILE
        assert im.height >= (10 if arch == "cgan" else 1) * TILE
        assert im.height < (12 if arch == "cgan" else 2) * TILE
    with Image.open(ex.explore(runs[arch], "samples", tmp_path / "s.png")[0]) as im:
        side = 10 if arch == "cgan" else 8  # conditional: ten noise rows x ten classes
        assert side * 84 <= im.width < (side + 1) * 84 and side * 84 <= im.height < (side + 1.5) * 84
    with Image.open(ex.explore(runs[arch], "arith", tmp_path / "a.png")[0]) as im:
        assert im.width >= 3 * 2 * TILE and 2 * TILE <= im.height < 3 * TILE  # a, b, b - a
    q, answers = ex.explore(runs[arch], "quiz", tmp_path / "q.png", seed=3)
    assert answers.name == "q-answers.png"
    with Image.open(q) as a, Image.open(answers) as b:
        assert a.size == b.size and a.width >= 10 * TILE and 4 * TILE <= a.height < 5 * TILE
        assert red(a) == 0 and red(b) > 20 * 4 * TILE  # twenty red frames on the answers only


@pytest.mark.parametrize("arch", ["mlp", "cgan"])
def test_walk_is_an_animated_gif(runs, arch, tmp_path):
    path = ex.explore(runs[arch], "walk", tmp_path / "w.gif", seed=2)[0]
    assert frames(path) == 6 * 16
    with Image.open(path) as im:
        if arch == "cgan":  # one digit per class in a row
            assert im.width >= 10 * 84 and im.height < 2 * 84
        else:  # a 4x4 grid of walks
            assert im.width >= 4 * 84 and im.height >= 4 * 84


def test_conditional_modes(runs, tmp_path):
    path = ex.explore(runs["cgan"], "interpolate", tmp_path / "i.png", classes=(7, 9))[0]
    with Image.open(path) as im:
        assert im.width >= 10 * TILE and im.height >= 10 * TILE
    path = ex.explore(runs["cgan"], "clock", tmp_path / "c.gif")[0]
    assert frames(path) == 10 * 20
    with Image.open(path) as im:
        assert im.size == (168, 168)
    one = ex.explore(runs["cgan"], "morph", tmp_path / "m7.png", label=7)[0]
    with Image.open(one) as im:
        assert im.height < 2 * TILE  # a fixed label: one strip


def test_quiz_mixes_half_and_half(runs):
    G = load_run(runs["mlp"]).G
    real = torch.zeros(20, 1, 28, 28, dtype=torch.uint8)
    _, _, fake = ex.quiz(G, real, seed=0)
    assert fake.sum() == 20 and len(fake) == 40
    _, _, again = ex.quiz(G, real, seed=0)
    _, _, other = ex.quiz(G, real, seed=1)
    assert torch.equal(fake, again) and not torch.equal(fake, other)


def test_same_seed_same_picture(runs, tmp_path):
    a = ex.explore(runs["dcgan-upsample"], "arith", tmp_path / "a.png", seed=5)[0].read_bytes()
    b = ex.explore(runs["dcgan-upsample"], "arith", tmp_path / "b.png", seed=5)[0].read_bytes()
    c = ex.explore(runs["dcgan-upsample"], "arith", tmp_path / "c.png", seed=6)[0].read_bytes()
    assert a == b and a != c


def test_slerp_and_ease():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(ex.slerp(a, b, 0.0), a) and torch.allclose(ex.slerp(a, b, 1.0), b)
    assert torch.allclose(ex.slerp(a, b, 0.5).norm(), torch.tensor(3.0))  # stays on the sphere
    assert torch.allclose(ex.slerp(a, a, 0.3), a)  # parallel: no division by zero
    assert ex.ease(0.0) == 0.0 and abs(ex.ease(1.0) - 1.0) < 1e-12 and abs(ex.ease(0.5) - 0.5) < 1e-12


@pytest.mark.parametrize(
    "args, message",
    [
        (["interpolate", "7", "9", "--out", "i.png"], "needs a conditional run (arch cgan)"),
        (["clock", "--out", "c.gif"], "modes that work here: samples, morph, arith, quiz, walk"),
        (["morph", "--out", "m.gif"], "--out: morph writes a PNG; give a file ending in .png"),
        (["walk", "--out", "w.png"], "--out: walk writes an animated GIF"),
        (["morph", "--label", "3", "--out", "m.png"], "--label: morph on an unconditional run"),
        (["morph", "3", "--out", "m.png"], "morph: takes no class arguments"),
    ],
)
def test_bad_requests_are_one_line(runs, tmp_path, capsys, args, message):
    assert main(["explore", str(runs["mlp"]), *[str(tmp_path / a) if a.endswith((".png", ".gif")) else a
                                                for a in args]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_classes_and_missing_run(runs, tmp_path, capsys):
    assert main(["explore", str(runs["cgan"]), "interpolate", "7", "--out", str(tmp_path / "i.png")]) == 2
    assert "give two classes" in capsys.readouterr().err
    with pytest.raises(GansearchError, match="class B=12 is not a class"):
        ex.explore(runs["cgan"], "interpolate", tmp_path / "i.png", classes=(1, 12))
    with pytest.raises(GansearchError, match="--label: 10 is not a class"):
        ex.explore(runs["cgan"], "walk", tmp_path / "w.gif", label=10)
    assert main(["explore", str(tmp_path / "nope"), "morph", "--out", str(tmp_path / "m.png")]) == 2
    assert "no checkpoint here" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))  # nothing half-written
