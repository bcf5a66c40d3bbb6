"""What a search driver settles before its trials start, so that trials see the driver's world.

Ray runs each trial in its own working folder, maybe on another machine: a relative path the
driver's checks accepted would fail in every trial, and a node scoring with its own reference
classifier would give scores not comparable with other nodes'. The driver makes paths absolute
and loads (or trains) the classifier once; the trainable gets it with every trial.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.space import Space

# The toolkit's environment: made absolute here before Ray (and its trials) inherit it, and
# forwarded to the trial workers of a cluster the driver joins.
DRIVER_ENV = ("GANSEARCH_DATA", "GANSEARCH_CACHE")


def _absolute(path: str, cwd: str) -> str:
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(path)))


def absolute_data_paths(data: Any, cwd: str) -> None:
    """Make ``data``'s (a DataConfig) paths absolute against ``cwd``: csv:PATH, data_dir, background."""
    if data.name.startswith("csv:"):
        data.name = "csv:" + _absolute(data.name[4:], cwd)
    if data.data_dir:
        data.data_dir = _absolute(data.data_dir, cwd)
    if data.background:
        data.background = _absolute(data.background, cwd)


def absolute_env() -> None:
    """Make $GANSEARCH_DATA and $GANSEARCH_CACHE absolute before Ray (and its trials) inherit them."""
    for key in DRIVER_ENV:
        if os.environ.get(key):
            os.environ[key] = _absolute(os.environ[key], os.getcwd())


def driver_classifier(space: Space) -> Any:
    """The base data's reference classifier, loaded (or trained) once here on the driver and
    shipped to every trial, so that all trials, on every node, are scored by the same weights."""
    from gan_core.metrics import get_classifier

    return get_classifier(space.base_config.data, device="cpu")
