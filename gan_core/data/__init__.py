"""Datasets by name: the whole set lives in memory as one uint8 tensor, batches are sampled on device.

Names (``data.name``), one module each:

- ``mnist``, ``fashion`` (``idx.py``): the original IDX files in torchvision's layout; MNIST ships
  inside the package, ``$GANSEARCH_DATA`` or ``data.data_dir`` points at others.
- ``color-mnist`` (``color_mnist.py``): seed 000's RGB digits on colour fields, composed per batch.
- ``csv:PATH`` (``kaggle_csv.py``): Kaggle digit-recognizer files.
- ``folder:PATH`` and ``npz:PATH`` (``image_files.py``): your own images, class subfolders for
  labels, converted once into a cached array.

``data.resolution`` and ``data.channels`` say what the GAN sees (unset: the source's own); every
source is held as uint8 (N, C, H, W) in a ``Dataset`` (``dataset.py``), and ``registry.py`` is the
one door, ``load_dataset``. Sampling draws only from the ``torch.Generator`` passed in, so a run
that saves and restores that generator's state resumes with exactly the same batches.

Example::

    ds = load_dataset(DataConfig(name="mnist"))
    x, y = ds.batch(64, torch.Generator().manual_seed(0), "cpu")   # uint8 (64,1,28,28), int64 (64,)
"""

from gan_core.data.color_mnist import ColorMnist, compose_color_digits, generated_backgrounds, load_background
from gan_core.data.dataset import SPLITS, Dataset, holdout_split
from gan_core.data.idx import CLASS_NAMES, EMBEDDED_DATA_DIR, cache_dir, load_idx, read_idx, resolve_data_dir
from gan_core.data.image_files import FOLDER_PREFIX, NPZ_PREFIX, ImageSet
from gan_core.data.kaggle_csv import load_csv, read_kaggle_csv
from gan_core.data.registry import (
    CSV_PREFIX,
    DATASETS,
    check_dataset_name,
    dataset_names,
    is_user_source,
    load_dataset,
    load_image_set,
    provide_image_set,
)
from gan_core.errors import DataError

__all__ = ["CLASS_NAMES", "CSV_PREFIX", "DATASETS", "EMBEDDED_DATA_DIR", "FOLDER_PREFIX", "NPZ_PREFIX", "SPLITS",
           "ColorMnist", "DataError", "Dataset", "ImageSet", "cache_dir", "check_dataset_name",
           "compose_color_digits", "dataset_names", "generated_backgrounds", "holdout_split", "is_user_source",
           "load_background", "load_csv", "load_dataset", "load_idx", "load_image_set",
           "provide_image_set", "read_idx", "read_kaggle_csv", "resolve_data_dir"]
