"""``gansearch score``: every classifier metric of a trained run or of an .npz of images, as one JSON line."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_core.config import DataConfig
from gan_core.errors import GansearchError
from search.commands._common import formatter

EXAMPLE = """example:
  gansearch score runs/dcgan                      # 10000 samples from the run's generator
  gansearch score samples.npz --dataset mnist     # the images of a file (e.g. from gansearch sample)

an .npz holds `images` as uint8 (N,H,W) for grey or (N,H,W,3) for colour, and optionally `labels`
(int, N): the classes a conditional generator was asked for (adds cond_acc). Metric names carry the
sample count (cfd_10k); `score` is the objective metric, negated when higher is better."""

RUN_N = 10_000  # samples drawn from a run's generator unless --n


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score a run or an .npz of images with the classifier metrics",
                       description=__doc__, epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("source", metavar="RUN_DIR|FILE.npz")
    p.add_argument("--dataset", metavar="NAME",
                   help="mnist, fashion, color-mnist or csv:PATH (required for .npz; default for a run: its own)")
    p.add_argument("--n", type=int, help=f"samples: generated from a run (default {RUN_N}), "
                                         "or the first N of an .npz (default all)")
    p.add_argument("--seed", type=int, default=0, help="noise seed when generating from a run")
    p.add_argument("--objective", metavar="METRIC",
                   help="metric reported as score (default: the run's eval.objective, else cfd)")
    p.add_argument("--data-dir", metavar="D", help="dataset root (default: $GANSEARCH_DATA, then the embedded MNIST)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(run=run)


# ----------------------------------------------------------------------------- .npz


def _value_range(x: np.ndarray) -> str:
    if x.size == 0 or not np.issubdtype(x.dtype, np.number):
        return ""
    return f", values {x.min():g}..{x.max():g}"


def load_npz(path: str | Path, shape: tuple[int, int, int], dataset: str,
             num_classes: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 images (N, C, H, W) and optional int64 labels from ``path``, checked against ``shape``.

    Every problem is a one-line GansearchError naming the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise GansearchError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise GansearchError(f"{path}: not a readable .npz file ({' '.join(str(exc).split())[:100]})") from None
    if "images" not in arrays:
        found = ", ".join(sorted(arrays)) or "nothing"
        raise GansearchError(f"{path}: missing array 'images' (found: {found})")
    x = arrays["images"]
    c, h, w = shape
    want = f"(N, {h}, {w})" if c == 1 else f"(N, {h}, {w}, {c})"
    if x.dtype != np.uint8:
        hint = ""
        if np.issubdtype(x.dtype, np.floating) and x.size and np.nanmax(x) <= 1.0:
            hint = "; floats in [0, 1]: store (x * 255).round().astype(np.uint8)"
        elif np.issubdtype(x.dtype, np.integer) and x.size and (x.min() < 0 or x.max() > 255):
            hint = "; values outside 0..255"
        raise GansearchError(f"{path}: images: expected dtype uint8 with values 0..255, got {x.dtype}"
                             f"{_value_range(x)}{hint}")
    if c == 1 and x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    expected = (h, w) if c == 1 else (h, w, c)
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise GansearchError(f"{path}: images: expected shape {want} for {dataset}, got {tuple(x.shape)}")
    if len(x) == 0:
        raise GansearchError(f"{path}: images: the file holds no images")
    images = torch.from_numpy(np.ascontiguousarray(x))
    images = images.unsqueeze(1) if c == 1 else images.permute(0, 3, 1, 2).contiguous()
    labels = None
    if "labels" in arrays:
        y = arrays["labels"]
        if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1:
            raise GansearchError(f"{path}: labels: expected integers of shape (N,), got {y.dtype} {tuple(y.shape)}")
        if len(y) != len(x):
            raise GansearchError(f"{path}: labels: {len(y)} labels for {len(x)} images")
        if y.min() < 0 or y.max() >= num_classes:
            raise GansearchError(f"{path}: labels: values {y.min()}..{y.max()} outside 0..{num_classes - 1}")
        labels = torch.from_numpy(y.astype(np.int64))
    return images, labels


# ----------------------------------------------------------------------------- command


def _dataset_config(name: str, data_dir: str | None, base: DataConfig | None = None) -> DataConfig:
    from gan_core.data import dataset_names

    valid = dataset_names()
    if name not in valid[:-1] and not name.startswith("csv:"):
        raise GansearchError(f"--dataset: {name!r} is not one of {', '.join(valid)}")
    if base is not None and base.name == name:
        cfg = DataConfig(**{**base.__dict__})
    else:
        cfg = DataConfig(name=name)
    if data_dir is not None:
        cfg.data_dir = data_dir
    return cfg


def score_source(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON record ``gansearch score`` prints (also usable from Python)."""
    from gan_core.data import load_dataset
    from gan_core.metrics import Evaluator

    source = Path(args.source)
    n = getattr(args, "n", None)
    if n is not None and n <= 0:
        raise GansearchError(f"--n: must be > 0, got {n}")
    device = getattr(args, "device", "cpu") or "cpu"
    data_dir = getattr(args, "data_dir", None)
    dataset = getattr(args, "dataset", None)
    objective = getattr(args, "objective", None)
    if source.suffix == ".npz":
        if not dataset:
            raise GansearchError(f"{source}: --dataset is required for an .npz file "
                                 f"(mnist, fashion, color-mnist or csv:PATH)")
        data = _dataset_config(dataset, data_dir)
        if data.name == "color-mnist" and source.is_file():
            data.image_size = _npz_side(source, data.image_size)
        # Check the file against the dataset before loading (or training) the classifier.
        train = load_dataset(data, "train")
        if train.num_classes < 2:
            raise GansearchError(f"--dataset: {data.name} is unlabeled; classifier metrics need labels")
        images, labels = load_npz(source, train.shape, data.name, train.num_classes)
        if n is not None:
            if n > len(images):
                raise GansearchError(f"--n: {n} requested but {source} holds {len(images)} images")
            images, labels = images[:n], None if labels is None else labels[:n]
        evaluator = Evaluator(data, device=device, objective=objective or "cfd")
        kind = "npz"
    elif source.is_dir() or source.suffix == ".pt":
        from gan_core.checkpoint import cycling_labels, generate, load_run

        run = load_run(source, device)
        data = _dataset_config(dataset, data_dir, run.cfg.data) if dataset else run.cfg.data
        if data_dir is not None and not dataset:
            data = _dataset_config(data.name, data_dir, data)
        evaluator = Evaluator(data, device=device, objective=objective or run.cfg.eval.objective)
        n = n or RUN_N
        labels = cycling_labels(n, run.G.num_classes, device) if run.G.conditional else None
        images = generate(run.G, n, seed=args.seed, labels=labels)
        if tuple(images.shape[1:]) != evaluator.shape:
            raise GansearchError(f"{source}: the generator draws {tuple(images.shape[1:])} images, "
                                 f"{data.name} has {evaluator.shape}")
        kind = "run"
    elif not source.exists():
        raise GansearchError(f"{source}: no such run directory or .npz file")
    else:
        raise GansearchError(f"{source}: expected a run directory (holding checkpoint.pt) or a .npz file")
    evaluator.check(images, labels, where=str(source))
    metrics = evaluator(images, labels)
    return {"source": str(source), "kind": kind, "dataset": data.name, "n": len(images),
            "objective": evaluator.objective, **metrics,
            "classifier_accuracy": evaluator.classifier.test_accuracy}


def _npz_side(path: Path, default: int) -> int:
    """color-mnist comes in any square size: read it from the file's images (H, W, 3)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "images" in f.files:
                shape = f["images"].shape
                if len(shape) == 4 and shape[1] == shape[2] and shape[3] == 3:
                    return int(shape[1])
    except Exception:  # load_npz reports a broken file properly
        pass
    return default


def run(args: argparse.Namespace) -> int:
    print(json.dumps(score_source(args)))
    return 0
