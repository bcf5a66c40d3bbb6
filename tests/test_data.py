"""Dataset registry: real MNIST/Fashion files, generated Kaggle CSVs, and color-mnist composition."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import torch
from PIL import Image

from gan_core import data
from gan_core.config import DataConfig
from gan_core.data import DataError, compose_color_digits, dataset_names, load_dataset, resolve_data_dir

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))
UNLABELED_HEADER = ",".join(f"pixel{i}" for i in range(784))


def _offline(kind: str, root: Path) -> None:
    raise OSError("network is unreachable")


@pytest.fixture(autouse=True)
def _data_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Real data from ../shared/data, downloads only into a temp cache, and never the network."""
    monkeypatch.setenv("GANSEARCH_DATA", str(SHARED_DATA))
    monkeypatch.setenv("GANSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "gansearch-cache"))
    monkeypatch.setattr(data.idx, "_download", _offline)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mnist(split: str = "train") -> data.Dataset:
    return load_dataset(DataConfig(name="mnist"), split)


# ----------------------------------------------------------------------------------------------
# Registry and directories


def test_names_and_unknown_name() -> None:
    assert dataset_names() == ["mnist", "fashion", "color-mnist", "csv:PATH", "folder:PATH", "npz:PATH"]
    assert set(data.DATASETS) == {"mnist", "fashion", "color-mnist"}
    with pytest.raises(DataError, match="mnist, fashion, color-mnist, csv:PATH, folder:PATH, npz:PATH") as e:
        load_dataset(DataConfig(name="cifar"))
    assert "'cifar'" in str(e.value)
    with pytest.raises(DataError, match="split"):
        load_dataset(DataConfig(name="mnist"), "valid")
    with pytest.raises(DataError, match="needs a file path"):
        load_dataset(DataConfig(name="csv:"))


def test_resolve_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_data_dir(str(tmp_path)) == tmp_path
    assert resolve_data_dir(None) == SHARED_DATA
    monkeypatch.delenv("GANSEARCH_DATA")
    assert resolve_data_dir(None) == data.EMBEDDED_DATA_DIR
    assert resolve_data_dir("") == data.EMBEDDED_DATA_DIR


def test_embedded_mnist_when_env_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANSEARCH_DATA")
    for name in MNIST_FILES:
        assert (data.EMBEDDED_DATA_DIR / "MNIST" / "raw" / name).is_file()
    ds = load_dataset(DataConfig(name="mnist"), "test")
    assert len(ds) == 10000
    shared = load_dataset(DataConfig(name="mnist", data_dir=str(SHARED_DATA)), "test")
    assert torch.equal(ds.images, shared.images)


def test_missing_files_offline_names_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty, cache = tmp_path / "empty", tmp_path / "cache"
    empty.mkdir()
    monkeypatch.setenv("GANSEARCH_CACHE", str(cache))
    calls = []

    def offline(kind: str, root: Path) -> None:
        calls.append((kind, root))
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.idx, "_download", offline)
    with pytest.raises(DataError) as e:
        load_dataset(DataConfig(name="fashion", data_dir=str(empty)))
    message = str(e.value)
    assert "\n" not in message
    assert all(name in message for name in MNIST_FILES)
    assert str(empty / "FashionMNIST" / "raw") in message and "network is unreachable" in message
    assert calls == [("fashion", cache / "data")]
    assert list(empty.iterdir()) == []  # never writes into the data directory


def test_download_goes_to_cache_not_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty, cache = tmp_path / "empty", tmp_path / "cache"
    empty.mkdir()
    monkeypatch.setenv("GANSEARCH_CACHE", str(cache))
    calls = []

    def fake_download(kind: str, root: Path) -> None:  # what torchvision would do when online
        calls.append(kind)
        shutil.copytree(SHARED_DATA / "MNIST" / "raw", root / "MNIST" / "raw")

    monkeypatch.setattr(data.idx, "_download", fake_download)
    ds = load_dataset(DataConfig(name="mnist", data_dir=str(empty)), "test")
    assert len(ds) == 10000 and list(empty.iterdir()) == []
    assert (cache / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()
    data.load_idx("mnist", empty, "train")  # found in the cache now: no second download
    assert calls == ["mnist"]


def test_corrupt_idx_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    header = (0x803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (2, 28, 28))
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + bytes(28 * 28))  # one image short
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write((0x803).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes(2))  # wrong magic
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: header says"):
        data.load_idx("mnist", tmp_path, "test")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: not an IDX file with magic 0x801"):
        data.read_idx(raw / "t10k-labels-idx1-ubyte.gz", 0x801)


