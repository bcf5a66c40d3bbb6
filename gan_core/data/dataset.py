"""The in-memory dataset every source produces, and the fixed held-out split of sources that
ship no test split of their own."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from gan_core.errors import DataError

SPLITS = ("train", "test")
DIGITS = tuple(str(d) for d in range(10))  # the class names of MNIST and the Kaggle digit CSV


def one_line(error: BaseException | str) -> str:
    """An exception's text on one line (for the one-line errors every source raises)."""
    return " ".join(str(error).split())


class Dataset:
    """A labeled or unlabeled image set held in memory as one uint8 tensor (N, C, H, W) on the CPU.

    ``batch`` samples with replacement (as the seeds do) using only the caller's generator; on a
    GPU the whole set is copied to the device once so a step does no host-to-device image copy.
    ``class_names`` names label k (``num_classes`` of them; none for unlabeled data); ``digest``
    is the content digest of a user's image set (``folder:``/``npz:``; None for the built-in ones).
    """

    def __init__(self, name: str, images: Tensor, labels: Tensor | None, split: str = "train",
                 class_names: Sequence[str] | None = None, *, digest: str | None = None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels is not None and (labels.dtype != torch.int64 or labels.shape != images.shape[:1]):
            raise ValueError(f"labels must be int64 ({len(images)},), got {labels.dtype} {tuple(labels.shape)}")
        if labels is None:
            class_names = ()
        elif class_names is None:
            class_names = DIGITS
        if labels is not None and len(labels) and int(labels.max()) >= len(class_names):
            raise ValueError(f"label {int(labels.max())} has no class name ({len(class_names)} given)")
        self.name = name
        self.digest = digest
        self.split = split
        self.images = images
        self.labels = labels
        self.class_names: tuple[str, ...] = tuple(class_names)
        self.shape: tuple[int, int, int] = tuple(images.shape[1:])  # type: ignore[assignment]
        self.num_classes = len(self.class_names)
        self._device_copies: dict[str, tuple[Tensor, Tensor | None]] = {}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"shape={self.shape}, num_classes={self.num_classes})")

    def batch(self, n: int, generator: torch.Generator,
              device: torch.device | str = "cpu") -> tuple[Tensor, Tensor | None]:
        """``n`` random images (uint8 (n, C, H, W)) and labels (int64 (n,) or None) on ``device``."""
        if n < 1:
            raise ValueError(f"batch size must be >= 1, got {n}")
        idx = torch.randint(len(self), (n,), generator=generator)
        return self._gather(idx, generator, torch.device(device))

    def take(self, n: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor | None]:
        """A fixed set for evaluation: the first ``n`` images (all when None), on the CPU.

        The tensors are views of the in-memory dataset: do not modify them in place.
        """
        n = len(self) if n is None else n
        if not 1 <= n <= len(self):
            raise DataError(f"{self.name}: asked for {n} images, the {self.split} split has {len(self)}")
        labels = None if self.labels is None else self.labels[:n]
        return self.images[:n], labels

    def _on(self, device: torch.device) -> tuple[Tensor, Tensor | None]:
        """The dataset's tensors on ``device`` (copied there once, then reused)."""
        if device.type == "cpu":
            return self.images, self.labels
        if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0": one copy
            device = torch.device("cuda", torch.cuda.current_device())
        key = str(device)
        if key not in self._device_copies:
            labels = None if self.labels is None else self.labels.to(device)
            self._device_copies[key] = (self.images.to(device), labels)
        return self._device_copies[key]

    def _gather(self, idx: Tensor, generator: torch.Generator,
                device: torch.device) -> tuple[Tensor, Tensor | None]:
        images, labels = self._on(device)
        idx = idx.to(device)
        return images[idx], None if labels is None else labels[idx]


HOLDOUT_FRACTION = 6  # sources without a test split hold out 1/6 of their images, as the Kaggle CSV does
HOLDOUT_SEED = 20261205  # fixed: every machine, every run and every trial holds out the same images


def holdout_split(labels: Tensor | None, n: int, split: str) -> Tensor:
    """Indices of ``split`` for a source without a test split of its own: a fixed, seeded choice
    of 1/6 of the images (of each class, for labeled data, so every class is in both halves
    when it has two images or more) is ``test``, the rest ``train``; each in the source's order."""
    generator = torch.Generator().manual_seed(HOLDOUT_SEED)
    groups = [torch.arange(n)] if labels is None else [
        torch.nonzero(labels == k).flatten() for k in range(int(labels.max()) + 1 if n else 0)]
    test = []
    for members in groups:
        count = len(members) // HOLDOUT_FRACTION or (1 if len(members) >= 2 else 0)
        test.append(members[torch.randperm(len(members), generator=generator)[:count]])
    is_test = torch.zeros(n, dtype=torch.bool)
    if test:
        is_test[torch.cat(test)] = True
    return torch.nonzero(is_test if split == "test" else ~is_test).flatten()
