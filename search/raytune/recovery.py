"""What a killed driver leaves behind, put right so that a resume loses nothing.

Ray Tune saves its experiment state (and the trials' result.json / progress.csv with it) to the
experiment folder every few seconds, while trials write their checkpoints there at once and the
driver deletes the ones ``CheckpointConfig(num_to_keep)`` drops at once. A driver killed between
two saves leaves a state that can name a checkpoint already deleted: Ray then fails the trial on
every restore attempt ("Could not recover from checkpoint as it does not exist on storage
anymore"). :func:`refill_missing_checkpoints` gives such a trial the newest older checkpoint it
kept (one whose report the saved result.json holds), or none (it starts again), so it resumes.

Ray also copies its state into a local experiment folder in place: a driver killed mid-copy
leaves it empty or cut short, and Ray, finding no trial in it, silently starts the search over
(the cut trials never continue). :func:`recover_torn_state` finishes that copy from Ray's own
staging folder on this machine, or says in one line that the state is lost.

A search stopped in its first moments (Ctrl-C or SIGTERM as soon as gansearch.json appears) can
leave no Ray state, or one with no trial in it; Ray's restore then logged a traceback and ran
its searcher on from the state pickled when the Tuner was built (1 of 3 trials, then nothing).
:func:`unsaved_start` tells such an experiment, which ``resume`` starts over.

A trial resumed from a checkpoint older than its last saved report repeats a few reports;
:class:`ResultJsonLog` and :class:`ProgressCsvLog` (Tune's JSON and CSV loggers) then drop the
rows a repeated report replaces, so result.json still holds each point once, in order (the rerun
is bitwise the same training: gan_core's resume is exact).
"""

from __future__ import annotations

import csv
import io
import json
import pickletools
import posixpath
import re
import shutil
from pathlib import Path
from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from gan_core.errors import GansearchError
from gan_core.io import atomic_write_text
from search.experiment import CHECKPOINT_PREFIX, PROGRESS_FILE, RESULT_FILE, parse_results
from search.raytune.address import session_file
from search.storage import is_uri

IMAGES = "images_seen"  # what orders a trial's reports (gan_trial reports it; ASHA's time attribute)
# Ray Tune's state files, one set per driver session: the controller's, and those of whichever
# search algorithm and callbacks a search has (Optuna: SearchGenerator and Searcher; PBT's
# population: BasicVariantGenerator; callbacks with a state: schedulers.py).
STATE_FILES = ("experiment_state-{}.json", "search_gen_state-{}.json", "searcher-state-{}.pkl",
               "basic-variant-state-{}.json", "callback-states-{}.pkl")


def _intact(path: Path) -> bool:
    """A state file written whole: JSON that parses, or a pickle (Ray writes some of its .json
    files with cloudpickle) that ends with its STOP opcode (read with pickletools, which runs
    nothing)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    try:
        json.loads(data)
        return True
    except ValueError:
        pass
    try:
        return bool(data) and list(pickletools.genops(data))[-1][0].name == "STOP"
    except Exception:  # whatever a cut-off stream makes pickletools raise
        return False


def _session_files(folder: Path, session: str) -> set[str]:
    """The state files of one driver session present in ``folder``."""
    return {name for t in STATE_FILES if (folder / (name := t.format(session))).exists()}


def recover_torn_state(exp: str) -> list[str]:
    """Before a resume of a local experiment: if the state files of Ray's newest session are
    empty, cut short or missing (the driver was killed while Ray copied them in place), finish
    Ray's copy from its staging folder (``RAY_TMP/session_*/artifacts/*/NAME/driver_artifacts``,
    kept on this machine after a kill): the state files and the trials' result.json,
    progress.csv and run folders, as Ray's next sync would have. Without an intact copy, a
    one-line error: Ray would silently start the search over. Which files a session has depends
    on the search (a missing one counts only when the staging copy has it). Returns a line
    saying what was restored."""
    if is_uri(exp):  # object stores write whole objects or nothing
        return []
    folder = Path(exp)
    states = sorted(folder.glob(STATE_FILES[0].format("*")))
    if not states:
        return []
    session = states[-1].name[len("experiment_state-"):-len(".json")]  # Ray resumes the newest name
    root = session_file().parent
    copies = [p.parent for p in root.glob(f"session_*/artifacts/*/{folder.name}/driver_artifacts/{states[-1].name}")]
    copies = [c for c in copies if all(_intact(c / n) for n in _session_files(c, session))]
    staging = max(copies, key=lambda c: (c / states[-1].name).stat().st_mtime) if copies else None
    expected = _session_files(folder, session) | (_session_files(staging, session) if staging else set())
    torn = sorted(n for n in expected if not _intact(folder / n))
    if not torn:
        return []
    cut = [n for n in torn if (folder / n).exists()]
    names = "; ".join(f"{', '.join(group)} {what}" for group, what in
                      ((cut, "cut short"), ([n for n in torn if n not in cut], "missing")) if group)
    if staging is None:
        raise GansearchError(f"{folder}: {names} (the driver was killed while Ray was writing it) and "
                             f"no intact copy is left in {root} on this machine: the search cannot resume where "
                             "it stopped; `gansearch review` still reads its trials")
    shutil.copytree(staging, folder, dirs_exist_ok=True)
    return [f"{names} when the driver was killed; restored from Ray's staging copy {staging}"]


def unsaved_start(exp: str) -> bool:
    """Whether Ray saved no trial of the search in ``exp``: no Tuner, no experiment state, or one
    holding no trial. Such a search was stopped before it started anything a resume could go on
    with (``resume`` starts it over). Trial folders with reports but no saved state (a driver
    killed outright in its first seconds) cannot be resumed or safely removed: a one-line error."""
    from ray import tune

    from search.experiment import RESULT_FILE, trial_folders
    from search.storage import Folder

    if tune.Tuner.can_restore(exp):
        try:
            if tune.ExperimentAnalysis(exp).trials:
                return False
        except ValueError:  # "no experiment checkpoint file": Ray never saved its state
            pass
    folder = Folder(exp)
    reported = [n for n in trial_folders(folder) if (folder.read_text(f"{n}/{RESULT_FILE}") or "").strip()]
    if reported:
        raise GansearchError(f"{exp}: Ray saved no state of its trials ({', '.join(reported[:3])}"
                             f"{' ...' if len(reported) > 3 else ''} reported before the driver was killed), so "
                             "the search cannot resume; `gansearch review` reads them, a new search needs another "
                             "--name")
    return True


def clear_unsaved_start(exp: str, keep: tuple[str, ...]) -> None:
    """Empty an experiment :func:`unsaved_start` found of everything but ``keep`` (what gansearch
    wrote before Ray started: its state, space, base config, classifier, the study database, the
    lock): Ray's Tuner and state files, trial folders that never reported, pictures, summaries."""
    from search.storage import Folder

    folder = Folder(exp)
    for name in folder.entries():
        if name not in keep:
            folder.remove(name)