# ----------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST on the real files


def test_mnist_train() -> None:
    ds = mnist("train")
    x, y = ds.take()
    assert (len(ds), ds.shape, ds.num_classes, ds.name) == (60000, (1, 28, 28), 10, "mnist")
    assert x.dtype == torch.uint8 and x.shape == (60000, 1, 28, 28) and y.dtype == torch.int64
    assert abs(x.float().mean().item() - 33.3184) < 0.01
    assert torch.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert load_dataset(DataConfig(name="mnist"), "train") is ds  # loaded once per process


def test_mnist_test() -> None:
    x, y = mnist("test").take()
    assert x.shape == (10000, 1, 28, 28)
    assert abs(x.float().mean().item() - 33.7912) < 0.01
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("split,n,mean", [("train", 60000, 72.9404), ("test", 10000, 73.1466)])
def test_fashion(split: str, n: int, mean: float) -> None:
    ds = load_dataset(DataConfig(name="fashion"), split)
    x, y = ds.take()
    assert (len(ds), ds.shape, ds.num_classes) == (n, (1, 28, 28), 10)
    assert abs(x.float().mean().item() - mean) < 0.01
    assert torch.bincount(y).tolist() == [n // 10] * 10


def test_batch_reproducible_from_generator() -> None:
    ds = mnist("test")
    x1, y1 = ds.batch(32, gen(7), "cpu")
    x2, y2 = ds.batch(32, gen(7), torch.device("cpu"))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (32, 1, 28, 28) and x1.dtype == torch.uint8 and y1.dtype == torch.int64
    g = gen(7)
    first, _ = ds.batch(32, g)
    second, _ = ds.batch(32, g)
    assert torch.equal(first, x1) and not torch.equal(first, second)
    state = g.get_state()  # resuming from a saved generator state replays the same batch
    a, _ = ds.batch(8, g)
    g.set_state(state)
    b, _ = ds.batch(8, g)
    assert torch.equal(a, b)
    # the images are the dataset's own rows, with their labels
    idx = torch.randint(len(ds), (32,), generator=gen(7))
    assert torch.equal(x1, ds.images[idx]) and torch.equal(y1, ds.labels[idx])


def test_take_first_n() -> None:
    ds = mnist("test")
    x, y = ds.take(5)
    assert torch.equal(x, ds.images[:5]) and y.tolist() == [7, 2, 1, 0, 4]
    with pytest.raises(DataError, match="asked for 10001 images"):
        ds.take(10001)


# ----------------------------------------------------------------------------------------------
# Kaggle CSV


def write_csv(path: Path, header: str, rows: np.ndarray | list[str]) -> Path:
    lines = [header] + [r if isinstance(r, str) else ",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def random_rows(n: int, labeled: bool = True, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, 784))
    if not labeled:
        return pixels
    return np.concatenate([rng.integers(0, 10, size=(n, 1)), pixels], axis=1)


def test_csv_labeled_and_holdout(tmp_path: Path) -> None:
    rows = random_rows(12)
    path = write_csv(tmp_path / "train.csv", HEADER, rows)
    train = load_dataset(DataConfig(name=f"csv:{path}"))
    test = load_dataset(DataConfig(name=f"csv:{path}"), "test")
    assert (len(train), len(test), train.shape, train.num_classes) == (10, 2, (1, 28, 28), 10)
    images = torch.from_numpy(rows[:, 1:].astype(np.uint8)).reshape(12, 1, 28, 28)
    assert torch.equal(torch.cat([train.images, test.images]), images)  # test = the last 12 // 6 rows
    assert torch.cat([train.labels, test.labels]).tolist() == rows[:, 0].tolist()
    assert train.labels.dtype == torch.int64 and train.images.dtype == torch.uint8
    x, y = train.batch(4, gen(0))
    assert x.shape == (4, 1, 28, 28) and y.shape == (4,)
    assert load_dataset(DataConfig(name=f"csv:{path}")) is train


def test_csv_unlabeled_crlf_and_blank_lines(tmp_path: Path) -> None:
    rows = random_rows(7, labeled=False)
    path = tmp_path / "test.csv"
    body = "\r\n".join([UNLABELED_HEADER, *(",".join(map(str, r)) for r in rows[:3]), "",
                        *(",".join(map(str, r)) for r in rows[3:])]) + "\r\n"
    path.write_text(body)
    ds = load_dataset(DataConfig(name=f"csv:{path}"))
    assert (len(ds), ds.num_classes) == (6, 0)
    x, y = ds.batch(3, gen(0))
    assert y is None and x.shape == (3, 1, 28, 28)
    assert ds.take()[1] is None
    assert torch.equal(ds.images.reshape(6, 784), torch.from_numpy(rows[:6].astype(np.uint8)))
    # an error after the blank line still names the file's own line number
    path.write_text(body.replace(",".join(map(str, rows[4])), ",".join(map(str, rows[4])) + "x", 1))
    with pytest.raises(DataError, match=r"test\.csv, line 7: column pixel783"):
        load_dataset(DataConfig(name=f"csv:{path}"))


def test_csv_reloads_an_edited_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", HEADER, random_rows(6, seed=1))
    first = load_dataset(DataConfig(name=f"csv:{path}"))
    write_csv(path, HEADER, random_rows(9, seed=2))
    assert len(load_dataset(DataConfig(name=f"csv:{path}"))) == 8 != len(first)


def _row(label: object = 3, pixels: dict[int, object] | None = None, drop: bool = False) -> str:
    values: list[object] = [label] + [0] * 784
    for i, v in (pixels or {}).items():
        values[1 + i] = v
    return ",".join(map(str, values[:-1] if drop else values))


MALFORMED = {
    "empty": ("", 1, "file is empty"),
    "header only": (HEADER + "\n", 2, "no data rows"),
    "wrong header": (HEADER.replace("pixel5,", "pixel_5,") + "\n" + _row(), 1, "header must be"),
    "wrong column count": ("\n".join([HEADER, _row(), _row(), _row(drop=True)]), 4, "expected 785 values, got 784"),
    "value 256": ("\n".join([HEADER, _row(pixels={100: 256})]), 2, "column pixel100: 256 is outside 0..255"),
    "value 1000": ("\n".join([HEADER, _row(), _row(pixels={0: 1000})]), 3, "column pixel0: 1000 is outside 0..255"),
    "value -1": ("\n".join([HEADER, _row(), _row(pixels={7: -1})]), 3, "column pixel7: -1 is outside 0..255"),
    "non-integer": ("\n".join([HEADER, _row(), _row(pixels={3: 1.5})]), 3, "column pixel3: '1.5' is not an integer"),
    "text": ("\n".join([HEADER, _row(pixels={783: "abc"})]), 2, "column pixel783: 'abc' is not an integer"),
    "empty value": ("\n".join([HEADER, _row(), _row(pixels={9: ""})]), 3, "column pixel9: empty value"),
    "label 10": ("\n".join([HEADER, _row(), _row(), _row(label=10)]), 4, "column label: 10 is outside 0..9"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_csv_malformed(tmp_path: Path, case: str) -> None:
    text, line, problem = MALFORMED[case]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as e:
        load_dataset(DataConfig(name=f"csv:{path}"))
    message = str(e.value)
    assert message.startswith(f"{path}, line {line}: ") and problem in message, message
    assert "\n" not in message


def test_csv_missing_file_and_tiny_test_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothere\.csv: file does not exist"):
        load_dataset(DataConfig(name=f"csv:{tmp_path / 'nothere.csv'}"))
    path = write_csv(tmp_path / "five.csv", HEADER, random_rows(5))
    assert len(load_dataset(DataConfig(name=f"csv:{path}"))) == 5
    with pytest.raises(DataError, match="too few for a test split"):
        load_dataset(DataConfig(name=f"csv:{path}"), "test")


# ----------------------------------------------------------------------------------------------
# color-mnist


def zoom_mask(digits: torch.Tensor, size: int) -> np.ndarray:
    """Seed 000's digit mask, computed the seed's way: scipy zoom (order 1) of [0, 1] pixels, > 0.5."""
    return np.stack([scipy.ndimage.zoom(d[0].numpy() / 255.0, size / 28, order=1) > 0.5 for d in digits])


def test_compose_inverts_background_where_the_digit_is() -> None:
    digits = mnist("test").images[:3]
    backgrounds = torch.randint(0, 256, (2, 3, 70, 90), dtype=torch.uint8, generator=gen(0))
    which, top, left = torch.tensor([0, 1, 1]), torch.tensor([0, 6, 3]), torch.tensor([26, 0, 11])
    out = compose_color_digits(digits, backgrounds, which, top, left, None, 64)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.uint8
    mask = torch.from_numpy(zoom_mask(digits, 64))[:, None]
    crops = torch.stack([backgrounds[w, :, t:t + 64, c:c + 64] for w, t, c in zip(which, top, left, strict=True)])
    assert torch.equal(out, torch.where(mask, 255 - crops, crops))
    assert 0.05 < mask.float().mean() < 0.5  # a digit, not an empty or full mask
    shift = torch.tensor([[0.0, 0.5, 1.0]] * 3)
    shifted = compose_color_digits(digits, backgrounds, which, top, left, shift, 64)
    moved = ((crops.float() + 255 * shift[:, :, None, None]) / 2).round().to(torch.uint8)
    assert torch.equal(shifted, torch.where(mask, 255 - moved, moved))


def test_color_mnist_batch() -> None:
    ds = load_dataset(DataConfig(name="color-mnist"))
    assert (ds.shape, ds.num_classes, len(ds)) == ((3, 64, 64), 10, 60000)
    x1, y1 = ds.batch(16, gen(3))
    x2, y2 = ds.batch(16, gen(3))
    x3, _ = ds.batch(16, gen(4))
    assert x1.shape == (16, 3, 64, 64) and x1.dtype == torch.uint8 and y1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    _, plain_labels = mnist().batch(16, gen(3))  # the digit indices are drawn first: same labels
    assert torch.equal(y1, plain_labels)
    assert x1.float().std() > 40  # colourful, not flat
    shifted = load_dataset(DataConfig(name="color-mnist", change_colors=True))
    xs, ys = shifted.batch(16, gen(3))
    assert torch.equal(ys, y1) and not torch.equal(xs, x1)


def test_color_mnist_take_is_fixed_and_prefix_stable() -> None:
    ds = load_dataset(DataConfig(name="color-mnist"), "test")
    assert len(ds) == 10000
    x, y = ds.take(20, seed=5)
    assert torch.equal(x, ds.take(20, seed=5)[0]) and not torch.equal(x, ds.take(20, seed=6)[0])
    assert torch.equal(ds.take(8, seed=5)[0], x[:8])
    assert torch.equal(y, mnist("test").labels[:20])


def test_color_mnist_background_file(tmp_path: Path) -> None:
    colour = np.array([10, 200, 60], dtype=np.uint8)
    path = tmp_path / "flat.png"
    Image.fromarray(np.broadcast_to(colour, (80, 100, 3)).copy()).save(path)
    ds = load_dataset(DataConfig(name="color-mnist", background=str(path), resolution=32))
    assert ds.shape == (3, 32, 32)
    x, _ = ds.take(4)
    pixels = x.permute(0, 2, 3, 1).numpy()
    digit = (pixels == 255 - colour).all(-1)
    assert ((pixels == colour).all(-1) | digit).all()
    assert np.array_equal(digit, zoom_mask(mnist().images[:4], 32))


def test_color_mnist_background_too_small_or_unreadable(tmp_path: Path) -> None:
    small = tmp_path / "small.jpg"
    Image.new("RGB", (50, 40), (1, 2, 3)).save(small)
    with pytest.raises(DataError) as e:
        load_dataset(DataConfig(name="color-mnist", background=str(small)))
    assert str(small) in str(e.value) and "50x40" in str(e.value) and "64x64" in str(e.value)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(DataError, match=r"cannot read .*notes\.txt as an image"):
        load_dataset(DataConfig(name="color-mnist", background=str(text)))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataConfig(name="color-mnist", background=str(tmp_path / "missing.png")))


def test_generated_backgrounds_are_fixed_and_colourful() -> None:
    a = data.generated_backgrounds(count=2, size=64)
    assert a.shape == (2, 3, 64, 64) and a.dtype == torch.uint8
    assert torch.equal(a, data.generated_backgrounds(count=2, size=64))
    near_grey = ((a.float() - 127.5).abs() < 20).all(dim=1).float().mean()
    assert near_grey < 0.05  # an inverted digit is visible almost everywhere


def test_non_cpu_device_copies_the_dataset_once() -> None:
    """The accelerator path (a 'meta' device stands in for cuda): one device copy, batches on it."""
    for name in ("mnist", "color-mnist"):
        ds = load_dataset(DataConfig(name=name), "test")
        for _ in range(2):
            x, y = ds.batch(4, gen(0), "meta")
            assert x.device.type == "meta" and y.device.type == "meta" and x.shape == (4, *ds.shape)
        assert sum(key.endswith("meta") for key in ds._device_copies) == (1 if name == "mnist" else 2)
