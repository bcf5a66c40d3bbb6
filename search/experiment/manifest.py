"""gansearch.json, the experiment's manifest: how the search was started and how it grew.

One frozen, typed record (:class:`Manifest`) parses the file, rejects an unknown key or a wrong
type in one line naming the file and the key, and writes it back in the same layout
(``Manifest.from_json(m.to_json()) == m``). The search writes it when it starts
(search/experiment/create.py), a growth rewrites it, and every reader (review, export, retrain,
resume, explore) reads it here, with the defaults it states once.

Keys (a manifest of an older search may lack the later ones; every key is optional to a reader)::

    version         1
    name            the experiment's (and its Optuna study's) name
    space_file      the space file as given to `gansearch search`
    options         the search's options (SearchOptions: the flags, None for a space default)
    scheduler       asha | pbt | fifo
    optuna_storage  the study's database URL, its password redacted (None for PBT)
    metric, mode    the objective
    created         when the search started (seconds since the epoch)
    classifier      the reference classifier: digest, dataset, test_accuracy
    cwd             the driver's folder: what relative data paths among the sampled values mean
    grown           one entry per `resume --trials N`: added, before, total, at
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gan_core.errors import GansearchError
from search.experiment.layout import PARAMS_FILE, RESULT_FILE, STATE_FILE
from search.objective import Direction, Objective
from search.storage import Folder, is_uri

DEFAULT_CONNECT_TIMEOUT = 30.0  # seconds a search waits for a cluster to answer (--connect-timeout)
DEFAULT_PENDING_TIMEOUT = 600.0  # seconds trials may wait for a cluster's resources (--pending-timeout)

# What a resume needs recorded (a partial copy of the folder lacks some): the search's name and
# scheduler, and the trial resources it ran with.
RESUME_NEEDS = ("name", "scheduler", "options", "options.cpus_per_trial", "options.gpus_per_trial")


@dataclass(frozen=True)
class SearchOptions:
    """``gansearch search`` flags; None means the space file's ``search:`` default."""

    name: str
    storage: str | None = None  # local folder or URI; default ./runs
    trials: int | None = None
    time_budget_s: float | None = None
    address: str | None = None  # None: a private local Ray (or RAY_ADDRESS's); "auto" or HOST:PORT: a cluster
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT  # seconds to wait for a cluster
    cpus_per_trial: float | None = None
    pending_timeout: float = DEFAULT_PENDING_TIMEOUT  # seconds trials may wait for resources, none running
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    seed: int = 0
    optuna_storage: str | None = None  # written only redacted (search/study_db.py)
    scheduler: str | None = None
    max_failures: int = 2
    verbose: int = 1
    cost: str | None = None  # a second objective for Optuna: a search/pareto.py COSTS name
    allow_cpu_fallback: bool = False  # a GPU trial whose torch cannot use CUDA trains on the CPU
    sampler: str = "tpe"  # Optuna's sampler: a search/samplers.py SAMPLERS name (older searches: tpe)
    join_study: bool = False  # its trials were added to a study another search started (--join-study)
    log_to: str | None = None  # the experiment tracker its trials are logged to (--log-to; search/trackers.py)


@dataclass(frozen=True)
class ClassifierRecord:
    """The reference classifier every trial was scored by (its weights are classifier.pt)."""

    digest: str
    dataset: str
    test_accuracy: float | None = None


@dataclass(frozen=True)
class Growth:
    """One ``resume --trials N``: ``added`` trials after ``before``, ``total`` since, at time ``at``."""

    added: int
    before: int
    total: int
    at: float