def recover_run_artifacts(trial_dir: Path, run_dir: Path, earlier: Path | None = None) -> list[str]:
    """In a trial restored from a checkpoint: bring back into ``run_dir`` the sample grids and
    TensorBoard event files an earlier start of this trial left on this node.

    A trial's run folder lives in Ray's working folder on its node
    (``RAY_TMP/session_*/artifacts/TIMESTAMP/EXPERIMENT/working_dirs/TRIAL``), which Ray copies
    to the experiment folder when the trial's actor stops or is reused, and otherwise only every
    5 minutes. Two starts can leave pictures there that never reached the experiment folder:
    - a driver killed outright: the grids and events since its last copy stay in the old
      session's folder, and the resumed trial, in a new one, goes on without them. Only a run of
      the same lineage is taken (its metrics.jsonl begins as the checkpoint's does);
    - an earlier actor of this session (``earlier``: its run folder, which the caller moved
      aside): Tune keeps a paused trial's actor (PBT, reuse_actors) and may restart the trial on
      another one before the first has copied its pictures out.
    Only grids up to the checkpoint's step come back (the trial draws the later ones again); the
    resumed run's events purge the old files' points after the checkpoint (gan_core/events.py).
    Returns a line saying what came back from an earlier session."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        step = max(int(r.get("step", 0)) for r in map(json.loads, lines) if isinstance(r, dict))
    except (OSError, ValueError):
        return []
    if earlier is not None and earlier.is_dir():
        _bring_back(earlier, run_dir, step)
    parts = trial_dir.parts
    if not lines or len(parts) < 7 or parts[-2] != "working_dirs" or parts[-5] != "artifacts":
        return []  # not Ray's layout (RAY_CHDIR_TO_TRIAL_DIR=0): nothing to look for
    ray_tmp = Path(*parts[:-6])
    pattern = f"session_*/artifacts/*/{parts[-3]}/working_dirs/{parts[-1]}/{run_dir.name}"
    olds = [d for d in ray_tmp.glob(pattern) if not d.is_relative_to(Path(*parts[:-5])) and _continues(d, lines)]
    if not olds:
        return []
    old = max(olds, key=lambda d: d.stat().st_mtime)
    grids, events = _bring_back(old, run_dir, step)
    said = old / ".gansearch-recovered"  # said once: a PBT member restarts many times in a session
    if not (grids or events) or said.exists():
        return []
    said.touch()
    return [f"brought back {grids} sample grids and {events} TensorBoard event files up to step {step} "
            f"from the earlier session's {old}"]


def _bring_back(old: Path, run_dir: Path, step: int) -> tuple[int, int]:
    """Copy into ``run_dir`` the grids of ``old`` up to ``step`` and its event files, those
    ``run_dir`` lacks; how many of each came."""
    grids = [g for g in (old / "samples").glob("step-*.png")
             if (n := _index_of_grid(g.name)) is not None and n <= step and not (run_dir / "samples" / g.name).exists()]
    events = [e for e in old.glob("events.out.tfevents.*") if not (run_dir / e.name).exists()]
    (run_dir / "samples").mkdir(exist_ok=True)
    for g in grids:
        shutil.copy2(g, run_dir / "samples" / g.name)
    for e in events:
        shutil.copy2(e, run_dir / e.name)
    return len(grids), len(events)


def _continues(old: Path, lines: list[str]) -> bool:
    """Whether the run in ``old`` is the one the restored log (``lines``, up to the checkpoint)
    belongs to: its metrics.jsonl starts with those lines (another member's history under PBT,
    or another experiment of the same names, does not)."""
    try:
        with (old / "metrics.jsonl").open() as f:
            return all(f.readline().rstrip("\n") == line for line in lines)
    except OSError:
        return False


def _index_of_grid(name: str) -> int | None:
    match = re.fullmatch(r"step-(\d+)\.png", name)
    return int(match.group(1)) if match else None


def _index(name: str) -> int | None:
    """The number of a checkpoint folder's name (checkpoint_000012 -> 12), else None."""
    match = re.fullmatch(CHECKPOINT_PREFIX + r"(\d+)", name)
    return int(match.group(1)) if match else None


