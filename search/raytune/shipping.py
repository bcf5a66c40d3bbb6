"""What a search's driver ships to every trial of a user's own code and data, so that a trial
on any node trains on the driver's images with the driver's networks, none of them installed or
copied there by hand.

- Images (``data.name: folder:PATH | npz:PATH``): converted once here (gan_core's cached
  conversion) and shipped as one array with the trial context; every result carries its digest.
- A feature network's file (``eval.features: PATH`` or ``inception:WEIGHTS_FILE``): its bytes.
- Python packages (``model.arch`` or ``eval.features`` as ``module:callable``): the package's
  folder (or the module's file) goes to Ray's runtime environment (``py_modules``), which
  uploads it once and puts it on every worker's ``sys.path``. A package installed in the
  environment (site-packages) is not shipped: the nodes' environment must have it, as it has
  torch.

What a space searches is covered too: every architecture or feature network a choice names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_core.config import IMPORT_PATH, DataConfig
from search.space import Space


@dataclass(frozen=True)
class ShippedInputs:
    """The user's inputs a trial cannot count on finding on its node (with the trial context)."""

    data: DataConfig | None = None  # the base config's data, for a folder:/npz: source
    image_set: bytes = b""  # its converted set (gan_core ImageSet.to_bytes)
    data_digest: str = ""  # the set's content digest, which every result of a trial on it carries
    files: dict[str, bytes] = field(default_factory=dict)  # eval.features files: absolute path -> bytes
    py_modules: tuple[str, ...] = ()  # package folders / module files (Ray's runtime env on the driver)


def _installed(path: Path) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in path.parts)


def _module_roots(space: Space) -> list[str]:
    from gan_core.user_arch import package_root

    roots: list[str] = []
    for key in ("model.arch", "eval.features"):
        for value in space.values_of(key):
            if (not (isinstance(value, str) and IMPORT_PATH.fullmatch(value)) or Path(value).exists()
                    or (key == "eval.features" and value.startswith("inception:"))):
                continue
            root = package_root(value)  # imported here: one line if it does not import
            if not _installed(root) and str(root) not in roots:
                roots.append(str(root))
    return roots


def _feature_files(space: Space) -> dict[str, bytes]:
    from gan_core.metrics.extractors import file_of

    out: dict[str, bytes] = {}
    for value in space.values_of("eval.features"):
        path = file_of(value) if isinstance(value, str) and value else None
        if path is not None and path.is_absolute() and path.is_file():
            out[str(path)] = path.read_bytes()  # a missing file is the trial's one-line error
    return out


def prepare(space: Space) -> ShippedInputs:
    """Read, convert and locate once, on the driver, what every trial needs of the user's."""
    from gan_core.data import is_user_source, load_image_set

    data = space.base_config.data
    image_set, digest = b"", ""
    if is_user_source(data.name):
        converted = load_image_set(data)  # the cached conversion (converted now, with progress, if new)
        image_set, digest = converted.to_bytes(), converted.digest
    return ShippedInputs(data if image_set else None, image_set, digest, _feature_files(space),
                         tuple(_module_roots(space)))


def install(shipped: ShippedInputs | None, data: DataConfig) -> str:
    """In a trial: make the shipped inputs what gan_core loads. The digest of the trial's user
    image set ("" for a built-in data set)."""
    if shipped is None:
        return ""
    from gan_core.metrics.extractors import provide_file

    for path, blob in shipped.files.items():
        provide_file(path, blob)
    if shipped.data is None or not shipped.image_set:
        return ""
    from gan_core.data import ImageSet, is_user_source, load_image_set, provide_image_set

    provide_image_set(shipped.data, ImageSet.from_bytes(shipped.image_set))
    # The shipped set when the trial's data is the base's; another one the space searches is
    # converted on this node.
    return load_image_set(data).digest if is_user_source(data.name) else ""


def runtime_env(shipped: ShippedInputs, env_vars: dict[str, str]) -> dict[str, Any]:
    """``ray.init``'s runtime environment: the toolkit's variables (to a cluster) and the user's
    packages (to any Ray, a private one too: its workers do not start in the driver's folder)."""
    out: dict[str, Any] = {}
    if env_vars:
        out["env_vars"] = env_vars
    if shipped.py_modules:
        out["py_modules"] = list(shipped.py_modules)
    return out
