"""Search spaces: a small YAML language compiled to an Optuna define-by-run function.

A space names a base config (a preset or a config file), a budget in images, an objective, and
``params``: dotted config keys (``optim.d.lr``) mapped to a range, a list of choices or a fixed
value. A choice may open conditional sub-spaces with ``when`` (parameters that exist for one
architecture or loss only). spaces/README.md documents the language; in short::

    base: mnist-dcgan
    budget: {images: 256000, eval_every: 32000, grace_images: 64000}
    objective: {metric: score, mode: min}
    params:
      optim.d.lr: {float: [1.0e-5, 1.0e-2], log: true}
      train.batch_size: {choice: [32, 64, 128]}
      eval.n: 1000                                  # a fixed value
      model.arch:
        choice: [mlp, dcgan-upsample]
        when:
          mlp: {model.g_depth: {int: [1, 4]}}

Everything is checked against the typed config tree when the file is loaded (unknown keys,
wrong types, ``low >= high``, ``log`` with a bound <= 0, empty choices, unknown presets,
architectures or losses), and a dry run of random draws is validated into ``Config`` too, so a
bad space is refused with one line naming the file, the key path and the valid options before
Ray starts. No Ray here: only search/raytune/ imports it.

Example::

    space = load_space("spaces/quick.yaml")
    fn = space.define_by_run(seed=0)       # give to OptunaSearch(space=fn, ...)
    cfg = space.config_for(trial_params)   # a trial's sampled values -> a validated Config

The package, one concept per module: ``params`` (the parameter tree and the language's
constants), ``core`` (``Space`` and the Optuna define-by-run function), ``checker`` (validation
against the config tree), ``parsing`` (YAML -> ``Space``), ``draws`` (the dry run).
"""

from search.objective import Objective
from search.space.core import DefineByRun, Space
from search.space.draws import check_models, random_draws
from search.space.params import (
    BUDGET_KEYS,
    DRY_RUN_DRAWS,
    KINDS,
    OBJECTIVE_KEYS,
    PBT_MUTABLE_PREFIXES,
    PBT_RESUMABLE,
    RESERVED,
    SCHEDULERS,
    SEARCH_KEYS,
    TOP_KEYS,
    Budget,
    ChoiceParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    Scalar,
    SearchDefaults,
    key_of,
    trial_seed,
)
from search.space.parsing import load_space, parse_space

__all__ = [
    "BUDGET_KEYS",
    "DRY_RUN_DRAWS",
    "KINDS",
    "OBJECTIVE_KEYS",
    "PBT_MUTABLE_PREFIXES",
    "PBT_RESUMABLE",
    "RESERVED",
    "SCHEDULERS",
    "SEARCH_KEYS",
    "TOP_KEYS",
    "Budget",
    "ChoiceParam",
    "DefineByRun",
    "FixedParam",
    "FloatParam",
    "IntParam",
    "Objective",
    "Param",
    "Scalar",
    "SearchDefaults",
    "Space",
    "check_models",
    "key_of",
    "load_space",
    "parse_space",
    "random_draws",
    "trial_seed",
]