def refill_missing_checkpoints(results: Any) -> list[str]:
    """Put right, before a resume, the checkpoints ``results`` (a restored Tuner's ResultGrid)
    name that are gone from storage. A trial's latest one gets the newest older checkpoint of its
    folder that holds files copied into its place (or stays empty: the trial starts over), and
    the folder's newer ones, which Ray does not know of, go. A best one (kept by score) gets an empty folder, so
    that Ray can delete it again (deleting a missing one fails inside Ray's bookkeeping); with
    checkpoints.py's retention Ray's books name every checkpoint, most of them deleted. Trials
    that finished are left as they are. Returns a line per trial whose latest one was put right."""
    import pyarrow.fs

    tracked = set()  # every checkpoint Ray's saved state names, in any trial (PBT shares them)
    for result in results:
        tracked |= {c.path for c, _ in (getattr(result, "best_checkpoints", None) or [])}
        if getattr(result, "checkpoint", None) is not None:
            tracked.add(result.checkpoint.path)
    notes = []
    for result in results:
        if (result.metrics or {}).get("done"):
            continue
        ckpt = getattr(result, "checkpoint", None)
        for best, _ in getattr(result, "best_checkpoints", None) or []:
            gone = best.filesystem.get_file_info(best.path).type == pyarrow.fs.FileType.NotFound
            if gone and (ckpt is None or best.path != ckpt.path):
                best.filesystem.create_dir(best.path)
        if ckpt is None:
            continue
        fs, path = ckpt.filesystem, ckpt.path.rstrip("/")
        if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
            continue
        folder, missing = posixpath.split(path)
        number = _index(missing)
        kept = sorted((n, info.base_name) for info in fs.get_file_info(pyarrow.fs.FileSelector(folder))
                      if info.type == pyarrow.fs.FileType.Directory and (n := _index(info.base_name)) is not None)
        # Only one holding files: the empty folders made above for best ones deleted since
        # (checkpoints.py's retention deletes every superseded one) hold no state to resume from.
        older = [name for n, name in kept if number is not None and n < number
                 and fs.get_file_info(pyarrow.fs.FileSelector(posixpath.join(folder, name)))]
        if folder == str(result.path).rstrip("/"):  # its own folder (under PBT it may be another trial's)
            for n, name in kept:  # written after the saved state: Ray does not know them; the trial writes them again
                if number is not None and n > number and posixpath.join(folder, name) not in tracked:
                    fs.delete_dir(posixpath.join(folder, name))
        fs.create_dir(path)
        trial = posixpath.basename(str(result.path).rstrip("/"))
        if older:
            # No threads: pyarrow's threaded uploads to S3 are unsafe (Ray's own copies avoid them too).
            pyarrow.fs.copy_files(posixpath.join(folder, older[-1]), path, source_filesystem=fs,
                                  destination_filesystem=fs, use_threads=False)
            notes.append(f"{trial}: {missing} was deleted after Ray's last saved state; resuming from {older[-1]}")
        else:
            notes.append(f"{trial}: {missing} was deleted after Ray's last saved state and no older one is kept; "
                         "the trial starts over")
    return notes


