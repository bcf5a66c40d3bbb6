"""``gansearch classifier``: train (or inspect) a dataset's reference classifier for the metrics.

Training happens automatically on first use; this command does it explicitly, e.g. before a
search so that no trial waits for it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gan_core.config import DataConfig
from gan_core.errors import GansearchError
from search.commands._common import check_device, existing_dir, formatter

EXAMPLE = """example:
  gansearch classifier train --dataset mnist
  gansearch classifier train --dataset color-mnist --resolution 32
  gansearch classifier info --dataset fashion

prints one JSON line: dataset, test accuracy, training time and the cache file
($GANSEARCH_CACHE, default ~/.cache/gansearch)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classifier", help="train or inspect a dataset's reference classifier",
                       description=__doc__, epilog=EXAMPLE, formatter_class=formatter())
    p.add_argument("action", choices=["train", "info"],
                   help="train: load from the cache or train now; info: report the cached one, never train")
    p.add_argument("--dataset", required=True, metavar="NAME", help="mnist, fashion, color-mnist or csv:PATH")
    p.add_argument("--data-dir", metavar="D", help="dataset root (default: $GANSEARCH_DATA, then the embedded MNIST)")
    p.add_argument("--resolution", "--image-size", dest="resolution", type=int,
                   help="image side the data is brought to (default: the data's own; color-mnist 64)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 grey or 3 RGB (default: the data's own)")
    p.add_argument("--background", metavar="FILE", help="color-mnist: background image")
    p.add_argument("--change-colors", action="store_true", help="color-mnist: random colour shift")
    p.add_argument("--force", action="store_true", help="train: retrain even when cached")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def data_config(args: argparse.Namespace) -> DataConfig:
    from gan_core.data import check_dataset_name

    name = args.dataset
    check_dataset_name(name, "--dataset")
    cfg = DataConfig(name=name, data_dir=getattr(args, "data_dir", None))
    if getattr(args, "resolution", None) is not None:
        if not 4 <= args.resolution <= 1024:
            raise GansearchError(f"--resolution: must be in 4..1024, got {args.resolution}")
        cfg.resolution = args.resolution
    cfg.channels = getattr(args, "channels", None)
    if getattr(args, "background", None):
        cfg.background = args.background
    cfg.change_colors = bool(getattr(args, "change_colors", False))
    return cfg


def _record(clf: Any) -> dict[str, Any]:
    return {"dataset": clf.dataset, "test_accuracy": clf.test_accuracy,
            "train_seconds": round(clf.train_seconds, 1), "cached": not clf.trained, "path": str(clf.path),
            "num_classes": clf.num_classes, "shape": list(clf.shape), "key": clf.key[:16]}


def run(args: argparse.Namespace) -> int:
    from gan_core.metrics import cache, classifier

    check_device("--device", args.device)
    if args.data_dir is not None:
        existing_dir("--data-dir", args.data_dir)
    data = data_config(args)
    if args.action == "info":
        path, key, _ = classifier.locate(data)
        body = cache.load_entry(path, "classifier", key)
        if body is None:
            print(json.dumps({"dataset": data.name, "cached": False, "path": str(path)}))
            return 1
        print(json.dumps({"dataset": data.name, "test_accuracy": body["test_accuracy"],
                          "train_seconds": round(body["train_seconds"], 1), "cached": True, "path": str(path),
                          "num_classes": body["num_classes"], "shape": body["shape"], "key": key[:16]}))
        return 0
    clf = classifier.get_classifier(data, device=args.device, progress=not args.quiet, force=args.force)
    print(json.dumps(_record(clf)))
    return 0
