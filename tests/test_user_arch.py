"""Your own GAN by import path (model.arch: module:callable, model.options), trained with every
stabiliser, resumed bit for bit, refused in one line when it breaks the contract or its source
changed; your own feature network (eval.features) for the metrics."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.checkpoint import load_run
from gan_core.config import ConfigError, apply_overrides, from_dict
from gan_core.errors import GansearchError
from gan_core.loop import Callbacks, train
from gan_core.metrics import Evaluator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def user_pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the example package importable as ``shapes_gan`` from a temporary folder,
    and a folder of 16x16 images in three classes; sys.modules forgets it afterwards."""
    root = tmp_path / "code"
    shutil.copytree(EXAMPLES / "shapes_gan", root / "shapes_gan")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("GANSEARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for k, name in enumerate(("a", "b", "c")):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(18):
            img = np.full((16, 16, 3), 60 * k, dtype=np.uint8) + rng.integers(0, 40, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "imgs" / name / f"{i}.png")
    yield root
    for name in [m for m in sys.modules if m == "shapes_gan" or m.startswith("shapes_gan.")]:
        del sys.modules[name]


def config(tmp_path: Path, steps: int = 4, **extra) -> object:
    data = {
        "name": "user", "data": {"name": f"folder:{tmp_path / 'imgs'}"},
        "model": {"arch": "shapes_gan.nets:build", "latent_dim": 8, "output": "tanh",
                  "options": {"channels": 8}},
        "train": {"batch_size": 8, "images": 8 * steps, "log_every": 16, "sample_every": 16,
                  "checkpoint_every": 0},
        "eval": {"enabled": False},
    }
    for dotted, value in extra.items():
        section, key = dotted.split("__")
        data.setdefault(section, {})[key] = value
    return from_dict(data)


def test_every_stabiliser_trains_it_and_a_resume_is_bitwise_identical(user_pkg, tmp_path) -> None:
    cfg = apply_overrides(config(tmp_path, steps=6), [
        "loss.name=hinge", "loss.r1_gamma=1", "loss.r1_every=2", "ema.decay=0.9", "model.spectral_norm=both",
        "augment.policy=translation,color", "balance.enabled=true", "balance.warmup=2"])
    straight = train(cfg, tmp_path / "straight", progress=False)
    calls = {"n": 0}

    def stop_after_3() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    assert train(cfg, tmp_path / "resumed", progress=False, callbacks=Callbacks(should_stop=stop_after_3)).step == 3
    second = train(cfg, tmp_path / "resumed", progress=False)
    assert straight.status == second.status == "completed" and second.step == 6
    a, b = load_run(tmp_path / "straight"), load_run(tmp_path / "resumed")
    for x, y in zip(a.G.state_dict().values(), b.G.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    assert a.G.conditional and a.G.num_classes == 3  # labels reached G as int64 indices
    images = a.G(torch.zeros(2, 8), torch.tensor([0, 2]))
    assert images.shape == (2, 3, 16, 16)


def test_options_are_config_keys_and_only_for_import_paths(user_pkg, tmp_path) -> None:
    cfg = apply_overrides(config(tmp_path), ["model.options.channels=16", "model.options.norm=none"])
    assert cfg.model.options == {"channels": 16, "norm": "none"}
    G = train(cfg, tmp_path / "run", progress=False)
    assert G.status == "completed"
    with pytest.raises(ConfigError, match="model.options: mlp takes no options"):
        from_dict({"model": {"arch": "mlp", "options": {"channels": 4}}})
    with pytest.raises(ConfigError, match="not an import path"):
        from_dict({"model": {"arch": "shapes gan:build"}})


def write_module(root: Path, body: str) -> None:
    (root / "badgan").mkdir(exist_ok=True)
    (root / "badgan" / "__init__.py").write_text(
        "import torch\nfrom torch import nn\n\n" + body)
    for name in [m for m in sys.modules if m.startswith("badgan")]:
        del sys.modules[name]


@pytest.mark.parametrize(("body", "message"), [
    ("def build(cfg, shape, k):\n    return nn.Linear(2, 2)\n", "must return \\(G, D\\)"),
    ("class G(nn.Module):\n    def forward(self, z, y=None):\n        return z\n"
     "def build(cfg, shape, k):\n    return G(), G()\n", "must return \\(N, C, H, W\\)"),
    ("class G(nn.Module):\n    def forward(self, z, y=None):\n        return torch.full((len(z), 3, 16, 16), 3.0)\n"
     "def build(cfg, shape, k):\n    return G(), G()\n", "outside model.output tanh"),
    ("class G(nn.Module):\n    def forward(self, z, y=None):\n        return torch.zeros(len(z), 3, 16, 16)\n"
     "class D(nn.Module):\n    def forward(self, x, y=None):\n        return torch.zeros(len(x), 2)\n"
     "def build(cfg, shape, k):\n    return G(), D()\n", "logits \\(N,\\) or \\(N, 1\\)"),
    ("def build(cfg, shape, k):\n    raise ValueError('no such width')\n", "raised ValueError: no such width"),
    ("x = 1\n", "has no callable 'build'"),
])
def test_a_broken_contract_is_one_line_naming_the_module(user_pkg, tmp_path, body, message) -> None:
    write_module(user_pkg, body)
    cfg = apply_overrides(config(tmp_path), ["model.arch=badgan:build", "model.options.channels=8"])
    with pytest.raises(GansearchError, match=message) as e:
        train(cfg, tmp_path / "run", progress=False)
    assert "\n" not in str(e.value) and "badgan" in str(e.value)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_checkpoint_refuses_a_changed_or_missing_module(user_pkg, tmp_path) -> None:
    cfg = config(tmp_path)
    train(cfg, tmp_path / "run", progress=False)
    load_run(tmp_path / "run")  # unchanged: loads
    nets = user_pkg / "shapes_gan" / "nets.py"
    nets.write_text(nets.read_text() + "\n# an edit\n")
    with pytest.raises(GansearchError, match="shapes_gan.nets:build has changed since this checkpoint") as e:
        load_run(tmp_path / "run")
    assert "\n" not in str(e.value)
    with pytest.raises(GansearchError, match="has changed"):
        train(cfg, tmp_path / "run", progress=False)  # a resume too
    shutil.rmtree(user_pkg / "shapes_gan")
    for name in [m for m in sys.modules if m.startswith("shapes_gan")]:
        del sys.modules[name]
    with pytest.raises(GansearchError, match="cannot import shapes_gan"):
        load_run(tmp_path / "run")


FEATURES = """
import torch
from torch import nn

def extractor(shape):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(shape[0], 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(6))
"""


def test_own_features_score_unlabelled_images_without_the_class_metrics(user_pkg, tmp_path) -> None:
    (user_pkg / "feats.py").write_text(FEATURES)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, p in enumerate(sorted((tmp_path / "imgs").rglob("*.png"))):
        shutil.copy(p, flat / f"{i}.png")
    data = from_dict({"data": {"name": f"folder:{flat}"}}).data
    ev = Evaluator(data, features="feats:extractor")
    x = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8)
    out = ev(x)
    assert {"cfd_12", "kid_12", "precision_12", "recall_12", "density_12", "manifold_coverage_12"} <= set(out)
    assert not {"cis_12", "coverage_12", "class_kl_12"} & set(out)
    real, _ = __import__("gan_core.data", fromlist=["load_dataset"]).load_dataset(data, "train").take(12)
    assert ev(real.contiguous())["cfd_12"] < out["cfd_12"]  # real images sit closer than noise
    with pytest.raises(ConfigError, match="cis needs class probabilities"):
        Evaluator(data, features="feats:extractor", objective="cis")
    # The same network as TorchScript, from a file.
    torch.jit.save(torch.jit.trace(ev.classifier.model, torch.zeros(2, 3, 16, 16)), tmp_path / "f.pt")
    scripted = Evaluator(data, features=str(tmp_path / "f.pt"))
    assert scripted(x)["cfd_12"] == pytest.approx(out["cfd_12"], rel=1e-5)
    # And as a torch.export program (TorchScript's successor), with a dynamic batch size.
    program = torch.export.export(ev.classifier.model, (torch.zeros(2, 3, 16, 16),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "f.pt2")
    exported = Evaluator(data, features=str(tmp_path / "f.pt2"))
    assert exported(x)["cfd_12"] == pytest.approx(out["cfd_12"], rel=1e-5)
    # Labelled data scored by the same network: the labels name the data's classes (3 here).
    labelled = Evaluator(from_dict({"data": {"name": f"folder:{tmp_path / 'imgs'}"}}).data, features="feats:extractor")
    assert labelled.num_classes == 3 and "cfd_12" in labelled(x, torch.arange(12) % 3)
    with pytest.raises(GansearchError, match=r"labels must be in 0..2, got 0..3"):
        labelled(x, torch.arange(12) % 4)
    with pytest.raises(GansearchError, match="not a TorchScript file"):
        (tmp_path / "junk.pt").write_bytes(b"junk")
        Evaluator(data, features=str(tmp_path / "junk.pt"))


def test_inception_features_from_a_local_weights_file(user_pkg, tmp_path) -> None:
    """The plumbing of the standard FID network, offline: a stand-in with Inception-v3's layers
    (random weights in torch-fidelity's layout), loaded from a file as the real weights would be."""
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    stand_in = fidelity.FeatureExtractorInceptionV3.__new__(fidelity.FeatureExtractorInceptionV3)
    torch.nn.Module.__init__(stand_in)
    # Build the layers without loading weights: the constructor's body up to the load.
    init = fidelity.FeatureExtractorInceptionV3.__init__
    weights = tmp_path / "inception.pth"
    torch.manual_seed(0)
    try:
        init(stand_in, "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    except FileNotFoundError:
        pass
    torch.save(stand_in.state_dict(), weights)
    data = from_dict({"data": {"name": f"folder:{tmp_path / 'imgs'}"}}).data
    ev = Evaluator(data, features=f"inception:{weights}", reference_n=8)
    out = ev(torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8))
    assert np.isfinite(out["cfd_6"]) and "cis_6" not in out
    assert ev.classifier.embed(torch.zeros(1, 3, 16, 16, dtype=torch.uint8)).features.shape == (1, 2048)


def test_explore_draws_it_and_refuses_class_blends_in_one_line(user_pkg, tmp_path) -> None:
    """The explore modes that take class indices draw it; interpolate and clock blend labels,
    which the contract's G (int64 labels) cannot take: one line naming the modes that work."""
    from search.explore import explore

    train(config(tmp_path, steps=2), tmp_path / "run", progress=False)
    for what in ("samples", "morph", "arith", "walk"):
        out = tmp_path / f"{what}.{'gif' if what == 'walk' else 'png'}"
        assert explore(tmp_path / "run", what, out) == [out] and out.stat().st_size > 0
    with pytest.raises(GansearchError, match=r"^interpolate: blends class labels, and model.arch shapes_gan.nets:build "
                                             r"takes class indices only .*; modes that work here: samples, morph"):
        explore(tmp_path / "run", "interpolate", tmp_path / "i.png", classes=(0, 2))
    with pytest.raises(GansearchError, match=r"^clock: blends class labels"):
        explore(tmp_path / "run", "clock", tmp_path / "c.gif")
