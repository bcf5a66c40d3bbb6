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
ORIGIN_ATTR = "experiment"  # a trial's user attribute: the experiment (path or URI) that asked for it
SPACE_ATTR = "gansearch_space_sha256"  # the study's: the digest of the space its first search searched


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


# A study that moved with its experiment folder: the URL Ray's pickles recorded -> where it is now.
_MOVED: dict[str, str] = {}


def study_moved(recorded: str, now: str) -> None:
    """Unpickle ``recorded`` (Ray's saved searcher names the study by its URL) as ``now``: a
    local experiment's SQLite study goes where its folder goes."""
    _MOVED[recorded] = now


def resolve_stored(stored: str | None) -> str | None:
    """The real URL for one gansearch.json (or a pickle) holds: a redacted one is read from the
    environment variable again, which must name the same database."""
    if stored in _MOVED:
        return _MOVED[stored]
    if not is_redacted(stored):
        return stored
    env = os.environ.get(ENV, "").strip()
    if not env:
        raise GansearchError(f"{ENV}: not set; this experiment's Optuna study is in {stored}, whose password "
                             f"is not stored: set {ENV} to the full URL")
    if redact(env) != stored:
        raise GansearchError(f"{ENV}: names {redact(env)}, but this experiment's Optuna study is in {stored}")
    return env


def check_reachable(url: str, source: str, *, timeout_s: int = 10) -> None:
    """A one-line GansearchError, naming ``source`` (the flag or variable), unless ``url`` is a
    database URL whose driver is installed and whose server answers within ``timeout_s``. A
    SQLite file is not created here (only its folder is checked), so a later error leaves none."""
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = redact(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except ArgumentError:
        raise GansearchError(f"{source}: {shown} is not a database URL (e.g. postgresql://user@host/db, "
                             "sqlite:////abs/path/optuna.db)") from None
    kind = parsed.get_backend_name()
    if kind == "sqlite":
        db = Path(parsed.database or "")
        if not parsed.database or not (db.exists() or (db.parent.is_dir() and os.access(db.parent, os.W_OK))):
            raise GansearchError(f"{source}: {shown}: no such file, and its folder {db.parent} cannot hold one")
        return
    connect = {"connect_timeout": timeout_s} if kind in ("postgresql", "mysql") else {}
    try:
        engine = sqlalchemy.create_engine(url, connect_args=connect)
    except NoSuchModuleError:
        raise GansearchError(f"{source}: {shown}: {parsed.drivername}:// is not a database SQLAlchemy knows "
                             "(postgresql://, mysql://, sqlite:///)") from None
    except ImportError as exc:
        extra = " (pip install 'gansearch[postgres]')" if kind == "postgresql" else ""
        raise GansearchError(f"{source}: {shown}: the {kind} driver is not installed{extra}: {exc}") from None
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except SQLAlchemyError as exc:
        why = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise GansearchError(f"{source}: {shown}: cannot connect ({why})") from None
    finally:
        engine.dispose()


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


def discard_orphan_copy(url: str) -> bool:
    """Remove a local study :func:`study_url` keeps under the cache for an s3:// / gs:// / file://
    experiment (with its -wal and -shm files), when a new search of that URI starts and nothing of
    the experiment is on storage (the caller checked, holding the experiment's lock): the study is
    a deleted experiment's, and would refuse this search as "an earlier search of this name".
    True when one was removed."""
    path = Path(url.removeprefix("sqlite:///"))
    found = path.is_file()
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
    return found


def space_digest(space_text: str) -> str:
    return hashlib.sha256(space_text.encode()).hexdigest()


def mark_study(url: str, name: str, space_text: str) -> None:
    """Record in a new study the space it searches, which a search joining it must search too."""
    optuna.load_study(study_name=name, storage=url).set_user_attr(SPACE_ATTR, space_digest(space_text))


def check_study_name(url: str, name: str, *, join: bool, space_text: str, objectives: int) -> int:
    """For a new search named ``name``: 0 when its study is new; with ``join`` (``search
    --join-study``), the number of trials in the existing study it joins. Otherwise a one-line
    error: a study of that name exists (without ``join``), none does, or it searches another
    space or another number of objectives."""
    exists = name in optuna.study.get_all_study_names(storage=url)
    if join and not exists:
        raise GansearchError(f"--join-study: there is no Optuna study {name!r} in {redact(url)} to join; "
                             "the first search of a shared study runs without --join-study")
    if exists and not join:
        raise GansearchError(f"--name: the Optuna study {name!r} already exists in {redact(url)} (an earlier "
                             "search of this name?); pick another --name, or add --join-study to add this "
                             "search's trials to it")
    if not join:
        return 0
    study = optuna.load_study(study_name=name, storage=url)
    recorded = study.user_attrs.get(SPACE_ATTR)
    if recorded is not None and recorded != space_digest(space_text):
        raise GansearchError(f"--join-study: the Optuna study {name!r} in {redact(url)} searches another space "
                             "(its space file's text differs from this one's); join it with the same space file")
    if len(study.directions) != objectives:
        raise GansearchError(f"--join-study: the Optuna study {name!r} has {len(study.directions)} objective(s), "
                             f"this search {objectives} (--cost must be the same as the study's first search's)")
    return len(study.trials)


def fail_orphans(url: str, name: str, experiment: str) -> int:
    """Mark FAIL the trials of study ``name`` that ``experiment`` asked for and that are still
    RUNNING once none of its trials runs: their driver was killed after asking for them and
    before Ray saved its state, so no resume will ever tell them. The number marked."""
    study = optuna.load_study(study_name=name, storage=url)
    n = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.user_attrs.get(ORIGIN_ATTR) == experiment:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            n += 1
    return n


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


# File systems on which SQLite's write-ahead log does not work (it needs memory shared by every
# process that opens the database, on one machine): their studies keep SQLite's own defaults.
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "gpfs", "9p", "afs")


