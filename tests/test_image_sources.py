"""Your own images: folder:PATH and npz:PATH, converted once and cached, split by a fixed seed;
data.resolution and data.channels on every source."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.config import DataConfig
from gan_core.data import image_files, load_dataset, load_image_set
from gan_core.errors import DataError


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GANSEARCH_CACHE", str(tmp_path / "cache"))


def write_images(folder: Path, n: int, size: tuple[int, int] = (12, 10), mode: str = "RGB", seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode).save(folder / f"{i:03d}.png")


def test_a_class_folder_gives_sorted_labels_a_fixed_split_and_one_cached_conversion(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    write_images(root / "dogs", 12, mode="RGBA")
    write_images(root / "cats", 13, mode="L", seed=1)
    write_images(root / "birds", 7, seed=2)
    (root / ".DS_Store").write_text("skipped: a hidden file")
    cfg = DataConfig(name=f"folder:{root}", resolution=8)
    before = len(image_files.CONVERSIONS)
    train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    assert len(image_files.CONVERSIONS) == before + 1  # both splits from one conversion
    assert train.class_names == test.class_names == ("birds", "cats", "dogs")
    assert train.num_classes == 3 and train.shape == (3, 8, 8)  # RGB: not every image is grey
    # A sixth of each class is held out (7 -> 1, 13 -> 2, 12 -> 2), every class in both halves.
    assert torch.bincount(test.labels).tolist() == [1, 2, 2]
    assert torch.bincount(train.labels).tolist() == [6, 11, 10]
    whole = load_image_set(cfg)
    assert len(whole.images) == 32 and train.digest == test.digest == whole.digest
    # The cache holds it: a fresh process (no in-memory copy) reads the file and converts nothing.
    from gan_core.data import registry

    registry._DATASET_CACHE.clear()
    again = load_dataset(cfg, "test")
    assert len(image_files.CONVERSIONS) == before + 1 and again.digest == whole.digest
    assert torch.equal(again.images, test.images)
    # An added image changes the listing: converted again, another digest.
    write_images(root / "birds", 8, seed=3)
    assert load_image_set(cfg).digest != whole.digest and len(image_files.CONVERSIONS) == before + 2


def test_conversion_resizes_the_shorter_side_and_crops_the_centre(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    root.mkdir()
    wide = np.zeros((4, 8), dtype=np.uint8)
    wide[:, 2:6] = 255  # a white centre square on black sides
    Image.fromarray(wide, "L").save(root / "a.png")
    ds = load_dataset(DataConfig(name=f"folder:{root}", resolution=4), "train")
    assert ds.num_classes == 0 and ds.labels is None and ds.shape == (1, 4, 4)
    assert ds.images.min().item() > 200  # the black sides were cropped away


def test_npz_images_with_labels_and_class_names(tmp_path: Path) -> None:
    path = tmp_path / "set.npz"
    images = np.random.default_rng(0).integers(0, 256, (30, 6, 6), dtype=np.uint8)
    labels = np.arange(30) % 2
    np.savez(path, images=images, labels=labels, class_names=np.array(["even", "odd"]))
    cfg = DataConfig(name=f"npz:{path}")
    train = load_dataset(cfg, "train")
    assert train.shape == (1, 6, 6) and train.class_names == ("even", "odd")
    assert len(train) + len(load_dataset(cfg, "test")) == 30
    rgb = load_dataset(DataConfig(name=f"npz:{path}", resolution=12, channels=3), "train")
    assert rgb.shape == (3, 12, 12) and torch.equal(rgb.images[:, 0], rgb.images[:, 1])


def test_resolution_and_channels_apply_to_the_built_in_sets_too() -> None:
    ds = load_dataset(DataConfig(name="mnist", resolution=16, channels=3), "test")
    assert ds.shape == (3, 16, 16) and ds.num_classes == 10


def bad(tmp_path: Path, name: str) -> str:
    with pytest.raises(DataError) as e:
        load_dataset(DataConfig(name=name), "train")
    message = str(e.value)
    assert "\n" not in message
    return message


def test_bad_folders_are_one_line_errors_that_name_the_file(tmp_path: Path) -> None:
    assert "no such folder" in bad(tmp_path, f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    assert "no images" in bad(tmp_path, f"folder:{tmp_path / 'empty'}")
    write_images(tmp_path / "mixed" / "cats", 2)
    write_images(tmp_path / "mixed", 1)
    assert "both class folders" in bad(tmp_path, f"folder:{tmp_path / 'mixed'}")
    write_images(tmp_path / "notes", 2)
    (tmp_path / "notes" / "labels.csv").write_text("a,b\n")
    assert "labels.csv is not an image file" in bad(tmp_path, f"folder:{tmp_path / 'notes'}")
    write_images(tmp_path / "broken", 2)
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png at all")
    assert "x.png is not a readable image" in bad(tmp_path, f"folder:{tmp_path / 'broken'}")
    write_images(tmp_path / "sizes", 1, size=(8, 8))
    Image.new("RGB", (9, 9)).save(tmp_path / "sizes" / "z.png")
    assert "set data.resolution" in bad(tmp_path, f"folder:{tmp_path / 'sizes'}")
    assert "needs a path" in bad(tmp_path, "folder:")
    np.savez(tmp_path / "f.npz", images=np.zeros((3, 4, 4), dtype=np.float32))
    assert "must be uint8" in bad(tmp_path, f"npz:{tmp_path / 'f.npz'}")


def test_one_class_cannot_train_the_reference_classifier(tmp_path: Path) -> None:
    from gan_core.metrics import get_classifier

    write_images(tmp_path / "only" / "cats", 12)
    with pytest.raises(DataError, match="one class .cats.; the reference classifier needs two or more"):
        get_classifier(DataConfig(name=f"folder:{tmp_path / 'only'}", resolution=8), progress=False)


def test_the_example_script_writes_a_labelled_folder(tmp_path: Path) -> None:
    import runpy
    import sys

    script = Path(__file__).resolve().parents[1] / "examples" / "make_shapes.py"
    argv = sys.argv
    try:
        sys.argv = [str(script), str(tmp_path / "shapes"), "--per-class", "3", "--size", "16"]
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    names = sorted(os.listdir(tmp_path / "shapes"))
    assert names == ["circle", "cross", "square", "triangle"]
    ds = load_dataset(DataConfig(name=f"folder:{tmp_path / 'shapes'}"), "train")
    assert ds.shape == (3, 16, 16) and ds.num_classes == 4