def _images(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


class _DropsReplacedRows:
    """What :class:`ResultJsonLog` and :class:`ProgressCsvLog` add to Tune's loggers: a report at
    or before the trial's last one logged (a resumed trial repeating reports) first drops the
    rows it replaces from the file. A subclass names the file, reads and writes its rows, and
    says how the logger sets a trial up (``_start``) and takes a rewritten file (``_reopened``).

    And the file this driver writes is never replaced by the experiment folder's older copy.
    Tune's loggers copy a trial's file back from the experiment folder each time the trial
    (re)starts with a checkpoint (``LoggerCallback._restore_from_remote``), but the driver writes
    the file in its staging folder and copies it to the experiment folder only every few seconds:
    under PBT, where a trial pauses and restarts at every perturbation, and for a trial retried
    after its worker died, the copy put back lacked the rows written since (a clean 8-report PBT
    search lost 2 to 3 rows of each trial, among them the best score). Only a trial this driver
    has not logged yet (a resumed search) takes the experiment folder's copy."""

    file_name = ""
    _trial_files: dict[Any, Any]

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[Any, int] = {}  # trial -> images_seen of its last row in the file

    @property
    def _written(self) -> set[str]:
        """Trial ids whose file this driver process has written (kept out of __init__: a logger
        unpickled from an older experiment's tuner.pkl has no such attribute)."""
        return self.__dict__.setdefault("_written_ids", set())

    def _restore_from_remote(self, file_name: str, trial: Any) -> None:
        if trial.trial_id in self._written:
            return  # ours is the newer file
        super()._restore_from_remote(file_name, trial)  # type: ignore[misc]  # Tune's LoggerCallback

    def _read(self, path: Path) -> tuple[list[str], list[dict]]:
        raise NotImplementedError

    def _text(self, header: list[str], rows: list[dict]) -> str:
        raise NotImplementedError

    def _start(self, trial: Any) -> None:
        raise NotImplementedError

    def _reopened(self, trial: Any, header: list[str]) -> None:
        pass

    def _note_logged(self, trial: Any) -> None:
        """After the logger opened the trial's file (brought back from storage on a resume)."""
        rows = self._read(Path(trial.local_path, self.file_name))[1]
        self._last[trial] = max((_images(r.get(IMAGES)) or 0 for r in rows), default=-1)

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        if trial not in self._trial_files:
            self._start(trial)
        images = _images(result.get(IMAGES))
        if images is not None and images <= self._last.get(trial, -1):
            path = Path(trial.local_path, self.file_name)
            self._trial_files[trial].close()
            header, rows = self._read(path)
            keep = [r for r in rows if (_images(r.get(IMAGES)) or 0) < images]
            atomic_write_text(path, self._text(header, keep))
            self._trial_files[trial] = path.open("at")
            self._reopened(trial, header)
        super().log_trial_result(iteration, trial, result)  # type: ignore[misc]  # Tune's logger
        self._written.add(trial.trial_id)
        if images is not None:
            self._last[trial] = images


class ResultJsonLog(_DropsReplacedRows, JsonLoggerCallback):
    """Tune's result.json logger, each report once (see :class:`_DropsReplacedRows`)."""

    file_name = RESULT_FILE

    def _read(self, path: Path) -> tuple[list[str], list[dict]]:
        try:
            return [], parse_results(path.read_text())
        except FileNotFoundError:
            return [], []

    def _text(self, header: list[str], rows: list[dict]) -> str:
        return "".join(json.dumps(r) + "\n" for r in rows)

    def _start(self, trial: Any) -> None:
        self.log_trial_start(trial)

    def log_trial_start(self, trial: Any) -> None:
        super().log_trial_start(trial)
        self._note_logged(trial)


class ProgressCsvLog(_DropsReplacedRows, CSVLoggerCallback):
    """Tune's progress.csv logger, each report once (see :class:`_DropsReplacedRows`)."""

    file_name = PROGRESS_FILE

    def _read(self, path: Path) -> tuple[list[str], list[dict]]:
        try:
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                return list(reader.fieldnames or []), list(reader)
        except FileNotFoundError:
            return [], []

    def _text(self, header: list[str], rows: list[dict]) -> str:
        out = io.StringIO()
        if header:
            writer = csv.DictWriter(out, header, extrasaction="ignore")  # a field the header lacks has no column
            writer.writeheader()
            writer.writerows(rows)
        return out.getvalue()

    def _start(self, trial: Any) -> None:
        self._setup_trial(trial)

    def _setup_trial(self, trial: Any) -> None:
        super()._setup_trial(trial)
        self._note_logged(trial)

    def _reopened(self, trial: Any, header: list[str]) -> None:
        # Rows go on under the file's header (Tune would make a writer of the new result's keys).
        writer = csv.DictWriter(self._trial_files[trial], header, extrasaction="ignore") if header else None
        self._trial_csv[trial] = writer  # type: ignore[assignment]  # Tune makes a writer for None
        self._trial_continue[trial] = bool(header)

