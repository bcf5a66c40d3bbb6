"""Export a trial's complete config (the best trial's by default) for ``gansearch retrain``.

Example::

    export_config(load_experiment("runs/quick"), "best.yaml")
"""

from __future__ import annotations

from pathlib import Path

from gan_core.config import Config, dump_config, from_dict, to_dict
from gan_core.errors import GansearchError
from search.experiment import SPACE_FILE, BestPoint, Experiment, TrialRecord


def export_config(exp: Experiment, out: str | Path, trial_id: str | None = None) -> tuple[TrialRecord, Config]:
    """Write the complete config of the best trial (or ``trial_id``) to ``out``, ready for retrain,
    with the trial's best point recorded in comments at the top (see BestPoint)."""
    from gan_core.io import atomic_write_text

    t = exp.trial(trial_id) if trial_id else exp.best()
    if t is None:
        raise GansearchError(f"--export: no trial of {exp.path} has finished with a finite score yet "
                             "(pick one with --trial ID)")
    cfg = t.config
    if cfg is None:
        raise GansearchError(f"--export: the config of trial {t.trial_id} cannot be rebuilt (no config.yaml "
                             f"in {t.path} and no readable {SPACE_FILE})")
    data = to_dict(cfg)
    data["name"] = f"{exp.name}-{t.trial_id}"
    cfg = from_dict(data)
    atomic_write_text(Path(out), BestPoint.of(exp, t).comment() + dump_config(cfg))
    return t, cfg
