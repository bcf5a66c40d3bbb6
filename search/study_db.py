"""Where a search's Optuna study lives, and its database password kept out of files and output.

The study is SQLite in the experiment folder unless ``--optuna-storage URL`` or the environment
variable ``GANSEARCH_OPTUNA_STORAGE`` names a database a cluster shares. A URL with a password
belongs in the variable: on the command line it would land in shell history, process lists and
Ray's job records, so there it is refused. The URL is written only redacted
(``postgresql://user:***@host/db``): in gansearch.json, in error messages, and in the storage
object Ray pickles into the experiment folder with the searcher's state. ``resume`` and
``review`` read the real URL from the variable again.

Example::

    url, source = from_command(args.optuna_storage)   # flag, else $GANSEARCH_OPTUNA_STORAGE
    stored = redact(url)           # what gansearch.json keeps: postgresql://gs:***@db/studies
    url = resolve_stored(stored)   # the real URL, from the variable
    study = open_study(exp, tmp)   # what review reads (a copy of SQLite)
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import optuna

from gan_core.errors import GansearchError
from search.experiment import OPTUNA_FILE, Experiment
from search.storage import is_uri

ENV = "GANSEARCH_OPTUNA_STORAGE"
HIDDEN = "***"


def _split(url: str) -> tuple[str, str | None, str | None, str]:
    """(scheme, user, password, host and the rest). The user info ends at the *last* "@" before
    the host: a password with an unescaped "@" or "/" is hidden whole, never in part."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return scheme, None, None, rest
    userinfo, host = rest.rsplit("@", 1)
    user, colon, password = userinfo.partition(":")
    return scheme, user, (password if colon else None), host


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (unchanged when it has none)."""
    scheme, user, password, host = _split(url)
    return url if password is None else f"{scheme}://{user}:{HIDDEN}@{host}"


def is_redacted(url: str | None) -> bool:
    return bool(url) and _split(str(url))[2] == HIDDEN


def from_command(flag: str | None) -> tuple[str | None, str]:
    """The study URL a command was given and where it came from: ``--optuna-storage`` (refused
    with a password in it), else the environment variable; (None, "") for the default SQLite."""
    if flag:
        if _split(flag)[2] is not None:
            raise GansearchError(f"--optuna-storage: {redact(flag)} carries a password, which the command "
                                 f"line would leak (shell history, ps); put the URL in {ENV} instead")
        return flag, "--optuna-storage"
    env = os.environ.get(ENV, "").strip()
    return (env, ENV) if env else (None, "")


def resolve_stored(stored: str | None) -> str | None:
    """The real URL for one gansearch.json (or a pickle) holds: a redacted one is read from the
    environment variable again, which must name the same database."""
    if not is_redacted(stored):
        return stored
    env = os.environ.get(ENV, "").strip()
    if not env:
        raise GansearchError(f"{ENV}: not set; this experiment's Optuna study is in {stored}, whose password "
                             f"is not stored: set {ENV} to the full URL")
    if redact(env) != stored:
        raise GansearchError(f"{ENV}: names {redact(env)}, but this experiment's Optuna study is in {stored}")
    return env


def study_url(exp: str, override: str | None) -> str:
    """The study's database: ``override`` (flag or variable), else SQLite in the experiment folder.
    SQLite cannot live on s3:// or gs://: for such an experiment the study is a local file under
    the gansearch cache ($GANSEARCH_CACHE or ~/.cache/gansearch, optuna/<name>-<hash>.db) and a
    copy goes into the experiment folder at the end."""
    if override:
        return override
    if not is_uri(exp):
        Path(exp).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(exp) / OPTUNA_FILE}"
    root = Path(os.environ.get("GANSEARCH_CACHE") or Path.home() / ".cache" / "gansearch").expanduser()
    name = exp.rstrip("/").rsplit("/", 1)[-1]
    local = root / "optuna" / f"{name}-{hashlib.sha256(exp.encode()).hexdigest()[:8]}.db"
    local.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{local.resolve()}"


def keep_newest_grid(samples: list[Path], keep: Path) -> None:
    """Copy the newest sample grid in a trial's ``samples`` folders (its working folder, a copy,
    the experiment folder's synced one: whichever holds the latest step) into the folder ``keep``,
    replacing an older one kept before. Called on each report and at the end: Ray may remove the
    working folder before the trial is told complete, and syncs the experiment folder only now
    and then."""
    found = [g for folder in samples if folder.is_dir() for g in folder.glob("step-*.png")]
    kept = sorted(keep.glob("step-*.png")) if keep.is_dir() else []
    if not found or (kept and kept[-1].name >= max(g.name for g in found)):
        return
    newest = max(found, key=lambda g: g.name)  # step-NNNNNN.png: the name orders the steps
    keep.mkdir(parents=True, exist_ok=True)
    tmp = keep / (newest.name + ".tmp")
    shutil.copyfile(newest, tmp)
    os.replace(tmp, keep / newest.name)
    for old in kept:
        old.unlink()


def attach_samples(trial: optuna.Trial, keep: Path, store: Path) -> str | None:
    """Attach the sample grid kept in ``keep`` to a running Optuna trial as an artifact in ``store``
    (the experiment's ARTIFACTS_DIR, search/experiment/layout.py), so optuna-dashboard shows it next to the trial's score
    (``optuna-dashboard URL --artifact-dir EXPERIMENT/optuna-artifacts``). The artifact id, or
    None when the trial has no grid (it ran on another node's disk, or drew none)."""
    grids = sorted(keep.glob("step-*.png")) if keep.is_dir() else []
    if not grids:
        return None
    return optuna.artifacts.upload_artifact(
        artifact_store=optuna.artifacts.FileSystemArtifactStore(str(store)), file_path=str(grids[-1]),
        study_or_trial=trial, mimetype="image/png")


class RedactedRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage that pickles with its password hidden and unpickles with the real URL
    from the environment variable: Ray saves the searcher (and with it the study's storage) into
    the experiment folder, which may be a shared bucket."""

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["url"] = redact(state["url"])
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__({**state, "url": resolve_stored(state["url"])})


def open_study(exp: Experiment, tmp: Path) -> optuna.Study | None:
    """The search's Optuna study, opened from a local copy of its SQLite file (never the original,
    which a running search may be writing), or from the shared database --optuna-storage named;
    None when there is none."""
    url = None
    copy = exp.folder.download(OPTUNA_FILE, tmp / OPTUNA_FILE)
    if copy is not None:
        for suffix in ("-wal", "-shm"):
            exp.folder.download(OPTUNA_FILE + suffix, tmp / (OPTUNA_FILE + suffix))
        url = f"sqlite:///{copy}"
    elif exp.manifest.optuna_storage and not exp.manifest.optuna_storage.startswith("sqlite"):
        url = resolve_stored(exp.manifest.optuna_storage)  # redacted: the real URL is in the environment
    if url is None:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url, skip_table_creation=True) if url.startswith("sqlite") \
        else optuna.storages.RDBStorage(url)
    names = optuna.study.get_all_study_names(storage)
    name = exp.manifest.name if exp.manifest.name in names else (names[0] if len(names) == 1 else None)
    if name is None:
        return None
    return optuna.load_study(study_name=name, storage=storage)
