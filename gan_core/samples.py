"""Sample sets as files and as scores: the .npz format ``gansearch sample`` writes and ``score`` reads.

An .npz holds ``images`` as uint8 (N, H, W) for grey or (N, H, W, 3) for colour, and optionally
``labels`` (int, N): the classes a conditional generator was asked for. Every problem with a
file is a one-line GansearchError naming the file and what is wrong.

Example::

    save_npz("samples.npz", generate(load_run("runs/dcgan").G, 1000))
    record = score_source("samples.npz", dataset="mnist")   # every metric, as gansearch score prints
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_core.config import DataConfig
from gan_core.errors import GansearchError
from gan_core.io import atomic_write_bytes

RUN_N = 10_000  # samples drawn from a run's generator unless ``n`` is given


def to_hwc(images: torch.Tensor) -> np.ndarray:
    """uint8 (N,C,H,W) -> (N,H,W) grey or (N,H,W,3) colour, the layout of the file."""
    x = images.cpu().numpy()
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)


def save_npz(path: str | Path, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    """Write uint8 ``images`` (N, C, H, W) and optional class ``labels`` atomically."""
    buf = io.BytesIO()
    if labels is None:
        np.savez_compressed(buf, images=to_hwc(images))
    else:
        np.savez_compressed(buf, images=to_hwc(images), labels=labels.cpu().numpy().astype(np.int64))
    atomic_write_bytes(Path(path), buf.getvalue())


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


# ----------------------------------------------------------------------------- scoring


def _dataset_config(name: str, data_dir: str | None, base: DataConfig | None = None) -> DataConfig:
    from gan_core.data import check_dataset_name

    check_dataset_name(name, "--dataset")
    if base is not None and base.name == name:
        cfg = DataConfig(**{**base.__dict__})
    else:
        cfg = DataConfig(name=name)
    if data_dir is not None:
        cfg.data_dir = data_dir
    return cfg


def score_source(source: str | Path, *, dataset: str | None = None, n: int | None = None, seed: int = 0,
                 objective: str | None = None, data_dir: str | None = None,
                 device: str | torch.device = "cpu", features: str | None = None) -> dict[str, Any]:
    """Every classifier metric of a run directory (``n`` samples drawn with ``seed``, default
    RUN_N) or of an .npz file (its first ``n`` images, default all; ``dataset`` required), as the
    JSON record ``gansearch score`` prints. Messages name the command's flags (--n, --dataset).
    ``features`` is an ``eval.features`` network to score with (default for a run: its own)."""
    from gan_core.data import load_dataset
    from gan_core.metrics import Evaluator

    source = Path(source)
    if n is not None and n <= 0:
        raise GansearchError(f"--n: must be > 0, got {n}")
    device = device or "cpu"
    if source.suffix == ".npz":
        if not dataset:
            raise GansearchError(f"{source}: --dataset is required for an .npz file "
                                 f"(mnist, fashion, color-mnist, csv:PATH, folder:PATH or npz:PATH)")
        data = _dataset_config(dataset, data_dir)
        if data.name == "color-mnist" and source.is_file():
            data.resolution = _npz_side(source, data.resolution or 64)
        # Check the file against the dataset before loading (or training) the classifier.
        train = load_dataset(data, "train")
        if train.num_classes < 2 and not features:
            raise GansearchError(f"--dataset: {data.name} is unlabeled; classifier metrics need labels "
                                 "(or --features: a feature network of your own)")
        images, labels = load_npz(source, train.shape, data.name, train.num_classes)
        if n is not None:
            if n > len(images):
                raise GansearchError(f"--n: {n} requested but {source} holds {len(images)} images")
            images, labels = images[:n], None if labels is None else labels[:n]
        evaluator = Evaluator(data, device=device, objective=objective or "cfd", features=features)
        kind = "npz"
    elif source.is_dir() or source.suffix == ".pt":
        from gan_core.checkpoint import load_run
        from gan_core.sampling import cycling_labels, generate

        run = load_run(source, device)
        data = _dataset_config(dataset, data_dir, run.cfg.data) if dataset else run.cfg.data
        if data_dir is not None and not dataset:
            data = _dataset_config(data.name, data_dir, data)
        evaluator = Evaluator(data, device=device, objective=objective or run.cfg.eval.objective,
                              features=features or run.cfg.eval.features)
        n = n or RUN_N
        labels = cycling_labels(n, run.G.num_classes, device) if run.G.conditional else None
        images = generate(run.G, n, seed=seed, labels=labels)
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
    accuracy = getattr(evaluator.classifier, "test_accuracy", None)  # the reference classifier's
    return {"source": str(source), "kind": kind, "dataset": data.name, "n": len(images),
            "objective": evaluator.objective, **metrics,
            **({"classifier_accuracy": accuracy} if accuracy is not None else {"features": features})}


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
