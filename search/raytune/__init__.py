"""Ray behind one door: every module of gansearch that imports Ray lives in this package, and no
other module of gan_core or search imports it (tests/test_imports.py walks every import).

Importing the package itself loads no Ray (``--help`` and review import it for its constants).
One concept per module:

- ``tune``: the entry points: start a search, resume or grow one, summarise it;
- ``tuner``: the Tuner: trainable resources, searcher or PBT population, scheduler, checkpoints;
- ``trainable``: :func:`gan_trial`, one trial in a Ray worker (its Training: gan_core.loop.train
  by default; reporting);
- ``searcher``: Ray's OptunaSearch telling the study each trial's best point and budget;
- ``checkpoints``: which checkpoints a trial keeps (its latest and its best two);
- ``progress``: what a search prints (status lines, Ray's noise filtered);
- ``recovery``: what a killed driver leaves behind, put right before a resume;
- ``cluster``: joining a cluster with the right token, trials no node can take;
- ``address``: which Ray a search runs on, and the messages at the cluster boundary;
- ``driver``: what the driver settles before trials start (absolute paths, the classifier);
- ``legacy``: the module paths older experiments' pickles name;
- ``trackers``: ``search --log-to``'s callback, Ray's MLflow (or W&B) logger.

The experiment folder (its layout, manifest, statuses, records) is search/experiment/'s; this
package writes it through that package and reads Ray's own view only at the end of a search.

Ray versions
------------
Checked against Ray 2.60.0. :data:`SUPPORTED_RAY` is the range whose internals the code relies
on: the minor release 2.60, the newest Ray when this was written and the only one the private
APIs below were read in (token authentication in particular is new and not a stable API). A
search or resume first calls :func:`check_ray_version`, which ends in one line (exit 2) on a Ray
outside it. pyproject.toml's dependency range is the same specifier.

Private Ray APIs, each used only here (checked against 2.60.0)
--------------------------------------------------------------
- ``ray._private.authentication.authentication_token_setup.maybe_enable_token_auth_if_token_available``
  (cluster.py ``check_token``): decides, as ``ray.init`` does for a cluster it found itself,
  whether this process uses token authentication, before the pre-flight request below.
- ``ray._raylet.AuthenticationMode``, ``AuthenticationTokenLoader``, ``get_authentication_mode``,
  ``GcsClient`` (cluster.py ``check_token``): one request to the cluster's GCS with the token
  ``ray.init`` would send, so that a refused or missing token is one line naming the fix; Ray
  itself retries for a minute and raises a traceback, or aborts in C++ (no public pre-flight).
- ``ray.tune.experimental.output.AirVerbosity``, ``TuneTerminalReporter`` (progress.py
  ``SilentReporter``): ``--quiet`` silences Tune's own reporter (banner, heartbeat tables), which
  has no public switch; it also relies on Tune giving the run's start time to the first
  reporter in the callbacks only (``SilentReporter.setup`` passes it on).
- ``OptunaSearch._ot_trials``, ``OptunaSearch._completed_trials`` (searcher.py): the Optuna trial
  behind a Tune trial, to tell the study a trial's best point, prune one stopped early and
  attach user attributes (tests/test_review.py checks the study, so a rename fails loudly).
- ``JsonLoggerCallback._trial_files``, ``CSVLoggerCallback._trial_files``, ``._trial_csv``,
  ``._trial_continue``, ``._setup_trial`` (recovery.py ``ResultJsonLog``, ``ProgressCsvLog``): a
  resumed trial's repeated reports replace the rows they repeat, which means closing, rewriting
  and reopening the logger's open file.
- ``ray.air.integrations.mlflow.MLflowLoggerCallback``, ``ray.air.integrations.wandb.WandbLoggerCallback``
  (trackers.py and mlflow_runs.py, ``search --log-to``): documented, but under ``ray.air``. Of the
  MLflow one, ``GansearchMLflow`` uses ``_trial_runs`` and the attributes ``tags``, ``tracking_uri``,
  ``experiment_name``: the trial -> MLflow run map, filled on a resume with the run found by its
  tags so that a resumed trial logs on into its run; the trial's id tag is added to ``tags`` for
  the run's creation only.
- Ray Tune's state files in the experiment folder, ``experiment_state-<session>.json``,
  ``search_gen_state-<session>.json``, ``searcher-state-<session>.pkl`` (recovery.py
  ``recover_torn_state``): checked to be whole (as bytes, never parsed for their contents) before
  a resume, because Ray silently starts a search over from a state cut short by a kill.
- Ray's staging folder, ``<ray tmp>/session_*/artifacts/*/<name>/driver_artifacts``
  (recovery.py): where a killed driver's last state waits on its machine; a torn state is
  restored from it.
- Ray's session file, ``<ray tmp>/ray/ray_current_cluster`` (address.py ``session_file``): the
  cluster ``ray start`` registered, which ``--address auto`` joins; its place is Ray's rule
  reimplemented (``ray._common.utils.get_ray_address_file``, which tests/test_ray_address.py
  compares it with), so that deciding which Ray to use imports no Ray.
- Tune's trial file names, ``ray.air.constants.EXPR_RESULT_FILE``, ``EXPR_PROGRESS_FILE``,
  ``EXPR_PARAM_FILE``, ``EXPR_ERROR_FILE``: search/experiment/layout.py names them itself
  (result.json, progress.csv, params.json, error.txt), so that reading an experiment imports no
  Ray; tests/test_tune_recovery.py checks they are still Ray's.
- Behaviour, not API: Tune's checkpoint manager never deletes a trial's latest checkpoint
  (tuner.py keeps checkpoints by score and resumes from the latest); the texts of the log
  lines progress.py filters as noise.

Documented, public parts used besides: ``Tuner``/``Tuner.restore``/``Tuner.can_restore``,
``TuneConfig``, ``RunConfig``, the schedulers, ``OptunaSearch``, ``Callback``, the logger
callbacks, ``ExperimentAnalysis``, ``Result``/``Checkpoint``, ``Trial`` (a developer API), and
the environment variables ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS`` and
``TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S``.
"""

from __future__ import annotations

from gan_core.errors import GansearchError

# The Ray releases whose internals this package relies on (see above), as a PEP 440 specifier:
# pyproject.toml's `ray[tune]` range says the same.
SUPPORTED_RAY = ">=2.60,<2.61"
CHECKED_RAY = "2.60.0"  # the release the private APIs above were read in


def check_ray_version(found: str | None = None) -> str:
    """Ray's version (``found``, else the installed ``ray.__version__``), or a one-line
    GansearchError naming the supported range when it is outside it (or Ray is missing)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    if found is None:
        try:
            import ray
        except ImportError as exc:
            raise GansearchError(f"Ray is not installed ({exc}); gansearch needs ray[tune]{SUPPORTED_RAY}") from None
        found = str(ray.__version__)
    try:
        ok = Version(found) in SpecifierSet(SUPPORTED_RAY)
    except InvalidVersion:
        ok = False
    if not ok:
        raise GansearchError(f"Ray {found} is installed, but gansearch supports Ray {SUPPORTED_RAY} (it relies on "
                             f"internals checked in Ray {CHECKED_RAY}); install ray[tune]{SUPPORTED_RAY}")
    return found