def _filesystem_type(path: Path) -> str:
    """The type of the file system ``path`` is on (/proc/mounts: the longest mount point above
    it), or "" where that cannot be read."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return ""
    resolved = str(path.resolve())
    best = ("", "")
    for point, kind in mounts:
        point = point.replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best[0]):
            best = (point, kind)
    return best[1]


def fast_sqlite(storage: optuna.storages.RDBStorage) -> bool:
    """Commit a local SQLite study without waiting for the disk at every write.

    Optuna commits each write on its own (every sampled parameter, report, attribute and tell:
    about 25 per trial), and SQLite's default (a rollback journal, synchronous=FULL) waits for
    the disk twice per commit: 20-30 ms on a busy disk, the whole driver stalled each time
    (bench/bench_scale.py measured it as most of the driver's time per trial). With a
    write-ahead log and synchronous=NORMAL a commit is an append (0.1 ms), a killed driver loses
    nothing committed (only a power cut may lose the last commits, never the file), and readers
    (review, optuna-dashboard) never block the writer. Not on a network file system, where a
    write-ahead log does not work: there the defaults stay. True when switched on."""
    url = str(storage.url)
    if not url.startswith("sqlite:///"):
        return False
    db = Path(url[len("sqlite:///"):])
    if _filesystem_type(db.parent if db.parent.exists() else Path(".")).lower() in NETWORK_FS:
        return False
    from sqlalchemy import event

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file: every later connection has it
        cursor.execute("PRAGMA synchronous=NORMAL")  # per connection
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened before (table creation) reconnect with them
    return True


def settle_sqlite(path: Path) -> None:
    """Fold a study's write-ahead log into its file, so that a copy of the file alone is whole
    (the study copied into an s3:// or gs:// experiment when the search ends)."""
    import sqlite3

    if not Path(str(path) + "-wal").exists():
        return
    con = sqlite3.connect(str(path))
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


class RedactedRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage that pickles with its password hidden and unpickles with the real URL
    from the environment variable: Ray saves the searcher (and with it the study's storage) into
    the experiment folder, which may be a shared bucket. A local SQLite study commits without
    waiting for the disk (:func:`fast_sqlite`)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        fast_sqlite(self)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["url"] = redact(state["url"])
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__({**state, "url": resolve_stored(state["url"])})
        fast_sqlite(self)


def open_study(exp: Experiment, tmp: Path) -> optuna.Study | None:
    """The search's Optuna study, opened from a local copy of its SQLite file (never the original,
    which a running search may be writing), or from the shared database --optuna-storage named;
    None when there is none."""
    found = open_study_storage(exp, tmp)
    return None if found is None else optuna.load_study(study_name=found[1], storage=found[0])


def open_study_storage(exp: Experiment, tmp: Path) -> tuple[optuna.storages.RDBStorage, str] | None:
    """The database of :func:`open_study` and the study's name in it, for a reader that asks it
    for some trials only (review's importance: the completed ones; reading 5,000 trials through
    Optuna's ORM costs seconds)."""
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
    return None if name is None else (storage, name)
