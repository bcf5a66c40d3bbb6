"""Reference classifiers: a small, fast CNN per dataset, trained by the toolkit and cached.

The network is built for this 2-core CPU: strided convolutions shrink the image at once (a
full-resolution first layer costs more in memory traffic than in arithmetic), then one dense
layer gives the 128-d penultimate features the Frechet distance and the k-NN manifolds use::

    conv5x5/2 (w) - conv3x3/2 (2w) - conv3x3 (2w) - dense (128, BN) = features - ReLU - dropout - dense (K)

Images larger than ``max_side`` (color-mnist's 64x64) are area-resized to ``max_side`` first.
Training is seeded and draws batches only from its own generator (deterministic for a given
thread count), with Adam on a one-cycle schedule for ``epochs`` passes.

Example::

    clf = get_classifier(DataConfig(name="mnist"))     # trains once, then loads from the cache
    feats, probs = clf.embed(images_uint8)            # (N, 128) float32, (N, 10) float64
    clf.test_accuracy                                  # 0.99...
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_core.config import DataConfig
from gan_core.errors import DataError
from gan_core.metrics import cache
from gan_core.metrics.metrics import manifold_embedding

VERSION = 1  # bump when the network, preprocessing or training procedure changes


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that defines a reference classifier (all of it goes into the cache key)."""

    width: int = 32  # channels of the first convolution (then 2x)
    features: int = 128  # penultimate (feature) dimension
    dropout: float = 0.3
    epochs: float = 2.0
    min_steps: int = 400  # small datasets (csv) still get enough updates
    batch_size: int = 128
    lr: float = 3e-3  # one-cycle peak learning rate
    weight_decay: float = 0.0
    seed: int = 0
    max_side: int = 32  # larger images are area-resized to this side first


# Per-dataset departures from the defaults (Fashion needs a third epoch for >= 90 %).
DEFAULT_CONFIGS: dict[str, ClassifierConfig] = {
    "fashion": ClassifierConfig(epochs=3.0),
}


def default_config(dataset_name: str) -> ClassifierConfig:
    return DEFAULT_CONFIGS.get(dataset_name, ClassifierConfig())


# ----------------------------------------------------------------------------- network


def input_side(side: int, max_side: int) -> int:
    return side if side <= max_side else max_side


def preprocess(images: Tensor, max_side: int) -> Tensor:
    """uint8 (N, C, H, W) -> float in [0, 1], area-resized when larger than ``max_side``."""
    x = images.float().div_(255.0)
    h, w = x.shape[-2:]
    if h > max_side or w > max_side:
        x = F.interpolate(x, size=(input_side(h, max_side), input_side(w, max_side)), mode="area")
    return x