@dataclass(frozen=True)
class Manifest:
    """gansearch.json. None: not recorded (an older or partly copied experiment)."""

    version: int = 1
    name: str | None = None
    space_file: str | None = None
    options: SearchOptions | None = None
    scheduler: str | None = None
    optuna_storage: str | None = None
    metric: str | None = None
    mode: Direction | None = None
    created: float | None = None
    classifier: ClassifierRecord | None = None
    cwd: str | None = None
    grown: tuple[Growth, ...] = ()
    # Keys of RESUME_NEEDS the file lacks: not a key of the file, never written.
    missing: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def objective(self, fallback: Objective | None = None) -> Objective:
        """The recorded objective; what it does not record comes from ``fallback`` (the space's),
        else the default (score, min)."""
        default = fallback or Objective()
        return Objective(self.metric or default.metric, self.mode or default.direction)

    @property
    def is_pbt(self) -> bool:
        return self.scheduler == "pbt"

    @property
    def cost(self) -> str | None:
        """The search's ``--cost``, if it had one."""
        return self.options.cost if self.options is not None else None

    @property
    def max_failures(self) -> int:
        """Retries of a crashed trial; without the option recorded any crash counts as final."""
        return self.options.max_failures if self.options is not None else 0

    def grow(self, before: int, added: int, at: float) -> Manifest:
        """This manifest after ``added`` trials were added to ``before``: the new total in
        ``options.trials`` and one more entry in ``grown``."""
        total = before + added
        assert self.options is not None  # a growable search was started by `gansearch search`
        return dataclasses.replace(self, options=dataclasses.replace(self.options, trials=total),
                                   grown=(*self.grown, Growth(added, before, total, at)))

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """The file's object, keys in the order `gansearch search` has always written them;
        keys not recorded are left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "missing" or (value is None and f.name not in _WRITTEN_AS_NULL) or \
                    (f.name == "grown" and not value):
                continue
            out[f.name] = _plain(value)
        for key, default in _OPTIONS_WRITTEN_IF_SET.items():
            if out.get("options", {}).get(key, default) == default:
                out.get("options", {}).pop(key, None)
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    @classmethod
    def from_json(cls, data: Any, where: str) -> Manifest:
        """Parse the file's object; ``where`` (the file) starts every one-line error."""
        if not isinstance(data, dict):
            raise GansearchError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if "mode" in data:  # first: it decides every ranking, and its error names the choices
            Direction.parse(data["mode"], f"{where}: mode")
        parsed = _parse_fields(cls, data, where, skip=("missing",))
        missing = tuple(k for k in RESUME_NEEDS if not _has(data, k))
        return cls(**parsed, missing=missing)


# Keys `gansearch search` writes even when null (a PBT search has no study); other null keys
# are left out, as an older search left them out.
_WRITTEN_AS_NULL = frozenset({"optuna_storage"})
# Options added after the first manifests, written only when not their default, so that a search
# using none of them writes (and an older manifest reads back to) the same file as before.
_OPTIONS_WRITTEN_IF_SET = {"allow_cpu_fallback": False, "sampler": "tpe", "join_study": False, "log_to": None}


def _has(data: dict[str, Any], dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    if head not in data:
        return False
    return not rest or (isinstance(data[head], dict) and _has(data[head], rest))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Direction):
        return value.value
    return value


def _parse_fields(cls: Any, data: dict[str, Any], where: str, *, prefix: str = "",
                  skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keyword arguments of dataclass ``cls`` from ``data``: unknown keys, missing required
    keys and wrong types are one line naming ``where`` and the key's path."""
    known = {f.name: f for f in fields(cls) if f.name not in skip}
    for key in data:
        if key not in known:
            raise GansearchError(f"{where}: {prefix}{key}: unknown key (known: {', '.join(known)})")
    hints = typing.get_type_hints(cls)
    out = {}
    for name, f in known.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise GansearchError(f"{where}: {prefix}{name}: missing")
            continue
        out[name] = _value(hints[name], data[name], where, f"{prefix}{name}")
    return out


def _value(hint: Any, value: Any, where: str, path: str) -> Any:
    """``value`` checked against the type ``hint`` (the few kinds a manifest holds)."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where, path)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise GansearchError(f"{where}: {path}: expected a list, got {json.dumps(value)}")
        return tuple(_value(args[0], v, where, f"{path}[{i}]") for i, v in enumerate(value))
    if hint is Direction:
        return Direction.parse(value, f"{where}: {path}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise GansearchError(f"{where}: {path}: expected an object, got {json.dumps(value)}")
        return hint(**_parse_fields(hint, value, where, prefix=f"{path}."))
    ok = {str: isinstance(value, str), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool), bool: isinstance(value, bool)}[hint]
    if not ok:
        raise GansearchError(f"{where}: {path}: expected {_NAMES[hint]}, got {json.dumps(value)}")
    return float(value) if hint is float else value


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


# ----------------------------------------------------------------------------- reading


def read_manifest(folder: Folder) -> Manifest:
    """gansearch.json of the experiment in ``folder``; a folder that is not an experiment is one
    line saying what it is instead."""
    where = folder.root
    if not folder.is_dir():
        raise GansearchError(f"{where}: no such experiment folder")
    text = folder.read_text(STATE_FILE)
    if text is None:
        names = folder.entries()
        if PARAMS_FILE in names or RESULT_FILE in names:
            parent = where.rstrip("/").rsplit("/", 1)[0] if is_uri(where) else str(Path(where).parent)
            raise GansearchError(f"{where}: this is one trial's folder; review its experiment: {parent}")
        raise GansearchError(f"{where}: not a gansearch experiment (no {STATE_FILE}); give the folder "
                             "`gansearch search` printed (e.g. runs/quick)")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise GansearchError(f"{where}/{STATE_FILE}: not valid JSON (is the copy complete?)")
    return Manifest.from_json(data, f"{where}/{STATE_FILE}")