class Classifier(nn.Module):
    """The reference CNN; ``forward`` returns logits, ``features_and_logits`` both."""

    def __init__(self, shape: tuple[int, int, int], num_classes: int, cfg: ClassifierConfig) -> None:
        super().__init__()
        c, h, w = shape
        h, w = input_side(h, cfg.max_side), input_side(w, cfg.max_side)
        wd = cfg.width
        self.shape = tuple(shape)
        self.max_side = cfg.max_side
        self.num_classes = num_classes
        self.body = nn.Sequential(
            nn.Conv2d(c, wd, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(wd), nn.ReLU(inplace=True),
            nn.Conv2d(wd, 2 * wd, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * wd),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * wd, 2 * wd, 3, padding=1, bias=False), nn.BatchNorm2d(2 * wd), nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(2 * wd * math.ceil(h / 4) * math.ceil(w / 4), cfg.features, bias=False),
            nn.BatchNorm1d(cfg.features),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.features, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.body(x)
        return f, self.head(f)

    def parts(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Penultimate features, logits, and the last convolution block's globally pooled output."""
        h, pooled = x, None
        for layer in self.body:
            if isinstance(layer, nn.Flatten):
                pooled = h.mean(dim=(2, 3))
            h = layer(h)
        assert pooled is not None
        return h, self.head(h), pooled

    def fused(self) -> Classifier:
        """An inference copy with every batch norm folded into the layer before it (~15 % faster)."""
        from copy import deepcopy

        from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

        self.eval()
        out = deepcopy(self)
        layers = list(self.body)
        fused: list[nn.Module] = []
        i = 0
        while i < len(layers):
            layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
                fused.append(fuse_conv_bn_eval(layer, nxt))
                i += 2
            elif isinstance(layer, nn.Linear) and isinstance(nxt, nn.BatchNorm1d):
                fused.append(fuse_linear_bn_eval(layer, nxt))
                i += 2
            else:
                fused.append(deepcopy(layer))
                i += 1
        out.body = nn.Sequential(*fused)
        return out.eval()


# ----------------------------------------------------------------------------- training


def _progress(total: int, desc: str, progress: bool | None) -> Any:
    """The loop's progress display, or None. None: only on a terminal (Ray workers and CI logs
    stay clean); True: a bar on a terminal, plain lines when stderr is redirected."""
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    from gan_core.events import progress_bar

    return progress_bar(total, 0, desc)


@torch.no_grad()
def accuracy(model: Classifier, images: Tensor, labels: Tensor, *, batch: int = 1000,
             device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy of ``model`` on uint8 ``images`` (eval mode)."""
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        x = preprocess(images[i:i + batch].to(device), model.max_side)
        correct += int((model(x).argmax(1).cpu() == labels[i:i + batch].cpu()).sum())
    return correct / max(len(images), 1)


def train_classifier(train: Any, test: Any, cfg: ClassifierConfig = ClassifierConfig(), *,
                     device: torch.device | str = "cpu", progress: bool | None = None,
                     desc: str = "classifier") -> tuple[Classifier, dict[str, Any]]:
    """Train on ``train`` (a gan_core.data.Dataset), measure on ``test``; returns (model, info).

    Deterministic: model init and dropout draw from a forked, seeded global RNG (the caller's
    RNG state is untouched) and batches from a private generator.
    """
    if train.num_classes < 2:
        raise DataError(f"{train.name}: the reference classifier needs a labeled dataset")
    device = torch.device(device)
    steps = max(cfg.min_steps, math.ceil(cfg.epochs * len(train) / cfg.batch_size))
    start, start_cpu = time.perf_counter(), time.process_time()
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(cfg.seed)
        model = Classifier(train.shape, train.num_classes, cfg).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + 1)
        model.train()
        smooth = None
        bar = _progress(steps, desc, progress)
        try:
            for step in range(steps):
                x, y = train.batch(cfg.batch_size, gen, device)
                loss = F.cross_entropy(model(preprocess(x, cfg.max_side)), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
                if bar is not None:
                    bar.update(1)
                    if step % 20 == 0:
                        bar.set_postfix(loss=f"{smooth:.3f}")
        finally:
            if bar is not None:
                bar.close()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    x_test, y_test = test.take(None)
    acc = accuracy(model, x_test, y_test, device=device)
    model.eval()
    info = {"test_accuracy": acc, "train_seconds": seconds, "train_cpu_seconds": cpu_seconds, "steps": steps,
            "train_size": len(train), "test_size": len(test)}
    return model, info


# ----------------------------------------------------------------------------- cached access


@dataclass
class Embedding:
    """A sample as the metrics see it."""

    features: Tensor  # (N, F) float32 penultimate features (Frechet distance)
    probs: Tensor | None  # (N, K) float64 class probabilities (cis, coverage, cond_acc); None: no classes
    manifold: Tensor  # (N, M) float32 points of the k-NN manifolds (precision, recall)

    def __len__(self) -> int:
        return len(self.features)

    def head(self, n: int) -> Embedding:
        """The first ``n`` samples."""
        return Embedding(self.features[:n], None if self.probs is None else self.probs[:n], self.manifold[:n])


@dataclass
class ReferenceClassifier:
    """A trained classifier ready for scoring, with what defines it."""

    model: Classifier
    dataset: str
    shape: tuple[int, int, int]
    num_classes: int
    config: ClassifierConfig
    key: str  # cache key: dataset content + config + version
    weights_digest: str  # hash of the weights (keys the reference statistics)
    test_accuracy: float
    train_seconds: float
    path: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    trained: bool = False  # True when this process trained it (not loaded from the cache)

    def __post_init__(self) -> None:
        self._inference = self.model.fused().to(self.device)

    @property
    def digest(self) -> str:
        """Short sha256 of the weights: results scored by different classifiers are not comparable."""
        return self.weights_digest[:12]

    @property
    def preprocess_id(self) -> dict[str, Any]:
        """How images reach the network: part of the reference statistics' cache key."""
        return {"max_side": self.config.max_side, "scale": "uint8/255", "resize": "area", "bn": "fused"}

    def to_bytes(self) -> bytes:
        """The classifier as a verified cache entry, to ship from a search driver to its trials
        (``install_classifier``), so every node scores with these weights and none retrains."""
        return cache.entry_bytes("classifier", self.key, {
            "dataset": self.dataset, "shape": list(self.shape), "num_classes": self.num_classes,
            "config": dataclasses.asdict(self.config), "version": VERSION,
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "test_accuracy": self.test_accuracy, "train_seconds": self.train_seconds})

    @torch.inference_mode()
    def embed(self, images: Tensor, *, batch: int = 1000) -> Embedding:
        """What the metrics see of uint8 ``images``: features, probabilities, manifold points (CPU)."""
        feats, probs, manifold = [], [], []
        for i in range(0, len(images), batch):
            x = preprocess(images[i:i + batch].to(self.device), self.config.max_side)
            f, logits, pooled = self._inference.parts(x)
            feats.append(f.float().cpu())
            probs.append(torch.softmax(logits.double(), dim=1).cpu())
            manifold.append(manifold_embedding(f, pooled).cpu())
        if not feats:
            raise ValueError("no images to embed")
        return Embedding(torch.cat(feats), torch.cat(probs), torch.cat(manifold))


_LOADED: dict[tuple[str, str], ReferenceClassifier] = {}


def classifier_key(train: Any, test: Any, cfg: ClassifierConfig) -> str:
    return cache.digest({"version": VERSION, "config": dataclasses.asdict(cfg),
                         "train": cache.dataset_fingerprint(train), "test": cache.dataset_fingerprint(test)})


def locate(data: DataConfig, config: ClassifierConfig | None = None) -> tuple[Path, str, ClassifierConfig]:
    """The cache file, key and config of ``data``'s classifier (reads the dataset; trains nothing)."""
    from gan_core.data import load_dataset

    train = load_dataset(data, "train")
    if train.num_classes == 1:
        raise DataError(f"{data.name}: one class ({train.class_names[0]}); the reference classifier needs two "
                        "or more: add class folders, or set eval.features to a feature network of your own")
    if train.num_classes < 2:
        raise DataError(f"{data.name}: unlabeled dataset; classifier metrics need labels (set eval.features "
                        "to a feature network of your own, or eval.enabled=false, or use a labeled dataset)")
    cfg = config or default_config(data.name)
    key = classifier_key(train, load_dataset(data, "test"), cfg)
    return cache.cache_root() / "classifiers" / f"{cache.slug(data.name)}-{key[:16]}.pt", key, cfg


def get_classifier(data: DataConfig, *, config: ClassifierConfig | None = None,
                   device: torch.device | str = "cpu", progress: bool | None = None,
                   force: bool = False) -> ReferenceClassifier:
    """The reference classifier of ``data``: from this process, else the cache, else trained now.

    Training happens once per dataset content and config (other processes wait on a file lock
    and then load). ``force`` retrains and overwrites the cache entry.
    """
    from gan_core.data import load_dataset

    path, key, cfg = locate(data, config)
    device = torch.device(device)
    memo = (key, str(device))
    if memo in _LOADED and not force:
        return _LOADED[memo]
    trained = []

    def build() -> dict[str, Any]:
        train, test = load_dataset(data, "train"), load_dataset(data, "test")
        print(f"gansearch: training the {data.name} reference classifier "
              f"(once; cached in {path.parent})", file=sys.stderr, flush=True)
        model, info = train_classifier(train, test, cfg, device=device, progress=progress,
                                       desc=f"classifier {data.name}")
        print(f"gansearch: {data.name} classifier: test accuracy {info['test_accuracy']:.2%} "
              f"after {info['steps']} steps in {info['train_seconds']:.0f} s "
              f"({info['train_cpu_seconds']:.0f} s CPU)", file=sys.stderr, flush=True)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        trained.append(True)
        return {"dataset": data.name, "shape": list(train.shape), "num_classes": train.num_classes,
                "config": dataclasses.asdict(cfg), "version": VERSION, "state_dict": state, **info}

    body = cache.cached(path, "classifier", key, build, force=force)
    clf = _from_body(body, cfg, key, path, device, trained=bool(trained))
    _LOADED[memo] = clf
    return clf


def _from_body(body: dict[str, Any], cfg: ClassifierConfig, key: str, path: Path, device: torch.device,
               *, trained: bool = False) -> ReferenceClassifier:
    model = Classifier(tuple(body["shape"]), body["num_classes"], cfg)
    model.load_state_dict(body["state_dict"])
    model.to(device).eval()
    return ReferenceClassifier(
        model=model, dataset=str(body.get("dataset", "")), shape=tuple(body["shape"]),
        num_classes=body["num_classes"], config=cfg, key=key, weights_digest=cache.digest(body["state_dict"]),
        test_accuracy=float(body["test_accuracy"]), train_seconds=float(body["train_seconds"]),
        path=path, device=device, trained=trained,
    )


def install_classifier(blob: bytes, device: torch.device | str = "cpu") -> ReferenceClassifier:
    """Use the classifier ``ReferenceClassifier.to_bytes`` made in this process from now on.

    ``get_classifier`` (and so every Evaluator) then returns it for a dataset whose content and
    classifier config give its key, without reading or writing the cache or training; a dataset
    with other content still gets its own (whose different ``digest`` its results record)."""
    try:
        body = cache.entry_from_bytes(blob, "classifier")
        cfg = ClassifierConfig(**body["config"])
        if body.get("version") != VERSION:
            raise ValueError(f"made by classifier version {body.get('version')}, this is {VERSION}")
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(f"shipped reference classifier: {exc}") from None
    device = torch.device(device)
    key = str(body["key"])
    memo = (key, str(device))
    have = _LOADED.get(memo)
    if have is not None and have.weights_digest == cache.digest(body["state_dict"]):
        return have
    clf = _from_body(body, cfg, key, Path(f"<shipped {body.get('dataset', '')} classifier>"), device)
    _LOADED[memo] = clf
    return clf


def clear_memory() -> None:
    """Forget the classifiers loaded in this process (tests)."""
    _LOADED.clear()
